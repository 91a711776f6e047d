/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A TLS server that loads its own OpenSSL configuration, as Postfix does
 * with tls_config_file and tls_config_name, linked against libssl only (no
 * libemsguard): test/preload_config.sh runs it under libemsguard-preload.so
 * (issue 15, attack round 2, R2).  The preload must apply the policy of the
 * configuration the process's OpenSSL actually loaded, not the default
 * file's.
 *
 *   own_config_server MODE ARG CERT KEY NCONN [early]
 *
 * MODE filename: OPENSSL_INIT_set_config_filename(ARG), the program's file.
 * MODE appname:  OPENSSL_INIT_set_config_appname(ARG), a section of the
 *                default file (OPENSSL_CONF) other than openssl_conf.
 * MODE default:  no settings of its own (ARG ignored): OpenSSL's default.
 * early:         before its own OpenSSL initialisation, it dlopen()s
 *                libssl.so.3, as a program that loads a plugin first does;
 *                under the preload that sets the preload up before the
 *                program has chosen its configuration.
 *
 * Prints `provider emsguard=0|1` (active in the default library context
 * after the program's initialisation), then either `ctx=failed` (SSL_CTX_new
 * returned NULL; OpenSSL's errors on stderr, exit 4) or `port N`, and
 * serves NCONN connections one after the other, printing for each
 * `conn I: ok version=V ems=E` or `conn I: failed`.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>

static int load_own_configuration(const char *mode, const char *arg)
{
    OPENSSL_INIT_SETTINGS *settings;
    int ok;

    if (strcmp(mode, "default") == 0)
        return 1;
    if ((settings = OPENSSL_INIT_new()) == NULL)
        return 0;
    if (strcmp(mode, "filename") == 0)
        ok = OPENSSL_INIT_set_config_filename(settings, arg);
    else if (strcmp(mode, "appname") == 0)
        ok = OPENSSL_INIT_set_config_appname(settings, arg);
    else
        ok = 0;
    ok = ok && OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, settings);
    OPENSSL_INIT_free(settings);
    return ok;
}

int main(int argc, char **argv)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    SSL_CTX *ctx;
    int lfd, i, n;

    if (argc < 6 || argc > 7 || (argc == 7 && strcmp(argv[6], "early") != 0)) {
        fprintf(stderr, "usage: own_config_server filename|appname|default ARG CERT KEY "
                        "NCONN [early]\n");
        return 2;
    }
    n = atoi(argv[5]);
    if (argc == 7 && dlopen("libssl.so.3", RTLD_NOW) == NULL) {
        fprintf(stderr, "dlopen libssl.so.3: %s\n", dlerror());
        return 3;
    }
    if (!load_own_configuration(argv[1], argv[2])) {
        fprintf(stderr, "cannot load the program's configuration\n");
        ERR_print_errors_fp(stderr);
        return 3;
    }
    printf("provider emsguard=%d\n", OSSL_PROVIDER_available(NULL, "emsguard"));
    fflush(stdout);
    if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
        printf("ctx=failed\n");
        fflush(stdout);
        ERR_print_errors_fp(stderr);
        return 4;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, argv[3]) != 1
        || SSL_CTX_use_PrivateKey_file(ctx, argv[4], SSL_FILETYPE_PEM) != 1) {
        ERR_print_errors_fp(stderr);
        return 3;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0
        || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 8) != 0
        || getsockname(lfd, (struct sockaddr *)&sa, &len) != 0) {
        perror("own_config_server");
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
            if (ok) {
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
    return 0;
}
