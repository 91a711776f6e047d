/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A TLS server that sets its own ClientHello callback, linked against libssl
 * only (no libemsguard): test/preload_paths.sh runs it under
 * libemsguard-preload.so with RequireExtendedMasterSecret=1 (issue 15, F4).
 * The preload must chain the application's callback behind emsguard's, not
 * let it replace emsguard's: a legacy client is refused, and the
 * application's callback still runs for every ClientHello.
 *
 *   hello_server CERT KEY NCONN
 *
 * Listens on a free 127.0.0.1 port and prints `port N`, then serves NCONN
 * connections one after the other, printing for each
 * `conn I: ok|failed app_hello_cb=N` (N: calls of its callback so far).
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

static int app_hello_calls;

static int app_hello_cb(SSL *ssl, int *al, void *arg)
{
    (void)ssl;
    (void)al;
    (void)arg;
    app_hello_calls++;
    return SSL_CLIENT_HELLO_SUCCESS;
}

int main(int argc, char **argv)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    SSL_CTX *ctx;
    int lfd, i, n;

    if (argc != 4) {
        fprintf(stderr, "usage: hello_server CERT KEY NCONN\n");
        return 2;
    }
    n = atoi(argv[3]);
    if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
        ERR_print_errors_fp(stderr);
        return 3;
    }
    /* Set after SSL_CTX_new, as applications do: the preload's is in place. */
    SSL_CTX_set_client_hello_cb(ctx, app_hello_cb, NULL);
    if (SSL_CTX_use_certificate_chain_file(ctx, argv[1]) != 1
        || SSL_CTX_use_PrivateKey_file(ctx, argv[2], SSL_FILETYPE_PEM) != 1) {
        ERR_print_errors_fp(stderr);
        return 3;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0
        || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 8) != 0
        || getsockname(lfd, (struct sockaddr *)&sa, &len) != 0) {
        perror("hello_server");
        return 3;
    }
    printf("port %d\n", ntohs(sa.sin_port));
    fflush(stdout);
    for (i = 1; i <= n; i++) {
        int fd = accept(lfd, NULL, NULL);
        SSL *ssl = fd >= 0 ? SSL_new(ctx) : NULL;
        int ok = 0;

        if (ssl != NULL) {
            SSL_set_fd(ssl, fd);
            ok = SSL_accept(ssl) == 1;
            if (ok)
                SSL_shutdown(ssl);
            else
                ERR_print_errors_fp(stderr);
            SSL_free(ssl);
        }
        if (fd >= 0)
            close(fd);
        printf("conn %d: %s app_hello_cb=%d\n", i, ok ? "ok" : "failed", app_hello_calls);
        fflush(stdout);
    }
    close(lfd);
    SSL_CTX_free(ctx);
    return 0;
}
