// The metrics HTTP server over real sockets: plain, basic auth, TLS, client certificates, bind errors.
// Requests go through the curl CLI, certificates come from the openssl CLI.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "scry/errors.h"
#include "scry/http_server.h"

namespace scry {
namespace {

namespace fs = std::filesystem;

// htpasswd -nbBC 4 bob 's3cret:with colon' (cost 4 keeps the many requests here cheap).
const std::string kBobHash = "$2y$04$rvyFc6fANx8MA04CzXwNH.hxGCF1YVd24kO1t/L8fmCZhl4eVUMxK";
const std::string kBobPassword = "s3cret:with colon";
const std::string kLanding = "<html><body><h1>scry-test exporter</h1><a href=\"/metrics\">Metrics</a></body></html>";

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Files for TLS, made once: server cert/key (CN=localhost), a second unrelated key, and a client
// CA with one client certificate signed by it.
class Pki {
 public:
  static const Pki& Get() {
    static Pki pki;
    return pki;
  }
  std::string dir;

 private:
  Pki() {
    char tmpl[] = "/tmp/scry-http-test-XXXXXX";
    dir = mkdtemp(tmpl);
    std::string cmd =
        "cd '" + dir +
        "' && openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 -keyout key.pem -out cert.pem"
        " && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out other-key.pem"
        " && openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=scry-test-ca -days 1 -keyout ca.key -out ca.pem"
        " && openssl req -newkey rsa:2048 -nodes -subj /CN=scraper -keyout client.key -out client.csr"
        " && openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -out client.pem"
        " && openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=stranger -days 1 -keyout stranger.key "
        "-out stranger.pem";
    cmd = "(" + cmd + ") >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("openssl failed: " + cmd);
  }
  ~Pki() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

// Debian 12's civetweb needs a compat library to use OpenSSL 3 (see libcommon/compat); the build
// puts it next to this binary, where HttpServer looks for it.
void UseSslCompat() {
  std::string exe = fs::read_symlink("/proc/self/exe").parent_path().string();
  ASSERT_TRUE(fs::exists(exe + "/libscry-sslcompat.so")) << "the build did not make libscry-sslcompat.so";
}

struct Response {
  int curl_exit = -1;
  int status = 0;  // 0: no HTTP response at all
  std::string headers;
  std::string body;
};

// One request with the curl CLI. args go before the URL, shell-quoted by the caller.
Response Fetch(const std::string& url, const std::string& args = "") {
  char tmpl[] = "/tmp/scry-http-fetch-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::string cmd = "curl -sS --max-time 20 -o '" + dir + "/body' -D '" + dir + "/headers' -w '%{http_code}' " +
                    args + " '" + url + "' 2>'" + dir + "/stderr'";
  Response r;
  FILE* p = popen(cmd.c_str(), "r");
  std::string code;
  char buf[64];
  while (p != nullptr && fgets(buf, sizeof(buf), p) != nullptr) code += buf;
  int rc = p != nullptr ? pclose(p) : -1;
  r.curl_exit = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  r.status = code.empty() ? 0 : std::atoi(code.c_str());
  r.headers = Slurp(dir + "/headers");
  r.body = Slurp(dir + "/body");
  std::error_code ec;
  fs::remove_all(dir, ec);
  return r;
}

std::string BasicAuth(const std::string& user, const std::string& password) {
  return "-u '" + user + ":" + password + "'";
}

// A port nobody listens on right now: bind to port 0 and let go of it.
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) throw std::runtime_error("bind");
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// A registry with one counter, as an exporter would register.
std::shared_ptr<prometheus::Registry> TestRegistry() {
  auto registry = std::make_shared<prometheus::Registry>();
  auto& family = prometheus::BuildCounter().Name("scry_test_events_total").Help("Test events.").Register(*registry);
  family.Add({{"kind", "unit"}}).Increment(42);
  return registry;
}

struct Started {
  std::unique_ptr<HttpServer> server;
  int port = 0;
};

Started Start(const WebConfig& config, const std::string& landing = kLanding) {
  Started s;
  s.port = FreePort();
  s.server = std::make_unique<HttpServer>("127.0.0.1:" + std::to_string(s.port), config, landing);
  s.server->Register(TestRegistry());
  return s;
}

WebConfig TlsConfig(bool compat = true) {
  const Pki& pki = Pki::Get();
  if (compat) UseSslCompat();
  WebConfig c;
  c.path = pki.dir + "/web.yml";
  c.cert_file = pki.dir + "/cert.pem";
  c.key_file = pki.dir + "/key.pem";
  return c;
}

std::string Url(const Started& s, const std::string& path, bool tls = false) {
  return std::string(tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(s.port) + path;
}

TEST(HttpServerTest, ServesMetricsAndLandingPage) {
  Started s = Start(WebConfig{});
  EXPECT_EQ(s.server->ListeningPorts(), std::vector<int>{s.port});

  Response m = Fetch(Url(s, "/metrics"));
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("# TYPE scry_test_events_total counter"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("scry_test_events_total{kind=\"unit\"} 42"), std::string::npos) << m.body;
  EXPECT_NE(m.headers.find("Content-Type: text/plain"), std::string::npos) << m.headers;

  Response l = Fetch(Url(s, "/"));
  EXPECT_EQ(l.status, 200);
  EXPECT_EQ(l.body, kLanding);
  EXPECT_NE(l.headers.find("Content-Type: text/html"), std::string::npos) << l.headers;
}

TEST(HttpServerTest, DefaultLandingPageLinksMetrics) {
  Started s = Start(WebConfig{}, "");
  Response l = Fetch(Url(s, "/"));
  EXPECT_EQ(l.status, 200);
  EXPECT_NE(l.body.find("href=\"/metrics\""), std::string::npos) << l.body;
}

TEST(HttpServerTest, OtherPathsAre404) {
  Started s = Start(WebConfig{});
  for (const char* path : {"/nope", "/metrics/extra", "/metricsx", "/index.html"}) {
    Response r = Fetch(Url(s, path));
    EXPECT_EQ(r.status, 404) << path;
  }
  // Query strings do not change the route.
  EXPECT_EQ(Fetch(Url(s, "/metrics?x=1")).status, 200);
}

TEST(HttpServerTest, LandingPageMethods) {
  Started s = Start(WebConfig{});
  Response head = Fetch(Url(s, "/"), "-I");
  EXPECT_EQ(head.status, 200);
  Response post = Fetch(Url(s, "/"), "-X POST -d x=1");
  EXPECT_EQ(post.status, 405);
  EXPECT_NE(post.headers.find("Allow: GET, HEAD"), std::string::npos) << post.headers;
}

TEST(HttpServerTest, RegisteredCollectablesStayServed) {
  // The server keeps what it serves alive, even when the caller drops its pointer.
  Started s = Start(WebConfig{});
  auto extra = std::make_shared<prometheus::Registry>();
  prometheus::BuildCounter().Name("scry_test_extra_total").Help("Extra.").Register(*extra).Add({}).Increment();
  s.server->Register(extra);
  extra.reset();
  Response m = Fetch(Url(s, "/metrics"));
  EXPECT_NE(m.body.find("scry_test_extra_total 1"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("scry_test_events_total"), std::string::npos) << m.body;
}

TEST(HttpServerTest, BasicAuth) {
  WebConfig c;
  c.basic_auth_users["bob"] = kBobHash;
  Started s = Start(c);
  for (const char* path : {"/metrics", "/"}) {
    Response none = Fetch(Url(s, path));
    EXPECT_EQ(none.status, 401) << path;
    EXPECT_NE(none.headers.find("WWW-Authenticate: Basic realm="), std::string::npos) << path << none.headers;

    Response wrong = Fetch(Url(s, path), BasicAuth("bob", "s3cret"));
    EXPECT_EQ(wrong.status, 401) << path;
    EXPECT_NE(wrong.headers.find("WWW-Authenticate: Basic"), std::string::npos) << path << wrong.headers;

    EXPECT_EQ(Fetch(Url(s, path), BasicAuth("alice", kBobPassword)).status, 401) << path;
    EXPECT_EQ(Fetch(Url(s, path), "-H 'Authorization: Basic !!!notbase64'").status, 401) << path;
    EXPECT_EQ(Fetch(Url(s, path), "-H 'Authorization: Bearer abc'").status, 401) << path;

    Response right = Fetch(Url(s, path), BasicAuth("bob", kBobPassword));
    EXPECT_EQ(right.status, 200) << path;
  }
  EXPECT_NE(Fetch(Url(s, "/metrics"), BasicAuth("bob", kBobPassword)).body.find("scry_test_events_total"),
            std::string::npos);
  EXPECT_EQ(Fetch(Url(s, "/"), BasicAuth("bob", kBobPassword)).body, kLanding);
  // Unknown paths ask for credentials first, as node_exporter does.
  EXPECT_EQ(Fetch(Url(s, "/nope")).status, 401);
  EXPECT_EQ(Fetch(Url(s, "/nope"), BasicAuth("bob", kBobPassword)).status, 404);
}

TEST(HttpServerTest, Tls) {
  Started s = Start(TlsConfig());
  Response m = Fetch(Url(s, "/metrics", true), "-k");
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("scry_test_events_total{kind=\"unit\"} 42"), std::string::npos) << m.body;
  Response l = Fetch(Url(s, "/", true), "-k");
  EXPECT_EQ(l.status, 200);
  EXPECT_EQ(l.body, kLanding);

  // The certificate is the one configured: curl trusts it as a CA for "localhost".
  Response verified = Fetch("https://localhost:" + std::to_string(s.port) + "/metrics",
                            "--cacert '" + Pki::Get().dir + "/cert.pem'");
  EXPECT_EQ(verified.status, 200);

  // Plain HTTP to the TLS port gets no HTTP response.
  Response plain = Fetch(Url(s, "/metrics", false));
  EXPECT_EQ(plain.status, 0);
  EXPECT_NE(plain.curl_exit, 0);
}

TEST(HttpServerTest, TlsWithBasicAuth) {
  WebConfig c = TlsConfig();
  c.basic_auth_users["bob"] = kBobHash;
  Started s = Start(c);
  EXPECT_EQ(Fetch(Url(s, "/metrics", true), "-k").status, 401);
  EXPECT_EQ(Fetch(Url(s, "/metrics", true), "-k " + BasicAuth("bob", kBobPassword)).status, 200);
  EXPECT_EQ(Fetch(Url(s, "/", true), "-k").status, 401);
  EXPECT_EQ(Fetch(Url(s, "/", true), "-k " + BasicAuth("bob", kBobPassword)).status, 200);
}

TEST(HttpServerTest, TlsMinVersion) {
  WebConfig c = TlsConfig();
  c.min_version = "TLS13";
  Started s = Start(c);
  EXPECT_EQ(Fetch(Url(s, "/metrics", true), "-k --tlsv1.3").status, 200);
  Response old = Fetch(Url(s, "/metrics", true), "-k --tls-max 1.2");
  EXPECT_EQ(old.status, 0);
  EXPECT_NE(old.curl_exit, 0);
}

TEST(HttpServerTest, TlsCipherSuites) {
  WebConfig c = TlsConfig();
  c.ssl_cipher_list = "ECDHE-RSA-AES128-GCM-SHA256";
  Started s = Start(c);
  EXPECT_EQ(Fetch(Url(s, "/metrics", true), "-k --tls-max 1.2 --ciphers ECDHE-RSA-AES128-GCM-SHA256").status, 200);
  EXPECT_EQ(Fetch(Url(s, "/metrics", true), "-k --tls-max 1.2 --ciphers ECDHE-RSA-AES256-GCM-SHA384").status, 0);
}

TEST(HttpServerTest, TlsClientCertificates) {
  const Pki& pki = Pki::Get();
  WebConfig c = TlsConfig();
  c.client_auth_type = "RequireAndVerifyClientCert";
  c.client_ca_file = pki.dir + "/ca.pem";
  Started s = Start(c);
  const std::string client = "-k --cert '" + pki.dir + "/client.pem' --key '" + pki.dir + "/client.key'";
  const std::string stranger = "-k --cert '" + pki.dir + "/stranger.pem' --key '" + pki.dir + "/stranger.key'";
  EXPECT_EQ(Fetch(Url(s, "/metrics", true), client).status, 200);
  EXPECT_EQ(Fetch(Url(s, "/metrics", true), "-k").status, 0);
  EXPECT_EQ(Fetch(Url(s, "/metrics", true), stranger).status, 0);
}

TEST(HttpServerTest, TlsOptionalClientCertificates) {
  const Pki& pki = Pki::Get();
  WebConfig c = TlsConfig();
  c.client_auth_type = "VerifyClientCertIfGiven";
  c.client_ca_file = pki.dir + "/ca.pem";
  Started s = Start(c);
  EXPECT_EQ(Fetch(Url(s, "/metrics", true), "-k --cert '" + pki.dir + "/client.pem' --key '" + pki.dir +
                                                 "/client.key'")
                .status,
            200);
  EXPECT_EQ(Fetch(Url(s, "/metrics", true), "-k").status, 200);
  EXPECT_EQ(Fetch(Url(s, "/metrics", true),
                  "-k --cert '" + pki.dir + "/stranger.pem' --key '" + pki.dir + "/stranger.key'")
                .status,
            0);
}

TEST(HttpServerTest, TlsKeyNotMatchingCertificate) {
  WebConfig c = TlsConfig();
  c.key_file = Pki::Get().dir + "/other-key.pem";
  try {
    HttpServer server("127.0.0.1:" + std::to_string(FreePort()), c, kLanding);
    FAIL() << "started with a key that does not match the certificate";
  } catch (const UsageError& e) {
    EXPECT_EQ(std::string(e.what()), "web-config " + c.path + ": tls_server_config.key_file " + c.key_file +
                                         " does not match cert_file " + c.cert_file);
  }
  // civetweb's TLS is still usable afterwards.
  Started s = Start(TlsConfig());
  EXPECT_EQ(Fetch(Url(s, "/metrics", true), "-k").status, 200);
}

// Without the compat library, TLS must fail with a clear error, never crash in civetweb. Runs in a
// fresh process (threadsafe death test) so that nothing has loaded OpenSSL yet.
TEST(HttpServerDeathTest, TlsWithoutCompatLibraryFailsCleanly) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  WebConfig c = TlsConfig(false);
  auto clean_exit = [](int status) {
    return WIFEXITED(status) && (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 3);
  };
  EXPECT_EXIT(
      {
        unsetenv("SCRY_SSL_COMPAT_DIR");
        try {
          HttpServer server("127.0.0.1:" + std::to_string(FreePort()), c, kLanding);
          std::fprintf(stderr, "TLS works without the compat library\n");  // a fixed civetweb, or one next to us
          std::exit(0);
        } catch (const RuntimeError& e) {
          std::fprintf(stderr, "%s\n", e.what());
          std::exit(3);
        }
      },
      clean_exit, "TLS works without the compat library|cannot serve TLS on 127.0.0.1:[0-9]+: civetweb");
}

TEST(HttpServerTest, PortInUse) {
  Started first = Start(WebConfig{});
  const std::string address = "127.0.0.1:" + std::to_string(first.port);
  try {
    HttpServer second(address, WebConfig{}, kLanding);
    FAIL() << "second server started on a used port";
  } catch (const RuntimeError& e) {
    EXPECT_EQ(std::string(e.what()), "cannot listen on " + address + ": address already in use");
  }
  // The first one is unharmed.
  EXPECT_EQ(Fetch(Url(first, "/metrics")).status, 200);
}

TEST(HttpServerTest, PortInUseByAnotherSocket) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const std::string address = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  EXPECT_THROW((HttpServer{address, TlsConfig(), kLanding}), RuntimeError);
  try {
    HttpServer server(address, WebConfig{}, kLanding);
    FAIL() << "started on a used port";
  } catch (const RuntimeError& e) {
    EXPECT_EQ(std::string(e.what()), "cannot listen on " + address + ": address already in use");
  }
  close(fd);
  // Nothing was left half-started: the port is free for a server now.
  HttpServer server(address, WebConfig{}, kLanding);
  EXPECT_EQ(Fetch("http://" + address + "/").status, 200);
}

TEST(HttpServerTest, BadAddressIsUsageError) {
  EXPECT_THROW((HttpServer{"127.0.0.1", WebConfig{}, kLanding}), UsageError);
  EXPECT_THROW((HttpServer{":0", WebConfig{}, kLanding}), UsageError);
}

TEST(HttpServerTest, AddressNotOnThisHost) {
  // 192.0.2.1 (TEST-NET-1) is not assigned here, so bind fails with EADDRNOTAVAIL.
  try {
    HttpServer server("192.0.2.1:9652", WebConfig{}, kLanding);
    FAIL() << "bound to an address this host does not have";
  } catch (const RuntimeError& e) {
    EXPECT_EQ(std::string(e.what()), "cannot listen on 192.0.2.1:9652: cannot assign requested address");
  }
}

TEST(HttpServerTest, FromWebConfigFile) {
  // The whole path an exporter takes: file -> LoadWebConfig -> HttpServer.
  const Pki& pki = Pki::Get();
  UseSslCompat();
  std::string file = pki.dir + "/web-file.yml";
  std::ofstream(file) << "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n"
                      << "basic_auth_users:\n  bob: " << kBobHash << "\n";
  Started s = Start(LoadWebConfig(file));
  EXPECT_EQ(Fetch(Url(s, "/metrics", true), "-k " + BasicAuth("bob", kBobPassword)).status, 200);
  EXPECT_EQ(Fetch(Url(s, "/metrics", true), "-k").status, 401);
}

}  // namespace
}  // namespace scry
