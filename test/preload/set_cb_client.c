/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A TLS client that sets its own verify or security callback after
 * SSL_CTX_new(), the usual way, linked against libssl only (no
 * libemsguard): test/preload_config.sh runs it under libemsguard-preload.so
 * (issue 15, attack round 2, R4).  The preload must chain the application's
 * callback behind emsguard's, not let it replace emsguard's: the Schannel
 * KeyExchangeAlgorithms\PKCS\ClientMinKeyBitLength check (emsguard's verify
 * callback) and Diffie-Hellman\ClientMinKeyBitLength check (its security
 * callback) still hold, a RequireExtendedMasterSecret=1 client still checks
 * TLS 1.2 servers for EMS (instead of holding itself to TLS 1.3), and the
 * application's callback is still consulted.
 *
 *   set_cb_client PORT CAFILE SETTER [MAXVER [CIPHERS]]
 *
 * SETTER, what the program does after SSL_CTX_new():
 *   ctx-verify-null   SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL)
 *   ctx-verify-app    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, app_verify)
 *   ssl-verify-app    SSL_set_verify(ssl, SSL_VERIFY_PEER, app_verify)
 *   ctx-cert-verify-app  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL) and
 *                     SSL_CTX_set_cert_verify_callback(ctx, app_cert_verify):
 *                     the application checks certificates itself (pinning)
 *                     and never calls X509_verify_cert()
 *   ctx-security-app  SSL_CTX_set_security_callback(ctx, app_security)
 *   ssl-security-app  SSL_set_security_callback(ssl, app_security)
 *   none              nothing (SSL_VERIFY_PEER through SSL_CTX_set_verify()
 *                     with the ctx's current callback, for contrast)
 * MAXVER: 1.2 or 1.3 (default: libssl's).  CIPHERS: the TLS <= 1.2 list.
 *
 * Prints the getters' answers after the setter (`get verify=app|null|other
 * security=app|null|other`, SSL_* for the ssl- setters, SSL_CTX_* for the
 * others: the application must get its own callback back), then
 * `result ok|failed version=V verify_result=N app_verify=N app_security=N`
 * (the application's callbacks' call counts).  Exit 0 when connected.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

typedef int (*security_fn)(const SSL *, const SSL_CTX *, int, int, int, void *, void *);

static int app_verify_calls, app_security_calls;

/* Keeps OpenSSL's verdict: only counts. */
static int app_verify(int ok, X509_STORE_CTX *store)
{
    (void)store;
    app_verify_calls++;
    return ok;
}

/* The application's own certificate check: trusts the peer (counted as app_verify). */
static int app_cert_verify(X509_STORE_CTX *store, void *arg)
{
    (void)store;
    (void)arg;
    app_verify_calls++;
    return 1;
}

/* A permissive policy of the application's own: everything is acceptable. */
static int app_security(const SSL *ssl, const SSL_CTX *ctx, int op, int bits, int nid,
    void *other, void *ex)
{
    (void)ssl;
    (void)ctx;
    (void)op;
    (void)bits;
    (void)nid;
    (void)other;
    (void)ex;
    app_security_calls++;
    return 1;
}

static const char *verify_name(SSL_verify_cb cb)
{
    return cb == app_verify ? "app" : cb == NULL ? "null" : "other";
}

static const char *security_name(security_fn cb)
{
    return cb == app_security ? "app" : cb == NULL ? "null" : "other";
}

static int connect_port(int port)
{
    struct sockaddr_in sa;
    int fd;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    const char *setter;
    SSL_CTX *ctx;
    SSL *ssl;
    int fd, ok;

    if (argc < 4 || argc > 6) {
        fprintf(stderr, "usage: set_cb_client PORT CAFILE SETTER [MAXVER [CIPHERS]]\n");
        return 2;
    }
    setter = argv[3];
    if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL
        || SSL_CTX_load_verify_locations(ctx, argv[2], NULL) != 1) {
        ERR_print_errors_fp(stderr);
        return 3;
    }
    if (argc > 4 && !SSL_CTX_set_max_proto_version(ctx,
                        strcmp(argv[4], "1.2") == 0 ? TLS1_2_VERSION : TLS1_3_VERSION)) {
        ERR_print_errors_fp(stderr);
        return 3;
    }
    if (argc > 5 && SSL_CTX_set_cipher_list(ctx, argv[5]) != 1) {
        ERR_print_errors_fp(stderr);
        return 3;
    }
    /* Set after SSL_CTX_new, as applications do: the preload's are in place. */
    if (strcmp(setter, "ctx-verify-null") == 0) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else if (strcmp(setter, "ctx-verify-app") == 0) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, app_verify);
    } else if (strcmp(setter, "ctx-cert-verify-app") == 0) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        SSL_CTX_set_cert_verify_callback(ctx, app_cert_verify, NULL);
    } else if (strcmp(setter, "ctx-security-app") == 0) {
        SSL_CTX_set_security_callback(ctx, app_security);
    } else if (strcmp(setter, "none") == 0) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, SSL_CTX_get_verify_callback(ctx));
    } else if (strcmp(setter, "ssl-verify-app") == 0) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, SSL_CTX_get_verify_callback(ctx));
    } else if (strcmp(setter, "ssl-security-app") != 0) {
        fprintf(stderr, "unknown setter %s\n", setter);
        return 2;
    }
    if (strncmp(setter, "ssl-", 4) != 0)
        printf("get verify=%s security=%s\n", verify_name(SSL_CTX_get_verify_callback(ctx)),
            security_name(SSL_CTX_get_security_callback(ctx)));
    if ((ssl = SSL_new(ctx)) == NULL) {
        ERR_print_errors_fp(stderr);
        return 3;
    }
    if (strcmp(setter, "ssl-verify-app") == 0)
        SSL_set_verify(ssl, SSL_VERIFY_PEER, app_verify);
    else if (strcmp(setter, "ssl-security-app") == 0)
        SSL_set_security_callback(ssl, app_security);
    if (strncmp(setter, "ssl-", 4) == 0)
        printf("get verify=%s security=%s\n", verify_name(SSL_get_verify_callback(ssl)),
            security_name(SSL_get_security_callback(ssl)));
    if ((fd = connect_port(atoi(argv[1]))) < 0) {
        perror("set_cb_client: connect");
        return 3;
    }
    SSL_set_fd(ssl, fd);
    ok = SSL_connect(ssl) == 1;
    printf("result %s version=%s verify_result=%ld app_verify=%d app_security=%d\n",
        ok ? "ok" : "failed", ok ? SSL_get_version(ssl) : "none",
        SSL_get_verify_result(ssl), app_verify_calls, app_security_calls);
    if (!ok)
        ERR_print_errors_fp(stderr);
    else
        SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
    SSL_CTX_free(ctx);
    return ok ? 0 : 1;
}
