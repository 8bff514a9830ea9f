// The metrics endpoint: prometheus-cpp's Exposer (civetweb) serving /metrics, a landing page at /,
// TLS and basic auth from a node_exporter-style web-config file.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace prometheus {
class Collectable;
class Exposer;
}  // namespace prometheus

namespace scry {

// node_exporter's web-config format (https://prometheus.io/docs/prometheus/latest/configuration/https/):
//   tls_server_config: {cert_file, key_file, client_auth_type, client_ca_file, min_version, max_version,
//                       cipher_suites, prefer_server_cipher_suites, curve_preferences}
//   http_server_config: {http2, headers}
//   basic_auth_users: {user: bcrypt hash}
// What civetweb cannot do is rejected at load time rather than silently ignored: max_version below
// TLS13, curve_preferences, http_server_config.headers, RequestClientCert and RequireAnyClientCert.
struct WebConfig {
  std::string path;               // the file it came from (for messages); empty: defaults
  std::string cert_file;          // absolute (relative paths are resolved against the file's directory)
  std::string key_file;
  std::string client_ca_file;     // empty: no client certificates
  std::string client_auth_type;   // NoClientCert (default), VerifyClientCertIfGiven, RequireAndVerifyClientCert
  std::string min_version;        // TLS10..TLS13, empty: civetweb's default (TLS 1.2 and later)
  std::string ssl_cipher_list;    // OpenSSL names of cipher_suites (TLS 1.2 and below), empty: default
  std::map<std::string, std::string> basic_auth_users;  // user -> bcrypt hash ($2a$/$2b$/$2y$)

  bool tls() const { return !cert_file.empty(); }
};

// Reads and validates a web-config file. Throws UsageError with one clear sentence on a missing
// or unreadable file, bad YAML, unknown keys, a cert without a key, a hash that is not bcrypt...
// An empty path gives the default (plain HTTP, no auth).
WebConfig LoadWebConfig(const std::string& path);

// "host:port", ":port", "[v6]:port" -> civetweb's listening_ports value ("s" appended for TLS).
// ":port" means every IPv4 interface; "localhost" means 127.0.0.1. IPv6 addresses need a civetweb
// built with IPv6 (Debian's is not). Throws UsageError.
std::string CivetListeningPort(const std::string& listen_address, bool tls);

// True if password matches the bcrypt hash (crypt_r from libcrypt). False for a malformed hash.
bool CheckBcrypt(const std::string& password, const std::string& hash);

class HttpServer {
 public:
  // Starts listening at once. Throws UsageError for a bad address or config (including a TLS key
  // that does not match its certificate), RuntimeError when the address cannot be bound (port in
  // use, permission) or civetweb cannot start. On a throw nothing is left running.
  // TLS with Debian 12's civetweb (built for OpenSSL 1.1) needs libscry-sslcompat.so, looked for in
  // $SCRY_SSL_COMPAT_DIR, the SCRY_SSL_COMPAT_DIR compile definition, the executable's directory and
  // <executable's directory>/../lib/scry; without it TLS is refused with a RuntimeError.
  // Basic auth (when configured) guards every path; / serves landing_page_html (a default page if
  // empty), /metrics the registered collectables, anything else 404.
  HttpServer(const std::string& listen_address, const WebConfig& config, const std::string& landing_page_html);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Served at /metrics, in registration order.
  void Register(const std::shared_ptr<prometheus::Collectable>& collectable);

  std::vector<int> ListeningPorts() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace scry
