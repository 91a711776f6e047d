/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The peer's address and SNI host name as log lines print them.  Both are
 * only formatted when a line is printed: the address costs a system call.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <openssl/tls1.h>
#include "internal.h"

void emsguard_peer_address(BIO *bio, char *buf, size_t len)
{
    struct sockaddr_storage sa;
    socklen_t salen = sizeof(sa);
    char host[INET6_ADDRSTRLEN] = "";
    int fd = -1;

    snprintf(buf, len, "unknown");
    if (bio == NULL || (bio = BIO_find_type(bio, BIO_TYPE_DESCRIPTOR)) == NULL
        || BIO_get_fd(bio, &fd) <= 0 || fd < 0
        || getpeername(fd, (struct sockaddr *)&sa, &salen) != 0)
        return;
    if (sa.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&sa;

        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        snprintf(buf, len, "%s:%u", host, ntohs(in->sin_port));
    } else if (sa.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&sa;

        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        snprintf(buf, len, "[%s]:%u", host, ntohs(in6->sin6_port));
    }
}

/* Copies a host name for a log line, replacing anything unprintable. */
static void copy_printable(char *dst, size_t dstlen, const unsigned char *src,
    size_t srclen)
{
    size_t i;

    if (dstlen == 0)
        return;
    for (i = 0; i < srclen && i + 1 < dstlen; i++)
        dst[i] = (src[i] > 0x20 && src[i] < 0x7f) ? (char)src[i] : '?';
    dst[i] = '\0';
}

/*
 * During ClientHello processing libssl has not parsed server_name yet, so
 * read the raw extension: a 2-byte list length, then entries of type (1),
 * length (2), name.
 */
void emsguard_sni_name(SSL *ssl, char *buf, size_t len)
{
    const unsigned char *ext;
    size_t extlen;
    const char *name;

    snprintf(buf, len, "-");
    if (SSL_is_server(ssl)
        && SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &ext, &extlen)) {
        size_t list, pos = 2;

        if (extlen < 2 || (list = ((size_t)ext[0] << 8) | ext[1]) != extlen - 2)
            return;
        while (pos + 3 <= extlen) {
            size_t nlen = ((size_t)ext[pos + 1] << 8) | ext[pos + 2];

            if (pos + 3 + nlen > extlen)
                return;
            if (ext[pos] == TLSEXT_NAMETYPE_host_name) {
                copy_printable(buf, len, ext + pos + 3, nlen);
                return;
            }
            pos += 3 + nlen;
        }
        return;
    }
    if ((name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) != NULL)
        copy_printable(buf, len, (const unsigned char *)name, strlen(name));
}
