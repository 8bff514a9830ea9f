// web-config parsing, listen addresses and bcrypt checks (scry/http_server.h).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "scry/errors.h"
#include "scry/http_server.h"

namespace scry {
namespace {

namespace fs = std::filesystem;

const std::string kFixtures = std::string(SCRY_TEST_FIXTURES) + "/web";

// Made with `htpasswd -nbBC 10 alice 'correct horse'` (apache2-utils' own bcrypt, not libcrypt).
const std::string kAliceHash = "$2y$10$C4Jcuf2Pg1pOx7TCGYf9iecbzXT.cP9tZTNBIH3./8deiMj/.UlXW";
const std::string kAlicePassword = "correct horse";
// `htpasswd -nbBC 4 bob 's3cret:with colon'`
const std::string kBobHash = "$2y$04$rvyFc6fANx8MA04CzXwNH.hxGCF1YVd24kO1t/L8fmCZhl4eVUMxK";

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/scry-web-config-XXXXXX";
    char* p = mkdtemp(tmpl);
    if (p == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string Write(const std::string& name, const std::string& content) const {
    std::string file = path_ + "/" + name;
    std::ofstream(file) << content;
    return file;
  }

 private:
  std::string path_;
};

// A self-signed certificate, its key, and a CA made by the openssl CLI.
void MakeCerts(const std::string& dir) {
  std::string cmd = "cd '" + dir +
                    "' && openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 "
                    "-keyout key.pem -out cert.pem 2>/dev/null && openssl req -x509 -newkey rsa:2048 -nodes "
                    "-subj /CN=test-ca -days 1 -keyout ca.key -out ca.pem 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

// Loads yaml written to dir/web.yml and returns the UsageError's message ("" if it loaded).
std::string LoadError(const TempDir& dir, const std::string& yaml) {
  std::string file = dir.Write("web.yml", yaml);
  try {
    LoadWebConfig(file);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(WebConfigTest, EmptyPathGivesDefaults) {
  WebConfig c = LoadWebConfig("");
  EXPECT_FALSE(c.tls());
  EXPECT_TRUE(c.basic_auth_users.empty());
}

TEST(WebConfigTest, EmptyFileGivesDefaults) {
  WebConfig c = LoadWebConfig(kFixtures + "/empty.yml");
  EXPECT_FALSE(c.tls());
  EXPECT_TRUE(c.basic_auth_users.empty());
  EXPECT_EQ(c.path, kFixtures + "/empty.yml");
}

TEST(WebConfigTest, BasicAuthUsers) {
  WebConfig c = LoadWebConfig(kFixtures + "/basic_auth.yml");
  EXPECT_FALSE(c.tls());
  ASSERT_EQ(c.basic_auth_users.size(), 2u);
  EXPECT_EQ(c.basic_auth_users.at("alice"), kAliceHash);
  EXPECT_EQ(c.basic_auth_users.at("bob"), kBobHash);
}

TEST(WebConfigTest, FullTlsConfigWithRelativePaths) {
  TempDir dir;
  MakeCerts(dir.path());
  fs::copy_file(kFixtures + "/tls_full.yml", dir.path() + "/web.yml");
  // Loaded from another working directory: paths resolve against the file's directory.
  WebConfig c = LoadWebConfig(dir.path() + "/web.yml");
  EXPECT_TRUE(c.tls());
  EXPECT_EQ(c.cert_file, dir.path() + "/cert.pem");
  EXPECT_EQ(c.key_file, dir.path() + "/key.pem");
  EXPECT_EQ(c.client_ca_file, dir.path() + "/ca.pem");
  EXPECT_EQ(c.client_auth_type, "RequireAndVerifyClientCert");
  EXPECT_EQ(c.min_version, "TLS12");
  EXPECT_EQ(c.ssl_cipher_list, "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305");
  EXPECT_EQ(c.basic_auth_users.size(), 1u);
}

TEST(WebConfigTest, RelativePathsFromRelativeConfigPath) {
  TempDir dir;
  MakeCerts(dir.path());
  fs::create_directory(dir.path() + "/conf");
  dir.Write("conf/web.yml", "tls_server_config:\n  cert_file: ../cert.pem\n  key_file: ../key.pem\n");
  char old_cwd[4096];
  ASSERT_NE(getcwd(old_cwd, sizeof(old_cwd)), nullptr);
  ASSERT_EQ(chdir(dir.path().c_str()), 0);
  WebConfig c;
  EXPECT_NO_THROW(c = LoadWebConfig("conf/web.yml"));
  ASSERT_EQ(chdir(old_cwd), 0);
  EXPECT_EQ(c.cert_file, dir.path() + "/cert.pem");
  EXPECT_EQ(c.key_file, dir.path() + "/key.pem");
}

TEST(WebConfigTest, AbsolutePathsAndVersions) {
  TempDir dir;
  MakeCerts(dir.path());
  std::string file = dir.Write("web.yml", "tls_server_config:\n  cert_file: " + dir.path() +
                                              "/cert.pem\n  key_file: " + dir.path() +
                                              "/key.pem\n  min_version: TLS13\n"
                                              "  client_auth_type: VerifyClientCertIfGiven\n"
                                              "  client_ca_file: ca.pem\n");
  WebConfig c = LoadWebConfig(file);
  EXPECT_EQ(c.cert_file, dir.path() + "/cert.pem");
  EXPECT_EQ(c.min_version, "TLS13");
  EXPECT_EQ(c.client_auth_type, "VerifyClientCertIfGiven");
  EXPECT_TRUE(c.ssl_cipher_list.empty());
}

TEST(WebConfigTest, TlsSettingsWithoutCertificateLeaveTlsOff) {
  // As in node_exporter: only cert/key/client settings switch TLS on.
  TempDir dir;
  WebConfig c = LoadWebConfig(dir.Write("web.yml", "tls_server_config:\n  min_version: TLS12\n"));
  EXPECT_FALSE(c.tls());
}

TEST(WebConfigTest, FixtureErrors) {
  try {
    LoadWebConfig(kFixtures + "/unknown_key.yml");
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_EQ(std::string(e.what()),
              "web-config " + kFixtures + "/unknown_key.yml: unknown key tls_server_config.certfile");
  }
  try {
    LoadWebConfig(kFixtures + "/bad_yaml.yml");
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("web-config " + kFixtures + "/bad_yaml.yml: invalid YAML at line"),
              std::string::npos)
        << e.what();
  }
}

TEST(WebConfigTest, MissingFile) {
  try {
    LoadWebConfig("/nonexistent/web.yml");
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_EQ(std::string(e.what()),
              "web-config /nonexistent/web.yml: cannot read the file: No such file or directory");
  }
}

struct ErrorCase {
  const char* name;
  std::string yaml;
  std::string message;  // what follows "web-config <file>: "
};

TEST(WebConfigTest, InvalidConfigs) {
  const std::string users = "basic_auth_users:\n";
  const std::vector<ErrorCase> cases = {
      {"top level list", "- a\n- b\n", "the top level must be a mapping"},
      {"unknown top-level key", "foo: 1\n", "unknown key foo"},
      {"unknown http key", "http_server_config:\n  gzip: true\n", "unknown key http_server_config.gzip"},
      {"tls not a map", "tls_server_config: yes\n", "tls_server_config must be a mapping"},
      {"http not a map", "http_server_config: [1]\n", "http_server_config must be a mapping"},
      {"cert not a string", "tls_server_config:\n  cert_file: [a]\n",
       "tls_server_config.cert_file must be a string"},
      {"cert without key", "tls_server_config:\n  cert_file: cert.pem\n",
       "tls_server_config.key_file is required when cert_file is set"},
      {"key without cert", "tls_server_config:\n  key_file: key.pem\n",
       "tls_server_config.cert_file is required when tls_server_config is set"},
      {"inline cert", "tls_server_config:\n  cert: xyz\n",
       "tls_server_config.cert (an inline PEM) is not supported by scry; use cert_file"},
      {"bad min_version", "tls_server_config:\n  min_version: TLS1.2\n",
       "tls_server_config.min_version must be one of TLS10, TLS11, TLS12, TLS13, not TLS1.2"},
      {"bad max_version", "tls_server_config:\n  max_version: SSL3\n",
       "tls_server_config.max_version must be one of TLS10, TLS11, TLS12, TLS13, not SSL3"},
      {"max_version below 1.3", "tls_server_config:\n  max_version: TLS12\n",
       "tls_server_config.max_version TLS12 is not supported by scry (civetweb cannot cap the TLS version); "
       "remove it"},
      {"curve preferences", "tls_server_config:\n  curve_preferences: [CurveP256]\n",
       "tls_server_config.curve_preferences is not supported by scry (civetweb picks curves itself); remove it"},
      {"unknown cipher", "tls_server_config:\n  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n",
       "tls_server_config.cipher_suites: unknown or unsupported cipher suite TLS_RSA_WITH_RC4_128_SHA"},
      {"cipher_suites not a list", "tls_server_config:\n  cipher_suites: TLS_AES_128_GCM_SHA256\n",
       "tls_server_config.cipher_suites must be a list of strings"},
      {"only tls 1.3 suites", "tls_server_config:\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n",
       "tls_server_config.cipher_suites names no TLS 1.2 cipher suite; set min_version: TLS13 to use only TLS 1.3"},
      {"prefer_server_cipher_suites not bool", "tls_server_config:\n  prefer_server_cipher_suites: maybe\n",
       "tls_server_config.prefer_server_cipher_suites must be true or false"},
      {"RequestClientCert", "tls_server_config:\n  client_auth_type: RequestClientCert\n",
       "tls_server_config.client_auth_type RequestClientCert is not supported by scry (civetweb always verifies "
       "client certificates); use VerifyClientCertIfGiven or RequireAndVerifyClientCert"},
      {"RequireAnyClientCert", "tls_server_config:\n  client_auth_type: RequireAnyClientCert\n",
       "tls_server_config.client_auth_type RequireAnyClientCert is not supported by scry (civetweb always "
       "verifies client certificates); use VerifyClientCertIfGiven or RequireAndVerifyClientCert"},
      {"bad client_auth_type", "tls_server_config:\n  client_auth_type: Please\n",
       "tls_server_config.client_auth_type must be NoClientCert, VerifyClientCertIfGiven or "
       "RequireAndVerifyClientCert, not Please"},
      {"client auth without CA", "tls_server_config:\n  client_auth_type: RequireAndVerifyClientCert\n",
       "tls_server_config.client_ca_file is required when client_auth_type is RequireAndVerifyClientCert"},
      {"CA without client auth", "tls_server_config:\n  client_ca_file: ca.pem\n",
       "tls_server_config.client_ca_file is set but client_auth_type does not verify client certificates; set "
       "client_auth_type to RequireAndVerifyClientCert or VerifyClientCertIfGiven"},
      {"http2 not bool", "http_server_config:\n  http2: sometimes\n", "http_server_config.http2 must be true or false"},
      {"headers", "http_server_config:\n  headers:\n    X-Frame-Options: deny\n",
       "http_server_config.headers is not supported by scry (the /metrics handler cannot add headers); remove it"},
      {"users not a map", "basic_auth_users: [alice]\n",
       "basic_auth_users must be a mapping of user names to bcrypt hashes"},
      {"plaintext password", users + "  alice: secret\n",
       "basic_auth_users.alice is not a bcrypt hash ($2y$, $2b$ or $2a$, e.g. from htpasswd -nBC 10)"},
      {"md5 hash", users + "  alice: $apr1$abc$0123456789abcdefghijkl\n",
       "basic_auth_users.alice is not a bcrypt hash ($2y$, $2b$ or $2a$, e.g. from htpasswd -nBC 10)"},
      {"truncated bcrypt", users + "  alice: " + kAliceHash.substr(0, 59) + "\n",
       "basic_auth_users.alice is not a bcrypt hash ($2y$, $2b$ or $2a$, e.g. from htpasswd -nBC 10)"},
      {"user with colon", users + "  'a:b': " + kAliceHash + "\n",
       "basic_auth_users: user name a:b contains ':', which basic auth cannot carry"},
      {"hash not a string", users + "  alice: [x]\n", "basic_auth_users.alice must be a string"},
  };
  TempDir dir;
  const std::string prefix = "web-config " + dir.path() + "/web.yml: ";
  for (const auto& c : cases) {
    EXPECT_EQ(LoadError(dir, c.yaml), prefix + c.message) << c.name;
  }
}

TEST(WebConfigTest, CertificateFileProblems) {
  TempDir dir;
  MakeCerts(dir.path());
  const std::string prefix = "web-config " + dir.path() + "/web.yml: ";
  dir.Write("not-a-cert.pem", "hello\n");
  dir.Write("encrypted.pem", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nabc\n-----END ENCRYPTED PRIVATE KEY-----\n");

  EXPECT_EQ(LoadError(dir, "tls_server_config:\n  cert_file: missing.pem\n  key_file: key.pem\n"),
            prefix + "cannot read tls_server_config.cert_file " + dir.path() +
                "/missing.pem: No such file or directory");
  EXPECT_EQ(LoadError(dir, "tls_server_config:\n  cert_file: cert.pem\n  key_file: missing.pem\n"),
            prefix + "cannot read tls_server_config.key_file " + dir.path() +
                "/missing.pem: No such file or directory");
  EXPECT_EQ(LoadError(dir, "tls_server_config:\n  cert_file: not-a-cert.pem\n  key_file: key.pem\n"),
            prefix + "tls_server_config.cert_file " + dir.path() + "/not-a-cert.pem holds no PEM certificate");
  EXPECT_EQ(LoadError(dir, "tls_server_config:\n  cert_file: cert.pem\n  key_file: not-a-cert.pem\n"),
            prefix + "tls_server_config.key_file " + dir.path() + "/not-a-cert.pem holds no PEM private key");
  EXPECT_EQ(LoadError(dir, "tls_server_config:\n  cert_file: cert.pem\n  key_file: encrypted.pem\n"),
            prefix + "tls_server_config.key_file " + dir.path() +
                "/encrypted.pem is encrypted; scry needs an unencrypted key");
  EXPECT_EQ(LoadError(dir, "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n"
                           "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: not-a-cert.pem\n"),
            prefix + "tls_server_config.client_ca_file " + dir.path() + "/not-a-cert.pem holds no PEM certificate");
  EXPECT_EQ(LoadError(dir, "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n"), "");

  // An unreadable key (root reads everything, so only check when not root).
  if (geteuid() != 0) {
    dir.Write("secret.pem", "-----BEGIN PRIVATE KEY-----\n");
    chmod((dir.path() + "/secret.pem").c_str(), 0);
    EXPECT_EQ(LoadError(dir, "tls_server_config:\n  cert_file: cert.pem\n  key_file: secret.pem\n"),
              prefix + "cannot read tls_server_config.key_file " + dir.path() + "/secret.pem: Permission denied");
  }
}

TEST(WebConfigTest, ErrorsAreOneLine) {
  TempDir dir;
  for (const std::string yaml : {"a: [\n", "foo: bar\n", "basic_auth_users: {x: y}\n"}) {
    std::string err = LoadError(dir, yaml);
    EXPECT_FALSE(err.empty()) << yaml;
    EXPECT_EQ(err.find('\n'), std::string::npos) << err;
  }
}

TEST(HttpListenAddressTest, ValidAddresses) {
  EXPECT_EQ(CivetListeningPort(":9652", false), "9652");
  EXPECT_EQ(CivetListeningPort(":9652", true), "9652s");
  EXPECT_EQ(CivetListeningPort("0.0.0.0:9652", false), "0.0.0.0:9652");
  EXPECT_EQ(CivetListeningPort("127.0.0.1:9652", false), "127.0.0.1:9652");
  EXPECT_EQ(CivetListeningPort("127.0.0.1:9652", true), "127.0.0.1:9652s");
  EXPECT_EQ(CivetListeningPort("localhost:9652", false), "127.0.0.1:9652");
  EXPECT_EQ(CivetListeningPort("localhost:9652", true), "127.0.0.1:9652s");
  EXPECT_EQ(CivetListeningPort(":65535", false), "65535");
  EXPECT_EQ(CivetListeningPort(":09652", false), "9652");
}

TEST(HttpListenAddressTest, Ipv6Addresses) {
  // Debian's civetweb 1.15 is built without IPv6; a build with it gets civetweb's own syntax.
  std::string any = CivetListeningPort("[::]:9652", false);
  EXPECT_TRUE(any == "9652" || any == "+9652") << any;
  try {
    std::string loopback = CivetListeningPort("[::1]:9652", true);
    EXPECT_EQ(loopback, "[::1]:9652s");
  } catch (const UsageError& e) {
    EXPECT_EQ(std::string(e.what()),
              "invalid listen address \"[::1]:9652\": IPv6 addresses are not supported by this civetweb build; use "
              "an IPv4 address");
  }
}

TEST(HttpListenAddressTest, InvalidAddresses) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"9652", "missing port (expected host:port, e.g. :9652)"},
      {"", "missing port (expected host:port, e.g. :9652)"},
      {"127.0.0.1", "missing port (expected host:port, e.g. :9652)"},
      {"127.0.0.1:", "missing port (expected host:port, e.g. :9652)"},
      {":0", "port 0 is not allowed"},
      {":65536", "port 65536 is above 65535"},
      {":123456789012", "port 123456789012 is above 65535"},
      {":http", "port \"http\" is not a number"},
      {":-1", "port \"-1\" is not a number"},
      {":96 52", "port \"96 52\" is not a number"},
      {"::1:9652", "IPv6 addresses must be written as [address]:port"},
      {"[::1:9652", "missing ']' after the IPv6 address"},
      {"[::1]", "missing port (expected [address]:port)"},
      {"[::1]9652", "missing port (expected [address]:port)"},
      {"[nope]:9652", "not an IPv6 address in brackets"},
      {"my host:9652", "\"my host\" is neither an IP address nor a host name"},
      {"/tmp/sock:9652", "\"/tmp/sock\" is neither an IP address nor a host name"},
  };
  for (const auto& [address, problem] : cases) {
    try {
      CivetListeningPort(address, false);
      ADD_FAILURE() << address << " was accepted";
    } catch (const UsageError& e) {
      EXPECT_EQ(std::string(e.what()), "invalid listen address \"" + address + "\": " + problem);
    }
  }
  // An unresolvable name (.invalid never resolves, RFC 2606) is a usage error too.
  EXPECT_THROW(CivetListeningPort("nosuchhost.invalid:9652", false), UsageError);
}

TEST(WebBcryptTest, KnownHashes) {
  EXPECT_TRUE(CheckBcrypt(kAlicePassword, kAliceHash));
  EXPECT_FALSE(CheckBcrypt("correct horse ", kAliceHash));
  EXPECT_FALSE(CheckBcrypt("", kAliceHash));
  EXPECT_TRUE(CheckBcrypt("s3cret:with colon", kBobHash));
  EXPECT_FALSE(CheckBcrypt("s3cret", kBobHash));
  // $2b$ and $2y$ are the same algorithm for these passwords; only the prefix differs.
  std::string b = kAliceHash;
  b[2] = 'b';
  EXPECT_TRUE(CheckBcrypt(kAlicePassword, b));
  EXPECT_FALSE(CheckBcrypt("wrong", b));
}

TEST(WebBcryptTest, MalformedInput) {
  EXPECT_FALSE(CheckBcrypt(kAlicePassword, ""));
  EXPECT_FALSE(CheckBcrypt(kAlicePassword, "correct horse"));
  EXPECT_FALSE(CheckBcrypt(kAlicePassword, kAliceHash.substr(0, 59)));
  EXPECT_FALSE(CheckBcrypt(kAlicePassword, "$1$abcdefgh$abcdefghijklmnopqrstuv"));
  // A NUL must not end the password early.
  EXPECT_FALSE(CheckBcrypt(kAlicePassword + std::string(1, '\0') + "junk", kAliceHash));
}

}  // namespace
}  // namespace scry
