/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A TLS server that makes an SSL_CTX before it loads its OpenSSL
 * configuration (a library's initialisation, a capability probe), linked
 * against libssl only (no libemsguard): test/preload_late.sh runs it under
 * libemsguard-preload.so (issue 15, attack round 3, S2).  The preload must
 * apply the policy of the emsguard provider active when each SSL_CTX is
 * made, not the one it saw at the first SSL_CTX.
 *
 *   late_config_server CONF CERT KEY NCONN [first]
 *
 * It makes a first SSL_CTX (TLS_method()), then CONF_modules_load_file(CONF)
 * (which may activate emsguard), prints `provider emsguard=0|1`, makes the
 * serving SSL_CTX (TLS_server_method()) and serves NCONN connections one
 * after the other.  With `first` it makes the serving SSL_CTX all the same
 * but serves with the first one (it got the policy in force before CONF
 * was loaded).
 *
 * Prints `ctx=failed` (the serving SSL_CTX_new returned NULL; OpenSSL's
 * errors on stderr, exit 4) or `port N`, then for each connection
 * `conn I: ok version=V ems=E` or `conn I: failed`.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/conf.h>
#include <openssl/err.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>

int main(int argc, char **argv)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    SSL_CTX *first, *ctx;
    int lfd, i, n, serve_first;

    if (argc < 5 || argc > 6 || (argc == 6 && strcmp(argv[5], "first") != 0)) {
        fprintf(stderr, "usage: late_config_server CONF CERT KEY NCONN [first]\n");
        return 2;
    }
    n = atoi(argv[4]);
    serve_first = argc == 6;
    if ((first = SSL_CTX_new(TLS_method())) == NULL) {
        fprintf(stderr, "the first SSL_CTX_new failed\n");
        ERR_print_errors_fp(stderr);
        return 3;
    }
    if (CONF_modules_load_file(argv[1], NULL, 0) <= 0) {
        fprintf(stderr, "cannot load %s\n", argv[1]);
        ERR_print_errors_fp(stderr);
        return 3;
    }
    printf("provider emsguard=%d\n", OSSL_PROVIDER_available(NULL, "emsguard"));
    fflush(stdout);
    if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
        printf("ctx=failed\n");
        fflush(stdout);
        ERR_print_errors_fp(stderr);
        SSL_CTX_free(first);
        return 4;
    }
    if (serve_first) { /* the second SSL_CTX made, but the first serves */
        SSL_CTX *second = ctx;

        ctx = first;
        first = second;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, argv[2]) != 1
        || SSL_CTX_use_PrivateKey_file(ctx, argv[3], SSL_FILETYPE_PEM) != 1) {
        ERR_print_errors_fp(stderr);
        return 3;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0
        || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 8) != 0
        || getsockname(lfd, (struct sockaddr *)&sa, &len) != 0) {
        perror("late_config_server");
        return 3;
    }
    printf("port %d\n", ntohs(sa.sin_port));
    fflush(stdout);
    for (i = 1; i <= n; i++) {
        int fd = accept(lfd, NULL, NULL);
        SSL *ssl = fd >= 0 ? SSL_new(ctx) : NULL;

        if (ssl != NULL) {
            SSL_set_fd(ssl, fd);
            if (SSL_accept(ssl) == 1) {
                printf("conn %d: ok version=%s ems=%ld\n", i, SSL_get_version(ssl),
                    SSL_get_extms_support(ssl));
                SSL_shutdown(ssl);
            } else {
                printf("conn %d: failed\n", i);
                ERR_print_errors_fp(stderr);
            }
            SSL_free(ssl);
        }
        if (fd >= 0)
            close(fd);
        fflush(stdout);
    }
    close(lfd);
    SSL_CTX_free(ctx);
    SSL_CTX_free(first);
    return 0;
}
