// node_exporter-style web-config files (TLS and basic auth) and bcrypt checks.
#include <crypt.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "scry/errors.h"
#include "scry/http_server.h"

namespace scry {
namespace {

// TLS 1.2 cipher suites by their IANA names (what Go, and so node_exporter, calls them) and OpenSSL's
// names for them; civetweb takes an OpenSSL cipher list.
constexpr std::array<std::pair<std::string_view, std::string_view>, 20> kCipherSuites{{
    {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", "ECDHE-ECDSA-AES256-SHA384"},
    {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", "ECDHE-RSA-AES256-SHA384"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "ECDHE-ECDSA-AES128-SHA256"},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "ECDHE-RSA-AES128-SHA256"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA"},
    {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA"},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA"},
    {"TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384"},
    {"TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256"},
    {"TLS_RSA_WITH_AES_256_CBC_SHA256", "AES256-SHA256"},
    {"TLS_RSA_WITH_AES_128_CBC_SHA256", "AES128-SHA256"},
    {"TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA"},
    {"TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA"},
}};

// TLS 1.3 suites cannot be chosen (Go ignores them as well); naming them is harmless.
constexpr std::array<std::string_view, 3> kTls13Suites{
    "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"};

constexpr std::array<std::string_view, 4> kTlsVersions{"TLS10", "TLS11", "TLS12", "TLS13"};

// One loader per file, so every message can name the file.
class Loader {
 public:
  explicit Loader(std::string path) : path_(std::move(path)) {}

  [[noreturn]] void Fail(const std::string& problem) const {
    throw UsageError("web-config " + path_ + ": " + problem);
  }

  WebConfig Load() {
    WebConfig config;
    config.path = path_;
    YAML::Node root;
    try {
      root = YAML::Load(ReadFile(path_, ""));
    } catch (const YAML::Exception& e) {
      Fail("invalid YAML at line " + std::to_string(e.mark.line + 1) + ", column " +
           std::to_string(e.mark.column + 1) + ": " + e.msg);
    }
    if (root.IsNull()) return config;  // an empty file means the defaults, as in node_exporter
    if (!root.IsMap()) Fail("the top level must be a mapping");

    for (const auto& kv : root) {
      std::string key = Key(kv.first, "");
      if (key == "tls_server_config") {
        LoadTls(kv.second, config);
      } else if (key == "http_server_config") {
        LoadHttp(kv.second);
      } else if (key == "basic_auth_users") {
        LoadUsers(kv.second, config);
      } else {
        Fail("unknown key " + key);
      }
    }
    return config;
  }

 private:
  std::string Key(const YAML::Node& node, const std::string& parent) const {
    if (!node.IsScalar()) Fail("a key under " + (parent.empty() ? std::string("the top level") : parent) +
                               " is not a string");
    return parent.empty() ? node.Scalar() : parent + "." + node.Scalar();
  }

  std::string String(const YAML::Node& node, const std::string& name) const {
    if (node.IsNull()) return "";
    if (!node.IsScalar()) Fail(name + " must be a string");
    return node.Scalar();
  }

  bool Bool(const YAML::Node& node, const std::string& name) const {
    bool value = false;
    if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) Fail(name + " must be true or false");
    return value;
  }

  std::vector<std::string> StringList(const YAML::Node& node, const std::string& name) const {
    std::vector<std::string> out;
    if (node.IsNull()) return out;
    if (!node.IsSequence()) Fail(name + " must be a list of strings");
    for (const auto& item : node) {
      if (!item.IsScalar()) Fail(name + " must be a list of strings");
      out.push_back(item.Scalar());
    }
    return out;
  }

  // Reads a whole file, failing with errno's text (this is also the readability check).
  std::string ReadFile(const std::string& file, const std::string& what) const {
    int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
    int open_errno = errno;
    // what is empty for the web-config file itself, which the message names already.
    const std::string name = what.empty() ? "the file" : what + " " + file;
    if (fd < 0) Fail("cannot read " + name + ": " + std::strerror(open_errno));
    std::string data;
    char buf[8192];
    for (;;) {
      ssize_t n = read(fd, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        int err = errno;
        close(fd);
        Fail("cannot read " + name + ": " + std::strerror(err));
      }
      if (n == 0) break;
      data.append(buf, static_cast<size_t>(n));
      if (data.size() > (16u << 20)) {
        close(fd);
        Fail(name + " is larger than 16 MiB");
      }
    }
    close(fd);
    return data;
  }

  // Relative paths are relative to the web-config file's directory, as in Prometheus.
  std::string Resolve(const std::string& file) const {
    std::filesystem::path p(file);
    if (p.is_relative()) p = std::filesystem::path(path_).parent_path() / p;
    return std::filesystem::absolute(p).lexically_normal().string();
  }

  void LoadTls(const YAML::Node& node, WebConfig& config) {
    const std::string parent = "tls_server_config";
    if (node.IsNull()) return;
    if (!node.IsMap()) Fail(parent + " must be a mapping");
    std::string cert, key, max_version;
    std::vector<std::string> ciphers;
    for (const auto& kv : node) {
      std::string name = Key(kv.first, parent);
      std::string_view leaf = std::string_view(name).substr(parent.size() + 1);
      if (leaf == "cert_file") {
        cert = String(kv.second, name);
      } else if (leaf == "key_file") {
        key = String(kv.second, name);
      } else if (leaf == "client_ca_file") {
        config.client_ca_file = String(kv.second, name);
      } else if (leaf == "client_auth_type") {
        config.client_auth_type = String(kv.second, name);
      } else if (leaf == "min_version") {
        config.min_version = String(kv.second, name);
      } else if (leaf == "max_version") {
        max_version = String(kv.second, name);
      } else if (leaf == "cipher_suites") {
        ciphers = StringList(kv.second, name);
      } else if (leaf == "prefer_server_cipher_suites") {
        Bool(kv.second, name);  // civetweb always prefers the server's order (node_exporter's default)
      } else if (leaf == "curve_preferences") {
        if (!StringList(kv.second, name).empty())
          Fail(name + " is not supported by scry (civetweb picks curves itself); remove it");
      } else if (leaf == "cert" || leaf == "key") {
        Fail(name + " (an inline PEM) is not supported by scry; use " + std::string(leaf) + "_file");
      } else {
        Fail("unknown key " + name);
      }
    }

    for (const std::string* v : {&config.min_version, &max_version}) {
      if (!v->empty() && std::find(kTlsVersions.begin(), kTlsVersions.end(), *v) == kTlsVersions.end())
        Fail(parent + (v == &max_version ? ".max_version" : ".min_version") + " must be one of TLS10, TLS11, "
             "TLS12, TLS13, not " + *v);
    }
    if (!max_version.empty() && max_version != "TLS13")
      Fail(parent + ".max_version " + max_version +
           " is not supported by scry (civetweb cannot cap the TLS version); remove it");

    for (const auto& c : ciphers) {
      auto it = std::find_if(kCipherSuites.begin(), kCipherSuites.end(), [&](const auto& p) { return p.first == c; });
      if (it != kCipherSuites.end()) {
        if (!config.ssl_cipher_list.empty()) config.ssl_cipher_list += ':';
        config.ssl_cipher_list += it->second;
      } else if (std::find(kTls13Suites.begin(), kTls13Suites.end(), c) == kTls13Suites.end()) {
        Fail(parent + ".cipher_suites: unknown or unsupported cipher suite " + c);
      }
    }
    if (!ciphers.empty() && config.ssl_cipher_list.empty() && config.min_version != "TLS13")
      Fail(parent + ".cipher_suites names no TLS 1.2 cipher suite; set min_version: TLS13 to use only TLS 1.3");

    const std::string& auth = config.client_auth_type;
    if (auth == "RequestClientCert" || auth == "RequireAnyClientCert" || auth == "RequireClientCert")
      Fail(parent + ".client_auth_type " + auth +
           " is not supported by scry (civetweb always verifies client certificates); use "
           "VerifyClientCertIfGiven or RequireAndVerifyClientCert");
    if (!auth.empty() && auth != "NoClientCert" && auth != "VerifyClientCertIfGiven" &&
        auth != "RequireAndVerifyClientCert")
      Fail(parent + ".client_auth_type must be NoClientCert, VerifyClientCertIfGiven or "
           "RequireAndVerifyClientCert, not " + auth);
    bool verifies = auth == "VerifyClientCertIfGiven" || auth == "RequireAndVerifyClientCert";
    if (verifies && config.client_ca_file.empty())
      Fail(parent + ".client_ca_file is required when client_auth_type is " + auth);
    if (!verifies && !config.client_ca_file.empty())
      Fail(parent + ".client_ca_file is set but client_auth_type does not verify client certificates; set "
           "client_auth_type to RequireAndVerifyClientCert or VerifyClientCertIfGiven");

    // Like node_exporter: TLS is on when any of these is set, and then needs a certificate and key.
    if (cert.empty() && key.empty() && config.client_ca_file.empty() && auth.empty()) return;
    if (cert.empty()) Fail(parent + ".cert_file is required when tls_server_config is set");
    if (key.empty()) Fail(parent + ".key_file is required when cert_file is set");

    config.cert_file = Resolve(cert);
    config.key_file = Resolve(key);
    if (ReadFile(config.cert_file, parent + ".cert_file").find("-----BEGIN CERTIFICATE-----") == std::string::npos)
      Fail(parent + ".cert_file " + config.cert_file + " holds no PEM certificate");
    std::string key_pem = ReadFile(config.key_file, parent + ".key_file");
    if (key_pem.find("ENCRYPTED") != std::string::npos)
      Fail(parent + ".key_file " + config.key_file + " is encrypted; scry needs an unencrypted key");
    if (key_pem.find("PRIVATE KEY-----") == std::string::npos)
      Fail(parent + ".key_file " + config.key_file + " holds no PEM private key");
    if (!config.client_ca_file.empty()) {
      config.client_ca_file = Resolve(config.client_ca_file);
      if (ReadFile(config.client_ca_file, parent + ".client_ca_file").find("-----BEGIN CERTIFICATE-----") ==
          std::string::npos)
        Fail(parent + ".client_ca_file " + config.client_ca_file + " holds no PEM certificate");
    }
  }

  void LoadHttp(const YAML::Node& node) const {
    const std::string parent = "http_server_config";
    if (node.IsNull()) return;
    if (!node.IsMap()) Fail(parent + " must be a mapping");
    for (const auto& kv : node) {
      std::string name = Key(kv.first, parent);
      if (name == parent + ".http2") {
        Bool(kv.second, name);  // civetweb serves HTTP/1.1, which every scraper speaks
      } else if (name == parent + ".headers") {
        if (!kv.second.IsNull() && !kv.second.IsMap()) Fail(name + " must be a mapping");
        if (kv.second.size() > 0)
          Fail(name + " is not supported by scry (the /metrics handler cannot add headers); remove it");
      } else {
        Fail("unknown key " + name);
      }
    }
  }

  void LoadUsers(const YAML::Node& node, WebConfig& config) const {
    const std::string parent = "basic_auth_users";
    if (node.IsNull()) return;
    if (!node.IsMap()) Fail(parent + " must be a mapping of user names to bcrypt hashes");
    for (const auto& kv : node) {
      if (!kv.first.IsScalar()) Fail("a user name under " + parent + " is not a string");
      std::string user = kv.first.Scalar();
      if (user.empty()) Fail(parent + " has an empty user name");
      if (user.find(':') != std::string::npos)
        Fail(parent + ": user name " + user + " contains ':', which basic auth cannot carry");
      std::string hash = String(kv.second, parent + "." + user);
      if (!IsBcryptHash(hash))
        Fail(parent + "." + user + " is not a bcrypt hash ($2y$, $2b$ or $2a$, e.g. from htpasswd -nBC 10)");
      config.basic_auth_users[user] = hash;
    }
  }

 public:
  // $2a$/$2b$/$2y$, a two-digit cost 04..31, 22 characters of salt and 31 of hash.
  static bool IsBcryptHash(const std::string& h) {
    if (h.size() != 60 || h.compare(0, 2, "$2") != 0 || (h[2] != 'a' && h[2] != 'b' && h[2] != 'y') ||
        h[3] != '$' || h[6] != '$')
      return false;
    if (!std::isdigit(static_cast<unsigned char>(h[4])) || !std::isdigit(static_cast<unsigned char>(h[5])))
      return false;
    int cost = (h[4] - '0') * 10 + (h[5] - '0');
    if (cost < 4 || cost > 31) return false;
    for (size_t i = 7; i < h.size(); ++i) {
      char c = h[i];
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '/') return false;
    }
    return true;
  }

 private:
  std::string path_;
};

}  // namespace

WebConfig LoadWebConfig(const std::string& path) {
  if (path.empty()) return WebConfig{};
  return Loader(path).Load();
}

bool CheckBcrypt(const std::string& password, const std::string& hash) {
  // A NUL would cut the password short in crypt_r and let a prefix match.
  if (!Loader::IsBcryptHash(hash) || password.find('\0') != std::string::npos) return false;
  auto data = std::make_unique<crypt_data>();  // ~32 KiB: too big for civetweb's worker stacks
  const char* out = crypt_r(password.c_str(), hash.c_str(), data.get());
  if (out == nullptr || out[0] == '*' || std::strlen(out) != hash.size()) return false;
  unsigned char diff = 0;  // constant time, so timing does not reveal how much of the hash matched
  for (size_t i = 0; i < hash.size(); ++i) diff |= static_cast<unsigned char>(out[i] ^ hash[i]);
  return diff == 0;
}

}  // namespace scry
