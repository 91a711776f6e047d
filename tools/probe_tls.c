/* SPDX-License-Identifier: Apache-2.0 */
/* The probe's TLS side: one handshake at a time, and what it showed. */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include "probe.h"

/* Per connection: what the message and BIO callbacks saw. */
typedef struct {
    hs_result *r;
    unsigned char first[64];
    size_t nfirst;
    unsigned long nin;
    int eof;
} conn_state;

static OSSL_LIB_CTX *probe_libctx;
static pthread_once_t libctx_once = PTHREAD_ONCE_INIT;

const char *probe_alert_text(int alert, char *buf, size_t len)
{
    const char *s = SSL_alert_desc_string_long(alert);
    char name[64];
    size_t i, j = 0;

    /* "handshake failure" -> "handshake_failure", as RFC 8446 spells it */
    for (i = 0; s[i] != '\0' && j < sizeof(name) - 1; i++)
        name[j++] = s[i] == ' ' ? '_' : (char)tolower((unsigned char)s[i]);
    name[j] = '\0';
    snprintf(buf, len, "%d (%s)", alert, name);
    return buf;
}

static void msg_cb(int write_p, int version, int content_type, const void *buf,
    size_t len, SSL *ssl, void *arg)
{
    conn_state *st = arg;
    const unsigned char *p = buf;

    (void)version;
    (void)ssl;
    if (st == NULL)
        return;
    if (content_type == SSL3_RT_ALERT && len == 2 && p[1] != 0) {
        if (write_p)
            st->r->alert_sent = p[1];
        else
            st->r->alert_recv = p[1];
    } else if (content_type == SSL3_RT_HANDSHAKE && !write_p && len >= 4) {
        if (p[0] == SSL3_MT_SERVER_HELLO)
            st->r->server_hello = 1;
        if (p[0] == SSL3_MT_NEWSESSION_TICKET) {
            st->r->nst++;
            /* body: lifetime hint (4), ticket length (2), ticket */
            if (len >= 10 && ((p[8] << 8) | p[9]) > 0)
                st->r->nst_nonempty++;
        }
    }
}

static long bio_cb(BIO *b, int oper, const char *argp, size_t len, int argi,
    long argl, int ret, size_t *processed)
{
    conn_state *st = (conn_state *)BIO_get_callback_arg(b);
    size_t n;

    (void)len;
    (void)argi;
    (void)argl;
    if (st == NULL || oper != (BIO_CB_READ | BIO_CB_RETURN))
        return ret;
    if (ret > 0 && processed != NULL && *processed > 0) {
        n = *processed;
        st->nin += (unsigned long)n;
        if (n > sizeof(st->first) - st->nfirst)
            n = sizeof(st->first) - st->nfirst;
        memcpy(st->first + st->nfirst, argp, n);
        st->nfirst += n;
    } else if (ret <= 0 && !BIO_should_retry(b)) {
        st->eof = 1;
    }
    return ret;
}

/*
 * A library context of its own: the probe must be a stock client, not one
 * that an OPENSSL_CONF with the emsguard provider (or a system-wide
 * MinProtocol/CipherString) changes.  Made once: the scan's threads share it.
 */
static void make_libctx(void)
{
    probe_libctx = OSSL_LIB_CTX_new();
}

SSL_CTX *probe_ctx_new(void)
{
    SSL_CTX *ctx;

    pthread_once(&libctx_once, make_libctx);
    if (probe_libctx == NULL)
        return NULL;
    if ((ctx = SSL_CTX_new_ex(probe_libctx, NULL, TLS_client_method())) == NULL)
        return NULL;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    /* A probe talks to whatever is there: weak keys are findings elsewhere. */
    SSL_CTX_set_security_level(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* No renegotiation or other TLS 1.2 extras that could confuse a count. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    return ctx;
}

void hs_result_clear(hs_result *r)
{
    SSL_SESSION_free(r->session);
    memset(r, 0, sizeof(*r));
    r->alert_recv = -1;
    r->alert_sent = -1;
}

static int mostly_text(const unsigned char *p, size_t n)
{
    size_t i, text = 0;

    for (i = 0; i < n; i++)
        if ((p[i] >= 0x20 && p[i] < 0x7f) || p[i] == '\r' || p[i] == '\n' || p[i] == '\t')
            text++;
    return n > 0 && text * 10 >= n * 9;
}

/* After a failed first read: a little more of what a non-TLS peer sent. */
static void read_more(int fd, conn_state *st, long long deadline)
{
    long long d = probe_now_ms() + 300;
    ssize_t n;

    if (d > deadline)
        d = deadline;
    while (st->nfirst < sizeof(st->first) && !st->eof) {
        n = recv(fd, st->first + st->nfirst, sizeof(st->first) - st->nfirst, 0);
        if (n > 0) {
            st->nfirst += (size_t)n;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            break;
        if (net_wait(fd, 0, d) != 1)
            break;
    }
}

/*
 * A plain-text reply where TLS was expected: a STARTTLS port.  SMTP and FTP
 * reply with a three-digit code: the greeting (220), or, when the server
 * read our ClientHello before it greeted, an error such as Postfix's "554
 * 5.5.0 Error: SMTP protocol synchronization".
 */
static const char *plaintext_hint(const char *first_line)
{
    if (first_line[0] >= '2' && first_line[0] <= '5'
        && first_line[1] >= '0' && first_line[1] <= '9'
        && first_line[2] >= '0' && first_line[2] <= '9'
        && (first_line[3] == ' ' || first_line[3] == '-'))
        return " (a STARTTLS port? try --starttls smtp or --starttls ftp)";
    if (strncmp(first_line, "* OK", 4) == 0)
        return " (a STARTTLS port? try --starttls imap)";
    if (strncmp(first_line, "+OK", 3) == 0)
        return " (a STARTTLS port? try --starttls pop3)";
    return "";
}

/* Why a handshake without ServerHello and without alert failed. */
static void classify(const probe_opts *o, int fd, conn_state *st, int timed_out,
    long long deadline)
{
    hs_result *r = st->r;
    char t[32], quote[80], hex[64];
    size_t i, j;
    unsigned long e;

    snprintf(t, sizeof(t), "%g s", o->timeout_ms / 1000.0);
    if (st->nin == 0) {
        if (timed_out)
            probe_err_set(&r->err, PE_TIMEOUT,
                "%s: timed out after %s waiting for the server's reply to the ClientHello",
                o->target, t);
        else
            probe_err_set(&r->err, PE_CLOSED,
                "%s closed the connection without answering the ClientHello", o->target);
        return;
    }
    if (!(st->first[0] >= 20 && st->first[0] <= 24 && (st->nfirst < 2 || st->first[1] == 3))) {
        read_more(fd, st, deadline);
        if (mostly_text(st->first, st->nfirst)) {
            for (i = j = 0; i < st->nfirst && j < sizeof(quote) - 1; i++) {
                if (st->first[i] == '\r' || st->first[i] == '\n')
                    break;
                quote[j++] = (char)st->first[i];
            }
            quote[j] = '\0';
            probe_err_set(&r->err, PE_NOT_TLS,
                "%s does not speak TLS: it answered the ClientHello with \"%s\"%s",
                o->target, quote, o->starttls != ST_NONE ? "" : plaintext_hint(quote));
        } else {
            for (i = j = 0; i < st->nfirst && i < 8; i++)
                j += (size_t)snprintf(hex + j, sizeof(hex) - j, "%s%02x", i ? " " : "",
                    st->first[i]);
            probe_err_set(&r->err, PE_GARBAGE,
                "%s sent garbage instead of a TLS record (first bytes: %s)", o->target, hex);
        }
        return;
    }
    if (timed_out) {
        probe_err_set(&r->err, PE_TIMEOUT,
            "%s: timed out after %s in the TLS handshake (%lu bytes received)",
            o->target, t, st->nin);
        return;
    }
    if (st->eof) {
        probe_err_set(&r->err, PE_TRUNCATED,
            "%s: truncated TLS response: the connection closed after %lu bytes",
            o->target, st->nin);
        return;
    }
    e = ERR_peek_last_error();
    probe_err_set(&r->err, PE_MALFORMED, "%s sent a malformed TLS response: %s", o->target,
        e != 0 && ERR_reason_error_string(e) != NULL ? ERR_reason_error_string(e)
                                                     : "handshake failed");
}

static void describe_keys(SSL *ssl, hs_result *r)
{
    EVP_PKEY *pk = NULL;
    const char *v = SSL_get_version(ssl);
    const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
    char g[32];
    size_t gl = 0;

    snprintf(r->version, sizeof(r->version), "%s", v != NULL ? v : "?");
    snprintf(r->cipher, sizeof(r->cipher), "%s", c != NULL ? SSL_CIPHER_get_name(c) : "?");
    r->group[0] = '\0';
    if (SSL_get_peer_tmp_key(ssl, &pk) && pk != NULL) {
        if (EVP_PKEY_get_group_name(pk, g, sizeof(g), &gl) && gl > 0)
            snprintf(r->group, sizeof(r->group), "%s", g);
        else if (EVP_PKEY_is_a(pk, "DH"))
            snprintf(r->group, sizeof(r->group), "DH-%d", EVP_PKEY_get_bits(pk));
        else
            snprintf(r->group, sizeof(r->group), "%s", EVP_PKEY_get0_type_name(pk));
        EVP_PKEY_free(pk);
    } else {
        snprintf(r->group, sizeof(r->group), "none");
    }
}

static SSL *prepare(SSL_CTX *ctx, const probe_opts *o, int fd, const hs_params *p,
    conn_state *st)
{
    SSL *ssl = SSL_new(ctx);
    SSL_SESSION *copy;
    BIO *bio;

    if (ssl == NULL)
        return NULL;
    if (p->tls13) {
        SSL_set_min_proto_version(ssl, TLS1_3_VERSION);
        SSL_set_max_proto_version(ssl, TLS1_3_VERSION);
    } else {
        SSL_set_min_proto_version(ssl, 0);
        SSL_set_max_proto_version(ssl, TLS1_2_VERSION);
    }
    if (p->ems)
        SSL_clear_options(ssl, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    else
        SSL_set_options(ssl, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    if (p->tickets)
        SSL_clear_options(ssl, SSL_OP_NO_TICKET);
    else
        SSL_set_options(ssl, SSL_OP_NO_TICKET);
    if (p->ciphers != NULL && !SSL_set_cipher_list(ssl, p->ciphers))
        goto err;
    if (o->sni != NULL && !SSL_set_tlsext_host_name(ssl, o->sni))
        goto err;
    /* A copy: a failed attempt marks the offered session non-resumable. */
    if (p->offer != NULL) {
        if ((copy = SSL_SESSION_dup(p->offer)) == NULL)
            goto err;
        if (!SSL_set_session(ssl, copy)) {
            SSL_SESSION_free(copy);
            goto err;
        }
        SSL_SESSION_free(copy);
    }
    if ((bio = BIO_new_socket(fd, BIO_NOCLOSE)) == NULL)
        goto err;
    BIO_set_callback_arg(bio, (char *)st);
    BIO_set_callback_ex(bio, bio_cb);
    SSL_set_bio(ssl, bio, bio);
    SSL_set_msg_callback(ssl, msg_cb);
    SSL_set_msg_callback_arg(ssl, st);
    return ssl;
err:
    SSL_free(ssl);
    return NULL;
}

/* Drives SSL_connect until done, failed or the deadline: 1, 0, -1 timeout. */
static int drive(SSL *ssl, int fd, long long deadline)
{
    int n, w;

    for (;;) {
        ERR_clear_error();
        n = SSL_connect(ssl);
        if (n == 1)
            return 1;
        switch (SSL_get_error(ssl, n)) {
        case SSL_ERROR_WANT_READ: w = 0; break;
        case SSL_ERROR_WANT_WRITE: w = 1; break;
        default: return 0;
        }
        n = net_wait(fd, w, deadline);
        if (n == 0)
            return -1;
        if (n < 0)
            return 0;
    }
}

SSL *probe_tls_on_fd(SSL_CTX *ctx, const probe_opts *o, int fd,
    const hs_params *p, long long deadline, hs_result *r)
{
    conn_state st;
    dh_observe_stats before, after;
    SSL *ssl;
    int rc;

    hs_result_clear(r);
    memset(&st, 0, sizeof(st));
    st.r = r;
    if ((ssl = prepare(ctx, o, fd, p, &st)) == NULL) {
        probe_err_set(&r->err, PE_INTERNAL, "cannot set up a TLS client: %s",
            ERR_reason_error_string(ERR_peek_last_error()));
        return NULL;
    }
    dh_observe_get(&before);
    rc = drive(ssl, fd, deadline);
    dh_observe_get(&after);
    r->dh_derived = after.derivations > before.derivations;
    r->leading_zero = after.leading_zero > before.leading_zero;
    r->resumed = SSL_session_reused(ssl);
    if (r->server_hello)
        describe_keys(ssl, r);
    if (rc == 1) {
        r->completed = 1;
        r->ems = SSL_get_extms_support(ssl) == 1;
        r->session = SSL_get1_session(ssl);
    } else if (r->alert_recv >= 0) {
        char a[96];

        probe_err_set(&r->err, PE_HANDSHAKE, "%s: handshake failed: alert %s received",
            o->target, probe_alert_text(r->alert_recv, a, sizeof(a)));
    } else if (rc < 0 || !r->server_hello) {
        /* nothing TLS-like came back: say what did */
        classify(o, fd, &st, rc < 0, deadline);
    } else if (r->alert_sent >= 0) {
        char a[96];

        probe_err_set(&r->err, PE_HANDSHAKE, "%s: handshake failed: the probe sent alert %s",
            o->target, probe_alert_text(r->alert_sent, a, sizeof(a)));
    } else {
        probe_err_set(&r->err, PE_HANDSHAKE,
            "%s: handshake failed after the ServerHello: connection closed", o->target);
    }
    /* The callbacks point into this frame. */
    SSL_set_msg_callback_arg(ssl, NULL);
    BIO_set_callback_arg(SSL_get_rbio(ssl), NULL);
    return ssl;
}

void probe_tls_close(SSL *ssl, long long deadline)
{
    int fd, n;

    if (ssl == NULL)
        return;
    fd = SSL_get_fd(ssl);
    /* close_notify keeps the session resumable on both ends */
    if (SSL_is_init_finished(ssl)) {
        ERR_clear_error();
        n = SSL_shutdown(ssl);
        if (n < 0 && SSL_get_error(ssl, n) == SSL_ERROR_WANT_WRITE
            && net_wait(fd, 1, deadline) == 1)
            SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    ERR_clear_error();
}

int probe_handshake(SSL_CTX *ctx, const probe_opts *o, const hs_params *p,
    hs_result *r)
{
    long long deadline = probe_deadline(o);
    SSL *ssl;
    int fd;

    hs_result_clear(r);
    fd = probe_open(o, deadline, &r->err);
    if (fd < 0)
        return 0;
    deadline = probe_deadline(o);
    ssl = probe_tls_on_fd(ctx, o, fd, p, deadline, r);
    probe_tls_close(ssl, deadline);
    close(fd);
    if (r->completed)
        return 1;
    /* Outcomes the checks record; the rest stops the probe. */
    switch (r->err.kind) {
    case PE_HANDSHAKE:
    case PE_CLOSED:
        return 1;
    default:
        return 0;
    }
}

/* At exit, when no probe runs any more (the library context is made once). */
void probe_ctx_cleanup(void)
{
    OSSL_LIB_CTX_free(probe_libctx);
    probe_libctx = NULL;
}
