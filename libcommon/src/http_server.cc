// The metrics HTTP server: prometheus-cpp's Exposer on civetweb, plus a landing page, basic auth and
// TLS from a web-config.
#include "scry/http_server.h"

#include <CivetServer.h>
#include <arpa/inet.h>
#include <civetweb.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <netdb.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include <atomic>
#include <chrono>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <string_view>
#include <thread>

#include "scry/errors.h"
#include "scry/log.h"

namespace scry {
namespace {

// prometheus-cpp-pull loads libcivetweb, but its CMake target links civetweb privately, so civetweb
// is not on our link line and `ld` refuses direct references to it. The few C functions needed here
// are looked up in the already-loaded library instead. (If scry_common ever links
// civetweb::civetweb, these can become direct calls.)
struct CivetApi {
  const mg_request_info* (*get_request_info)(const mg_connection*);
  const char* (*get_header)(const mg_connection*, const char*);
  int (*write)(mg_connection*, const void*, size_t);
  mg_context* (*get_context)(const mg_connection*);
  unsigned (*check_feature)(unsigned);
};

const CivetApi& Civet() {
  static const CivetApi api = [] {
    void* lib = dlopen("libcivetweb.so.1", RTLD_LAZY | RTLD_NOLOAD);
    if (lib == nullptr) lib = RTLD_DEFAULT;
    auto sym = [lib](const char* name) {
      void* p = dlsym(lib, name);
      if (p == nullptr) throw RuntimeError(std::string("civetweb function ") + name + " not found");
      return p;
    };
    CivetApi a;
    a.get_request_info = reinterpret_cast<decltype(a.get_request_info)>(sym("mg_get_request_info"));
    a.get_header = reinterpret_cast<decltype(a.get_header)>(sym("mg_get_header"));
    a.write = reinterpret_cast<decltype(a.write)>(sym("mg_write"));
    a.get_context = reinterpret_cast<decltype(a.get_context)>(sym("mg_get_context"));
    a.check_feature = reinterpret_cast<decltype(a.check_feature)>(sym("mg_check_feature"));
    return a;
  }();
  return api;
}

constexpr unsigned kCivetFeatureIpv6 = 8;

// For unknown users, so that a wrong name costs as much time as a wrong password.
constexpr const char* kDummyHash = "$2y$10$goX.Yz074q6NDMtnjaSDMeSZA6pNYEdFQh9Q0hguWRLP6wvO69yeG";
constexpr const char* kRealm = "scry";

[[noreturn]] void BadAddress(const std::string& address, const std::string& problem) {
  throw UsageError("invalid listen address \"" + address + "\": " + problem);
}

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

// Standard base64 with padding, as in "Authorization: Basic ...". False on anything else.
bool Base64Decode(std::string_view in, std::string& out) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (in.size() % 4 != 0) return false;
  out.clear();
  for (size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int j = 0; j < 4; ++j) {
      char c = in[i + j];
      if (c == '=' && i + 4 == in.size() && j >= 2) {
        v[j] = 0;
        ++pad;
      } else if (pad > 0 || (v[j] = value(c)) < 0) {
        return false;
      }
    }
    unsigned n = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out += static_cast<char>((n >> 16) & 0xff);
    if (pad < 2) out += static_cast<char>((n >> 8) & 0xff);
    if (pad < 1) out += static_cast<char>(n & 0xff);
  }
  return true;
}

// A PEM holding key and certificate in a memfd, because Debian's civetweb (1.15) takes both from
// one file (it has no ssl_private_key option). The key never touches a disk; the fd is closed once
// civetweb has read it.
class CombinedPem {
 public:
  CombinedPem(const std::string& key_pem, const std::string& cert_pem) {
    fd_ = memfd_create("scry-tls", MFD_CLOEXEC);
    if (fd_ < 0) throw RuntimeError(std::string("cannot create a memfd for the TLS key: ") + std::strerror(errno));
    std::string data = key_pem + "\n" + cert_pem;
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::write(fd_, data.data() + off, data.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        int err = errno;
        close(fd_);
        throw RuntimeError(std::string("cannot write the TLS key to a memfd: ") + std::strerror(err));
      }
      off += static_cast<size_t>(n);
    }
  }
  ~CombinedPem() { close(fd_); }
  CombinedPem(const CombinedPem&) = delete;
  CombinedPem& operator=(const CombinedPem&) = delete;

  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_ = -1;
};

std::string ReadWholeFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw RuntimeError("cannot read " + path + ": " + std::strerror(errno));
  std::string data;
  char buf[8192];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      throw RuntimeError("cannot read " + path + ": " + std::strerror(err));
    }
    data.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return data;
}

const char* ProtocolVersion(const std::string& min_version) {
  // civetweb's ssl_protocol_version: 2 = TLS 1.0+, 3 = 1.1+, 4 = 1.2+, 5 = 1.3 only.
  if (min_version == "TLS10") return "2";
  if (min_version == "TLS11") return "3";
  if (min_version == "TLS13") return "5";
  return "4";  // TLS12 and the default, as node_exporter
}

// Debian 12's civetweb 1.15 is built for the OpenSSL 1.1 API. It dlopens "libssl.so" and
// "libcrypto.so" and insists on SSL_get_peer_certificate, which OpenSSL 3 has only as a macro, so its
// TLS start fails (civetweb issue #1334) and a second attempt even crashes. The fix is a compat
// library with SONAME "libssl.so" that depends on libssl.so.3 and exports the old name (and
// optionally one with SONAME "libcrypto.so" for hosts without libssl-dev's symlinks): once it is
// loaded, civetweb's dlopen("libssl.so") gets it. We load it from the first directory that has it and
// refuse TLS, before civetweb can crash, if the result still lacks the symbol.
constexpr const char* kSslCompat = "libscry-sslcompat.so";
constexpr const char* kCryptoCompat = "libscry-cryptocompat.so";

std::vector<std::string> SslCompatDirs() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("SCRY_SSL_COMPAT_DIR"); env != nullptr && *env != '\0') dirs.push_back(env);
#ifdef SCRY_SSL_COMPAT_DIR
  dirs.push_back(SCRY_SSL_COMPAT_DIR);
#endif
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) {
    std::string dir(exe, static_cast<size_t>(n));
    dir = dir.substr(0, dir.rfind('/'));
    dirs.push_back(dir);
    dirs.push_back(dir + "/../lib/scry");
  }
  return dirs;
}

// Empty when civetweb can do TLS, else why not.
std::string PrepareCivetTls() {
  static std::once_flag once;
  static std::string problem;
  std::call_once(once, [] {
    for (const auto& dir : SslCompatDirs()) {
      std::string ssl = dir + "/" + kSslCompat;
      if (access(ssl.c_str(), R_OK) != 0) continue;
      if (dlopen(ssl.c_str(), RTLD_NOW) == nullptr) {
        log::Warn("cannot load the OpenSSL compat library", {{"path", ssl}, {"err", dlerror()}});
        continue;
      }
      std::string crypto = dir + "/" + kCryptoCompat;
      if (access(crypto.c_str(), R_OK) == 0 && dlopen(crypto.c_str(), RTLD_NOW) == nullptr)
        log::Warn("cannot load the OpenSSL compat library", {{"path", crypto}, {"err", dlerror()}});
      log::Debug("loaded the OpenSSL compat library for civetweb", {{"path", ssl}});
      break;
    }
    // The same look-ups civetweb makes; they only hand back what is loaded or loadable anyway.
    void* ssl = dlopen("libssl.so", RTLD_LAZY);
    if (ssl == nullptr) {
      problem = "civetweb cannot load libssl.so (install libssl-dev or scry's " + std::string(kSslCompat) + ")";
    } else if (dlsym(ssl, "SSL_get_peer_certificate") == nullptr) {
      problem = "civetweb 1.15 needs SSL_get_peer_certificate, which OpenSSL 3 lacks, and " +
                std::string(kSslCompat) + " was not found (set SCRY_SSL_COMPAT_DIR to its directory)";
    } else if (dlopen("libcrypto.so", RTLD_LAZY) == nullptr) {
      problem = "civetweb cannot load libcrypto.so (install libssl-dev or scry's " + std::string(kCryptoCompat) + ")";
    }
  });
  return problem;
}

std::string DefaultLandingPage() {
  return "<!DOCTYPE html>\n<html><head><title>scry exporter</title></head>\n"
         "<body><h1>scry exporter</h1><p><a href=\"/metrics\">Metrics</a></p></body></html>\n";
}

// Everything a running server needs; civetweb's callbacks reach it through its context.
struct Server {
  std::string listen_address;
  WebConfig config;
  std::string landing_page;
  std::string poke_address;  // IPv4 address that reaches the listener, for StopQuickly
  std::atomic<bool> ready{false};  // /metrics waits until its auth handler is in place
  std::mutex mutex;
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables;  // kept alive while served
  std::shared_ptr<prometheus::Registry> empty = std::make_shared<prometheus::Registry>();
  std::unique_ptr<prometheus::Exposer> exposer;

  ~Server();

  bool Authorized(const std::string& user, const std::string& password) const {
    auto it = config.basic_auth_users.find(user);
    if (it == config.basic_auth_users.end()) {
      CheckBcrypt(password, kDummyHash);
      return false;
    }
    return CheckBcrypt(password, it->second);
  }

  bool AuthorizedRequest(const mg_connection* conn) const {
    if (config.basic_auth_users.empty()) return true;
    const char* header = Civet().get_header(conn, "Authorization");
    if (header == nullptr) return false;
    std::string_view h(header);
    if (h.size() < 6 || strncasecmp(header, "Basic ", 6) != 0) return false;
    std::string decoded;
    if (!Base64Decode(h.substr(6), decoded)) return false;
    size_t colon = decoded.find(':');
    if (colon == std::string::npos) return false;
    return Authorized(decoded.substr(0, colon), decoded.substr(colon + 1));
  }
};

}  // namespace

std::string CivetListeningPort(const std::string& listen_address, bool tls) {
  std::string host, port;
  if (!listen_address.empty() && listen_address[0] == '[') {
    size_t close = listen_address.find(']');
    if (close == std::string::npos) BadAddress(listen_address, "missing ']' after the IPv6 address");
    host = listen_address.substr(1, close - 1);
    std::string rest = listen_address.substr(close + 1);
    if (rest.empty() || rest[0] != ':') BadAddress(listen_address, "missing port (expected [address]:port)");
    port = rest.substr(1);
    in6_addr a6{};
    if (inet_pton(AF_INET6, host.c_str(), &a6) != 1) BadAddress(listen_address, "not an IPv6 address in brackets");
  } else {
    size_t colon = listen_address.rfind(':');
    if (colon == std::string::npos) BadAddress(listen_address, "missing port (expected host:port, e.g. :9652)");
    host = listen_address.substr(0, colon);
    port = listen_address.substr(colon + 1);
    if (host.find(':') != std::string::npos)
      BadAddress(listen_address, "IPv6 addresses must be written as [address]:port");
  }

  if (port.empty()) BadAddress(listen_address, "missing port (expected host:port, e.g. :9652)");
  if (!AllDigits(port)) BadAddress(listen_address, "port \"" + port + "\" is not a number");
  if (port.size() > 5 || std::stoi(port) > 65535) BadAddress(listen_address, "port " + port + " is above 65535");
  int port_number = std::stoi(port);
  if (port_number == 0) BadAddress(listen_address, "port 0 is not allowed");
  port = std::to_string(port_number);  // drop leading zeros
  const std::string suffix = tls ? "s" : "";

  bool bracketed = !listen_address.empty() && listen_address[0] == '[';
  if (bracketed) {
    in6_addr a6{};
    inet_pton(AF_INET6, host.c_str(), &a6);
    bool any = IN6_IS_ADDR_UNSPECIFIED(&a6);
    bool ipv6 = Civet().check_feature(kCivetFeatureIpv6) != 0;
    if (any) {
      if (ipv6) return "+" + port + suffix;  // IPv6 and IPv4, as Go listens on [::]
      log::Warn("civetweb has no IPv6 support: listening on all IPv4 interfaces only",
                {{"address", listen_address}});
      return port + suffix;
    }
    if (!ipv6)
      BadAddress(listen_address, "IPv6 addresses are not supported by this civetweb build; use an IPv4 address");
    char text[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &a6, text, sizeof(text));
    return "[" + std::string(text) + "]:" + port + suffix;
  }

  if (host.empty()) return port + suffix;  // every IPv4 interface
  if (host == "localhost") return "127.0.0.1:" + port + suffix;
  in_addr a4{};
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) return host + ":" + port + suffix;

  // A host name: resolve it once, as Go's listener does, and bind its first IPv4 address.
  for (char c : host) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.')
      BadAddress(listen_address, "\"" + host + "\" is neither an IP address nor a host name");
  }
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0 || res == nullptr)
    BadAddress(listen_address, "cannot resolve \"" + host + "\" to an IPv4 address: " + gai_strerror(rc));
  char text[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr, text, sizeof(text));
  freeaddrinfo(res);
  return std::string(text) + ":" + port + suffix;
}

namespace {

// civetweb's callbacks get only the connection, so servers are found by their civetweb context.
std::shared_mutex g_servers_mutex;
std::map<const mg_context*, Server*> g_servers;

// Set while this thread is inside mg_start for the given server.
thread_local Server* t_starting = nullptr;
thread_local std::vector<std::string>* t_start_messages = nullptr;

int Respond(mg_connection* conn, int status, std::string_view reason, std::string_view content_type,
            std::string_view body, std::string_view extra_headers = {}) {
  const mg_request_info* ri = Civet().get_request_info(conn);
  bool head = ri != nullptr && ri->request_method != nullptr && std::strcmp(ri->request_method, "HEAD") == 0;
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
  out += "Content-Type: " + std::string(content_type) + "\r\n";
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  out += "Connection: close\r\n";
  out += extra_headers;
  out += "\r\n";
  if (!head) out += body;
  Civet().write(conn, out.data(), out.size());
  return status;
}

int BeginRequest(mg_connection* conn) {
  Server* impl = nullptr;
  {
    std::shared_lock lock(g_servers_mutex);
    auto it = g_servers.find(Civet().get_context(conn));
    if (it != g_servers.end()) impl = it->second;
  }
  if (impl == nullptr) return Respond(conn, 503, "Service Unavailable", "text/plain; charset=utf-8", "starting\n");

  const mg_request_info* ri = Civet().get_request_info(conn);
  std::string_view uri = ri->local_uri != nullptr ? ri->local_uri : "";
  if (uri == "/metrics") {
    if (impl->ready.load()) return 0;  // prometheus-cpp's handler, behind its own auth handler
    return Respond(conn, 503, "Service Unavailable", "text/plain; charset=utf-8", "starting\n");
  }
  // As in node_exporter, auth guards every path, not only the existing ones.
  if (!impl->AuthorizedRequest(conn))
    return Respond(conn, 401, "Unauthorized", "text/plain; charset=utf-8", "Unauthorized\n",
                   std::string("WWW-Authenticate: Basic realm=\"") + kRealm + "\"\r\n");
  if (uri != "/") return Respond(conn, 404, "Not Found", "text/plain; charset=utf-8", "404 page not found\n");
  std::string_view method = ri->request_method != nullptr ? ri->request_method : "";
  if (method != "GET" && method != "HEAD")
    return Respond(conn, 405, "Method Not Allowed", "text/plain; charset=utf-8", "method not allowed\n",
                   "Allow: GET, HEAD\r\n");
  return Respond(conn, 200, "OK", "text/html; charset=utf-8", impl->landing_page);
}

int LogMessage(const mg_connection*, const char* message) {
  std::string msg(message != nullptr ? message : "");
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == '\r')) msg.pop_back();
  if (t_start_messages != nullptr) t_start_messages->push_back(msg);
  log::Debug("civetweb", {{"msg", msg}});
  return 1;  // handled: civetweb prints nothing itself
}

void InitContext(const mg_context* ctx) {
  // Runs inside mg_start on the constructing thread, before any worker thread exists.
  if (t_starting == nullptr) return;
  std::unique_lock lock(g_servers_mutex);
  g_servers[ctx] = t_starting;
}

void Unregister(Server* impl) {
  std::unique_lock lock(g_servers_mutex);
  for (auto it = g_servers.begin(); it != g_servers.end();) {
    if (it->second == impl) {
      it = g_servers.erase(it);
    } else {
      ++it;
    }
  }
}

// Turns civetweb's start-up complaints into one clear error.
[[noreturn]] void StartFailed(const Server& impl, const std::vector<std::string>& messages,
                              const std::string& what) {
  for (const auto& m : messages) {
    if (m.find("cannot bind") != std::string::npos || m.find("cannot listen") != std::string::npos) {
      // "cannot bind to 127.0.0.1:9652: 98 (Address already in use)"
      std::string reason = m;
      size_t open = m.rfind('('), close = m.rfind(')');
      if (open != std::string::npos && close != std::string::npos && close > open)
        reason = m.substr(open + 1, close - open - 1);
      if (!reason.empty()) reason[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(reason[0])));
      throw RuntimeError("cannot listen on " + impl.listen_address + ": " + reason);
    }
  }
  for (const auto& m : messages) {
    if (m.find("load_tls_dll") != std::string::npos || m.find("cannot load") != std::string::npos)
      throw RuntimeError("cannot serve TLS on " + impl.listen_address + ": " + m);
  }
  if (impl.config.tls()) {
    // ssl_use_pem_file's complaints: a key that does not match its certificate, a bad PEM. They name
    // the memfd, so say which files instead.
    for (const auto& m : messages) {
      if (m.find("do not match") != std::string::npos || m.find("mismatch") != std::string::npos)
        throw UsageError("web-config " + impl.config.path + ": tls_server_config.key_file " + impl.config.key_file +
                         " does not match cert_file " + impl.config.cert_file);
      if (m.find("certificate") != std::string::npos || m.find("private key") != std::string::npos)
        throw UsageError("web-config " + impl.config.path + ": TLS setup failed for cert_file " +
                         impl.config.cert_file + " and key_file " + impl.config.key_file + ": " + m);
    }
  }
  std::string detail = messages.empty() ? what : messages.front();
  throw RuntimeError("cannot start the HTTP server on " + impl.listen_address + ": " + detail);
}

// Opens and closes one TCP connection to the listener.
void Poke(const std::string& address, int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  timeval timeout{0, 100 * 1000};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, address.c_str(), &a.sin_addr) == 1) connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  close(fd);
}

}  // namespace

Server::~Server() {
  if (exposer != nullptr) {
    // civetweb's master thread notices mg_stop only when its poll on the listening socket returns,
    // which takes up to 2 s when idle; connecting to it makes stopping take milliseconds.
    std::vector<int> ports = exposer->GetListeningPorts();
    std::atomic<bool> stopped{false};
    std::thread poker([&] {
      while (!stopped.load()) {
        for (int port : ports) Poke(poke_address, port);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    });
    exposer.reset();  // stops civetweb's threads before anything they use goes away
    stopped = true;
    poker.join();
  }
  Unregister(this);
}

struct HttpServer::Impl : Server {};

HttpServer::HttpServer(const std::string& listen_address, const WebConfig& config,
                       const std::string& landing_page_html)
    : impl_(std::make_unique<Impl>()) {
  impl_->listen_address = listen_address;
  impl_->config = config;
  impl_->landing_page = landing_page_html.empty() ? DefaultLandingPage() : landing_page_html;

  const std::string ports = CivetListeningPort(listen_address, config.tls());
  // "9652" and "0.0.0.0:9652" listen on every IPv4 address, loopback included.
  size_t colon = ports.rfind(':');
  impl_->poke_address = colon == std::string::npos ? "127.0.0.1" : ports.substr(0, colon);
  if (impl_->poke_address == "0.0.0.0") impl_->poke_address = "127.0.0.1";
  std::vector<std::string> options{"listening_ports", ports, "num_threads", "2"};
  std::unique_ptr<CombinedPem> pem;
  if (config.tls()) {
    if (std::string problem = PrepareCivetTls(); !problem.empty())
      throw RuntimeError("cannot serve TLS on " + listen_address + ": " + problem);
    pem = std::make_unique<CombinedPem>(ReadWholeFile(config.key_file), ReadWholeFile(config.cert_file));
    options.insert(options.end(), {"ssl_certificate", pem->path(),
                                   // the leaf again plus any intermediates
                                   "ssl_certificate_chain", config.cert_file,
                                   "ssl_protocol_version", ProtocolVersion(config.min_version),
                                   // trust only client_ca_file, never the system store
                                   "ssl_default_verify_paths", "no"});
    if (!config.ssl_cipher_list.empty()) options.insert(options.end(), {"ssl_cipher_list", config.ssl_cipher_list});
    if (config.client_auth_type == "RequireAndVerifyClientCert" ||
        config.client_auth_type == "VerifyClientCertIfGiven") {
      options.insert(options.end(),
                     {"ssl_verify_peer", config.client_auth_type == "RequireAndVerifyClientCert" ? "yes" : "optional",
                      "ssl_ca_file", config.client_ca_file});
    }
  }

  // CivetCallbacks only adds a zeroing constructor (in libcivetweb-cpp, out of our reach, see
  // Civet()) to mg_callbacks; CivetServer copies the callbacks before returning.
  static_assert(sizeof(CivetCallbacks) == sizeof(mg_callbacks));
  mg_callbacks callbacks{};
  callbacks.begin_request = BeginRequest;
  callbacks.log_message = LogMessage;
  callbacks.init_context = InitContext;

  std::vector<std::string> messages;
  t_starting = impl_.get();
  t_start_messages = &messages;
  try {
    impl_->exposer =
        std::make_unique<prometheus::Exposer>(options, reinterpret_cast<const CivetCallbacks*>(&callbacks));
  } catch (const std::exception& e) {
    t_starting = nullptr;
    t_start_messages = nullptr;
    Unregister(impl_.get());
    StartFailed(*impl_, messages, e.what());
  }
  t_starting = nullptr;
  t_start_messages = nullptr;
  pem.reset();  // civetweb has loaded the key

  if (!config.basic_auth_users.empty()) {
    Impl* impl = impl_.get();
    impl_->exposer->RegisterAuth(
        [impl](const std::string& user, const std::string& password) { return impl->Authorized(user, password); },
        kRealm, "/metrics");
  } else {
    impl_->exposer->RegisterCollectable(impl_->empty, "/metrics");  // /metrics exists before Register
  }
  impl_->ready = true;

  // The exporter logs its own "listening" line with more context.
  log::Debug("HTTP server started", {{"address", listen_address},
                                     {"tls", config.tls() ? "true" : "false"},
                                     {"basic_auth", config.basic_auth_users.empty() ? "false" : "true"}});
}

HttpServer::~HttpServer() = default;

void HttpServer::Register(const std::shared_ptr<prometheus::Collectable>& collectable) {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->collectables.push_back(collectable);
  }
  impl_->exposer->RegisterCollectable(collectable, "/metrics");
}

std::vector<int> HttpServer::ListeningPorts() const { return impl_->exposer->GetListeningPorts(); }

}  // namespace scry
