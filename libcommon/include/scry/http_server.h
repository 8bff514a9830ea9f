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
//   tls_server_config: {cert_file, key_file, client_auth_type, client_ca_file, min_version, ...}
//   basic_auth_users: {user: bcrypt hash}
struct WebConfig {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;     // empty: no client certificates
  std::string client_auth_type;   // NoClientCert (default), RequireAndVerifyClientCert, ...
  std::string min_version;        // TLS10..TLS13, empty: library default
  std::map<std::string, std::string> basic_auth_users;  // user -> bcrypt hash ($2a$/$2b$/$2y$)

  bool tls() const { return !cert_file.empty(); }
};

// Reads and validates a web-config file. Throws UsageError with one clear sentence on a missing
// or unreadable file, bad YAML, unknown keys, a cert without a key, a hash that is not bcrypt...
// An empty path gives the default (plain HTTP, no auth).
WebConfig LoadWebConfig(const std::string& path);

// "host:port", ":port", "[v6]:port" -> civetweb's listening_ports value. Throws UsageError.
std::string CivetListeningPort(const std::string& listen_address, bool tls);

// True if password matches the bcrypt hash (crypt_r from libcrypt).
bool CheckBcrypt(const std::string& password, const std::string& hash);

class HttpServer {
 public:
  // Starts listening at once. Throws UsageError for a bad address or config, RuntimeError when the
  // address cannot be bound (port in use, permission).
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
