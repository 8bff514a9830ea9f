/* civetweb also loads libcrypto.so by name, which only libssl-dev provides; this empty library
 * named libcrypto.so depends on libcrypto.so.3 so that TLS works with the runtime package alone. */
