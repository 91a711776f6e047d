/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Writes the binary seeds of two fuzz corpora (make fuzz-seeds):
 *   session_flags/  real i2d_SSL_SESSION encodings: TLS 1.2 with and without
 *                   EMS, by ticket and by session ID, with SNI, TLS 1.3
 *   client_hello/   a setup byte (see client_hello.c) and a real ClientHello:
 *                   with and without EMS, SNI, TLS 1.3, DHE suites, and
 *                   offering tickets sealed with the harness's fixed keys
 * The sessions come from in-memory handshakes with the test harness.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include "harness.h"

static const char *outdir;

static void die(const char *what) __attribute__((noreturn));
static void die(const char *what)
{
    fprintf(stderr, "seedgen: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

static void write_file(const char *sub, const char *name, unsigned char prefix,
    int with_prefix, const unsigned char *buf, size_t len)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s/%s", outdir, sub, name);
    if ((f = fopen(path, "wb")) == NULL)
        die(path);
    if ((with_prefix && fputc(prefix, f) == EOF) || fwrite(buf, 1, len, f) != len
        || fclose(f) != 0)
        die(path);
    printf("%s (%zu bytes)\n", path, len + (with_prefix ? 1 : 0));
}

static SSL_SESSION *session(SSL_CTX *sctx, SSL_CTX *cctx, const char *sni)
{
    hs_result res;
    SSL_SESSION *s;

    hs_set_sni(sni);
    if (!hs_handshake(sctx, cctx, NULL, &res) || res.session == NULL)
        die("handshake failed");
    s = res.session;
    res.session = NULL;
    hs_result_clear(&res);
    hs_set_sni(NULL);
    return s;
}

static void write_session(const char *name, SSL_SESSION *s)
{
    unsigned char *der = NULL;
    int len = i2d_SSL_SESSION(s, &der);

    if (len <= 0)
        die("i2d_SSL_SESSION");
    write_file("session_flags", name, 0, 0, der, (size_t)len);
    OPENSSL_free(der);
}

/* The ClientHello flight of a client of |cctx|, as the server reads it. */
static void write_hello(const char *name, unsigned char setup, SSL_CTX *cctx,
    SSL_SESSION *offer, const char *sni, const char *ciphers)
{
    SSL *c = SSL_new(cctx);
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    char *p;
    long len;

    if (c == NULL || rb == NULL || wb == NULL)
        die("SSL_new");
    BIO_set_mem_eof_return(rb, -1);
    SSL_set_bio(c, rb, wb);
    if ((offer != NULL && !SSL_set_session(c, offer))
        || (sni != NULL && !SSL_set_tlsext_host_name(c, sni))
        || (ciphers != NULL && !SSL_set_cipher_list(c, ciphers)))
        die("client setup");
    if (SSL_connect(c) != -1 || SSL_get_error(c, -1) != SSL_ERROR_WANT_READ)
        die("SSL_connect did not stop after the ClientHello");
    if ((len = BIO_get_mem_data(wb, &p)) <= 0)
        die("no ClientHello");
    write_file("client_hello", name, setup, 1, (unsigned char *)p, (size_t)len);
    SSL_free(c);
}

int main(int argc, char **argv)
{
    SSL_CTX *s_ticket, *s_ticket13, *s_sessid, *c12, *c12_noems, *c13;
    SSL_SESSION *t_ems, *t_noems, *id_ems, *t13, *t_sni;

    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    outdir = argv[1];
    if ((s_ticket = hs_server_ctx(HS_MECH_TICKET, 0)) == NULL
        || (s_ticket13 = hs_server_ctx(HS_MECH_TICKET, HS_TLS13)) == NULL
        || (s_sessid = hs_server_ctx(HS_MECH_SESSION_ID, 0)) == NULL
        || (c12 = hs_client_ctx(0)) == NULL
        || (c12_noems = hs_client_ctx(HS_NO_EMS)) == NULL
        || (c13 = hs_client_ctx(HS_TLS13)) == NULL)
        die("ctx setup");

    t_ems = session(s_ticket, c12, NULL);
    t_noems = session(s_ticket, c12_noems, NULL);
    id_ems = session(s_sessid, c12, NULL);
    t13 = session(s_ticket13, c13, "tls13.example.net");
    t_sni = session(s_ticket, c12, "www.example.com");
    write_session("tls12_ticket_ems.der", t_ems);
    write_session("tls12_ticket_no_ems.der", t_noems);
    write_session("tls12_session_id_ems.der", id_ems);
    write_session("tls13_ticket.der", t13);
    write_session("tls12_sni_ems.der", t_sni);

    /* Setups: 0x00 tickets, 0x01 session IDs, 0x04 RequireEMS, 0x10 legacy,
     * 0x40 TLS 1.3, 0x80 Schannel values. */
    write_hello("tls12_ems_sni.bin", 0x00, c12, NULL, "www.example.com", NULL);
    write_hello("tls12_no_ems_require.bin", 0x04, c12_noems, NULL, "legacy.example.org", NULL);
    write_hello("tls12_no_ems_dhe.bin", 0x00, c12_noems, NULL, "dhe.example",
        "DHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256:DHE-RSA-AES256-SHA");
    write_hello("tls13_sni.bin", 0x40, c13, NULL, "tls13.example.net", NULL);
    write_hello("tls12_no_ems_tls13_server.bin", 0x44, c12_noems, NULL, "mixed.example", NULL);
    write_hello("ticket_ems.bin", 0x00, c12, t_ems, NULL, NULL);
    write_hello("ticket_no_ems.bin", 0x00, c12_noems, t_noems, "old.example", NULL);
    write_hello("ticket_no_ems_legacy.bin", 0x10, c12_noems, t_noems, NULL, NULL);
    write_hello("ticket_ems_hello_no_ems.bin", 0x00, c12_noems, t_ems, NULL, NULL);
    write_hello("session_id_offer.bin", 0x01, c12, id_ems, NULL, NULL);
    write_hello("tls13_psk.bin", 0xc0, c13, t13, "tls13.example.net", NULL);

    SSL_SESSION_free(t_ems);
    SSL_SESSION_free(t_noems);
    SSL_SESSION_free(id_ems);
    SSL_SESSION_free(t13);
    SSL_SESSION_free(t_sni);
    SSL_CTX_free(s_ticket);
    SSL_CTX_free(s_ticket13);
    SSL_CTX_free(s_sessid);
    SSL_CTX_free(c12);
    SSL_CTX_free(c12_noems);
    SSL_CTX_free(c13);
    hs_cleanup();
    return 0;
}
