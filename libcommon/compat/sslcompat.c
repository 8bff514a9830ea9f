/* Debian 12's civetweb (1.15) was built against OpenSSL 1.1 and loads libssl.so at run time by name,
 * asking for SSL_get_peer_certificate, which OpenSSL 3 renamed SSL_get1_peer_certificate. This
 * library is named libssl.so (soname), depends on libssl.so.3 and provides the old name, so that
 * HttpServer can preload it before civetweb starts TLS. */
struct ssl_st;
struct x509_st;
struct x509_st *SSL_get1_peer_certificate(const struct ssl_st *s);

struct x509_st *SSL_get_peer_certificate(const struct ssl_st *s)
{
	return SSL_get1_peer_certificate(s);
}
