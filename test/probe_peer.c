/* SPDX-License-Identifier: Apache-2.0 */
/*
 * probe_peer -- test-only peers for test/probe.sh, on 127.0.0.1:PORT.
 *
 *   probe_peer text PORT       answers anything with an HTTP 400 and closes
 *   probe_peer garbage PORT    answers with binary junk and closes
 *   probe_peer truncated PORT  sends the first 15 bytes of a 261-byte TLS
 *                              handshake record, then closes
 *   probe_peer hang PORT       accepts, reads, never answers
 *   probe_peer dhe PORT [--correct] [--renew] [--dhe-first]
 *                              the DHE peer of test/dhe_buggy.[ch] (TLS 1.2,
 *                              no EMS, RSA-1024, ECDHE preferred, so only a
 *                              DHE-only ClientHello gets DHE): by default it
 *                              keeps the leading zeros of the DH secret (the
 *                              bug); --correct strips them.  --renew issues a
 *                              new ticket in every resumed handshake.
 *                              --dhe-first: DHE for every client that
 *                              offers it (dhe_buggy's own order).
 *
 * Serves one connection at a time until killed.
 */
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include "dhe_buggy.h"

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static int listen_on(const char *port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)atoi(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 16) != 0) {
        perror("probe_peer: bind/listen");
        close(fd);
        return -1;
    }
    return fd;
}

static SSL_TICKET_RETURN renew_cb(SSL *s, SSL_SESSION *ss, const unsigned char *name,
    size_t namelen, SSL_TICKET_STATUS status, void *arg)
{
    (void)s;
    (void)ss;
    (void)name;
    (void)namelen;
    (void)arg;
    switch (status) {
    case SSL_TICKET_SUCCESS:
    case SSL_TICKET_SUCCESS_RENEW:
        return SSL_TICKET_RETURN_USE_RENEW;
    case SSL_TICKET_EMPTY:
    case SSL_TICKET_NO_DECRYPT:
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    default:
        return SSL_TICKET_RETURN_ABORT;
    }
}

static void serve_plain(const char *mode, int c)
{
    static const char http[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    static const unsigned char junk[] = { 0x8f, 0x00, 0xd3, 0x41, 0xff, 0x07, 0x99, 0x10,
        0x00, 0x00, 0xee, 0x5a };
    /* handshake record of 256+5 bytes: ServerHello header, then nothing */
    static const unsigned char part[] = { 0x16, 0x03, 0x03, 0x01, 0x00, 0x02, 0x00, 0x00,
        0xfc, 0x03, 0x03, 0x11, 0x22, 0x33, 0x44 };
    char buf[2048];

    if (strcmp(mode, "hang") == 0) {
        while (!stop && read(c, buf, sizeof(buf)) > 0)
            ;
        return;
    }
    if (read(c, buf, sizeof(buf)) <= 0)
        return;
    if (strcmp(mode, "text") == 0)
        (void)!write(c, http, sizeof(http) - 1);
    else if (strcmp(mode, "garbage") == 0)
        (void)!write(c, junk, sizeof(junk));
    else
        (void)!write(c, part, sizeof(part));
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    SSL_CTX *ctx = NULL;
    struct sigaction sa;
    int lfd, i, renew = 0, correct = 0, dhe_first = 0;

    if (argc < 3) {
        fprintf(stderr, "usage: probe_peer text|garbage|truncated|hang|dhe PORT "
                        "[--correct] [--renew] [--dhe-first]\n");
        return 2;
    }
    for (i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--correct") == 0)
            correct = 1;
        else if (strcmp(argv[i], "--renew") == 0)
            renew = 1;
        else if (strcmp(argv[i], "--dhe-first") == 0)
            dhe_first = 1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(mode, "dhe") == 0) {
        if (!dhe_buggy_init() || (ctx = dhe_buggy_ctx(1)) == NULL) {
            ERR_print_errors_fp(stderr);
            return 2;
        }
        dhe_buggy_set_keep_zeros(!correct);
        /* ECDHE first, as real servers do: only a DHE-only ClientHello gets
         * DHE, so the probe's other handshakes never meet the bug. */
        if (!dhe_first && !SSL_CTX_set_cipher_list(ctx, "ECDHE-RSA-AES128-GCM-SHA256:"
                                          "DHE-RSA-AES128-GCM-SHA256")) {
            ERR_print_errors_fp(stderr);
            return 2;
        }
        if (renew)
            SSL_CTX_set_session_ticket_cb(ctx, NULL, renew_cb, NULL);
    }
    if ((lfd = listen_on(argv[2])) < 0)
        return 2;
    printf("listening on %s (%s)\n", argv[2], mode);
    fflush(stdout);
    while (!stop) {
        struct timeval tv = { 10, 0 };
        int c = accept(lfd, NULL, NULL);

        if (c < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (ctx != NULL) {
            SSL *ssl = SSL_new(ctx);

            if (ssl != NULL && SSL_set_fd(ssl, c) && SSL_accept(ssl) == 1)
                SSL_shutdown(ssl);
            SSL_free(ssl);
            ERR_clear_error();
        } else {
            serve_plain(mode, c);
        }
        close(c);
    }
    close(lfd);
    if (ctx != NULL) {
        dhe_buggy_stats st;

        dhe_buggy_get_stats(&st);
        printf("dh derivations %lu leading_zero %lu\n", st.derivations, st.leading_zero);
        SSL_CTX_free(ctx);
        dhe_buggy_cleanup();
    }
    return 0;
}
