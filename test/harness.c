/* SPDX-License-Identifier: Apache-2.0 */
/*
 * In-memory TLS handshake harness (see harness.h).  The two SSLs share a BIO
 * pair and are stepped alternately until both finish, so a whole handshake,
 * including alerts, runs deterministically in one thread.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/tls1.h>
#include <openssl/x509.h>
#include "harness.h"

#define MAX_STEPS 200

static EVP_PKEY *server_key;
static const char *client_sni;
static OSSL_LIB_CTX *ctx_libctx;

void hs_set_libctx(OSSL_LIB_CTX *libctx)
{
    ctx_libctx = libctx;
}
static X509 *server_cert;

const char *hs_mech_name(hs_mech mech)
{
    static const char *const names[HS_MECH_COUNT] = {
        "session-id", "external-cache", "ticket"
    };

    return mech < HS_MECH_COUNT ? names[mech] : "?";
}

static int make_credentials(void)
{
    X509_NAME *name;

    if (server_cert != NULL)
        return 1;
    if ((server_key = EVP_EC_gen("P-256")) == NULL
        || (server_cert = X509_new()) == NULL)
        return 0;
    name = X509_get_subject_name(server_cert);
    return X509_set_version(server_cert, 2)
        && ASN1_INTEGER_set(X509_get_serialNumber(server_cert), 1)
        && X509_gmtime_adj(X509_getm_notBefore(server_cert), -3600)
        && X509_gmtime_adj(X509_getm_notAfter(server_cert), 86400)
        && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
               (const unsigned char *)"emsguard-test", -1, -1, 0)
        && X509_set_issuer_name(server_cert, name)
        && X509_set_pubkey(server_cert, server_key)
        && X509_sign(server_cert, server_key, EVP_sha256()) > 0;
}

static int set_versions(SSL_CTX *ctx, int flags)
{
    return SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)
        && SSL_CTX_set_max_proto_version(ctx,
               (flags & HS_TLS13) ? TLS1_3_VERSION : TLS1_2_VERSION);
}

SSL_CTX *hs_server_ctx(hs_mech mech, int flags)
{
    /* Fixed keys: every ticket ctx of the test accepts the others' tickets. */
    static const unsigned char ticket_keys[80] = "emsguard test ticket keys, shared by every server ctx";
    SSL_CTX *ctx;

    if (!make_credentials()
        || (ctx = SSL_CTX_new_ex(ctx_libctx, NULL, TLS_server_method())) == NULL)
        return NULL;
    if (!set_versions(ctx, flags)
        || SSL_CTX_use_certificate(ctx, server_cert) != 1
        || SSL_CTX_use_PrivateKey(ctx, server_key) != 1
        || !SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"eg", 2))
        goto err;
    if (flags & HS_NO_EMS)
        SSL_CTX_set_options(ctx, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    switch (mech) {
    case HS_MECH_SESSION_ID:
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        break;
    case HS_MECH_EXT_CACHE:
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_session_cache_mode(ctx,
            SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
        hs_ext_cache_install(ctx);
        break;
    case HS_MECH_TICKET:
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        if (SSL_CTX_set_tlsext_ticket_keys(ctx, (void *)ticket_keys,
                sizeof(ticket_keys)) != 1)
            goto err;
        break;
    default:
        goto err;
    }
    return ctx;
err:
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *hs_client_ctx(int flags)
{
    SSL_CTX *ctx = SSL_CTX_new_ex(ctx_libctx, NULL, TLS_client_method());

    if (ctx == NULL)
        return NULL;
    if (!set_versions(ctx, flags)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (flags & HS_NO_EMS)
        SSL_CTX_set_options(ctx, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    return ctx;
}

/* ---- what the wire shows ------------------------------------------------ */

struct wire_view {
    hs_result *res;
    int client_tls12_only; /* a non-empty session ID then means an offer */
};

static void scan_client_hello(const unsigned char *p, size_t len, int dtls,
    int *sid_offered, int *ext_offered, int *ems);

/* Notes EMS and the offered session in a ClientHello handshake message. */
static void read_client_hello(struct wire_view *w, const unsigned char *p,
    size_t len)
{
    int sid_offered, ext_offered, ems;

    scan_client_hello(p, len, 0, &sid_offered, &ext_offered, &ems);
    if (ems)
        w->res->hello_ems = 1;
    /* A TLS 1.3 client always sends a legacy session ID: no offer there. */
    if (ext_offered || (sid_offered && w->client_tls12_only))
        w->res->hello_offered = 1;
}

static void on_message(int write_p, int version, int content_type,
    const void *buf, size_t len, SSL *ssl, void *arg)
{
    struct wire_view *w = arg;
    const unsigned char *p = buf;

    (void)version;
    if (!write_p || len < 2)
        return;
    if (content_type == SSL3_RT_ALERT && p[0] == SSL3_AL_FATAL) {
        if (SSL_is_server(ssl))
            w->res->server_alert = p[1];
        else
            w->res->client_alert = p[1];
    } else if (content_type == SSL3_RT_HANDSHAKE) {
        if (!SSL_is_server(ssl) && p[0] == SSL3_MT_CLIENT_HELLO)
            read_client_hello(w, p, len);
        else if (SSL_is_server(ssl) && p[0] == SSL3_MT_NEWSESSION_TICKET)
            w->res->server_sent_ticket = 1;
    }
}

/* ---- driving a handshake ------------------------------------------------ */

int hs_step(SSL *ssl)
{
    int r = SSL_do_handshake(ssl);

    if (r == 1)
        return 1;
    switch (SSL_get_error(ssl, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return 0;
    default:
        return -1;
    }
}

int hs_io_step(SSL *ssl)
{
    unsigned char b;
    int r = SSL_in_init(ssl) ? SSL_do_handshake(ssl) : SSL_read(ssl, &b, 1);

    if (r > 0)
        return 1;
    switch (SSL_get_error(ssl, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return 0;
    default:
        return -1;
    }
}

static int drive(SSL *client, SSL *server)
{
    int c = 0, s = 0, i;

    for (i = 0; i < MAX_STEPS && (c == 0 || s == 0); i++) {
        if (c == 0)
            c = hs_step(client);
        if (s == 0)
            s = hs_step(server);
        /* One end failed: stop once the other has read everything sent. */
        if ((c < 0 || s < 0) && BIO_ctrl_pending(SSL_get_rbio(client)) == 0
            && BIO_ctrl_pending(SSL_get_rbio(server)) == 0)
            break;
    }
    return c == 1 && s == 1;
}

int hs_connect(SSL *client, SSL *server)
{
    BIO *cbio = NULL, *sbio = NULL;

    if (!BIO_new_bio_pair(&cbio, 0, &sbio, 0))
        return 0;
    SSL_set_bio(client, cbio, cbio);
    SSL_set_bio(server, sbio, sbio);
    SSL_set_connect_state(client);
    SSL_set_accept_state(server);
    return drive(client, server);
}

/* One byte each way: proves the keys agree and collects TLS 1.3 tickets. */
static int exchange_data(SSL *client, SSL *server)
{
    unsigned char b = 0;

    return SSL_write(server, "s", 1) == 1 && SSL_read(client, &b, 1) == 1
        && b == 's' && SSL_write(client, "c", 1) == 1
        && SSL_read(server, &b, 1) == 1 && b == 'c';
}

SSL_SESSION *hs_session_copy(const SSL_SESSION *sess)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    SSL_SESSION *copy;
    int len = i2d_SSL_SESSION((SSL_SESSION *)sess, &der);

    if (len <= 0)
        return NULL;
    p = der;
    copy = d2i_SSL_SESSION(NULL, &p, len);
    OPENSSL_free(der);
    return copy;
}

int hs_handshake(SSL_CTX *sctx, SSL_CTX *cctx, const SSL_SESSION *offer,
    hs_result *res)
{
    SSL *client = SSL_new(cctx), *server = SSL_new(sctx);
    SSL_SESSION *copy = NULL;
    struct wire_view w = { res, SSL_CTX_get_max_proto_version(cctx) == TLS1_2_VERSION };

    memset(res, 0, sizeof(*res));
    res->server_alert = res->client_alert = -1;
    if (client == NULL || server == NULL)
        goto done;
    SSL_set_msg_callback(client, on_message);
    SSL_set_msg_callback_arg(client, &w);
    SSL_set_msg_callback(server, on_message);
    SSL_set_msg_callback_arg(server, &w);
    if (client_sni != NULL && !SSL_set_tlsext_host_name(client, client_sni))
        goto done;
    if (offer != NULL
        && ((copy = hs_session_copy(offer)) == NULL || !SSL_set_session(client, copy)))
        goto done;
    if (hs_connect(client, server) && exchange_data(client, server)) {
        res->ok = 1;
        res->reused = SSL_session_reused(client);
        res->server_reused = SSL_session_reused(server);
        res->ems = SSL_get_extms_support(client) == 1;
        res->version = SSL_version(client);
        res->session = SSL_get1_session(client);
        /* SSL_free() evicts the session of a connection not shut down. */
        SSL_shutdown(client);
        SSL_shutdown(server);
    }
done:
    SSL_SESSION_free(copy);
    SSL_free(client);
    SSL_free(server);
    ERR_clear_error(); /* a refused handshake leaves its reason here */
    return res->ok;
}

void hs_set_sni(const char *name)
{
    client_sni = name;
}

void hs_result_clear(hs_result *res)
{
    SSL_SESSION_free(res->session);
    res->session = NULL;
}

/* ---- external session cache -------------------------------------------- */

#define EXT_CACHE_SLOTS 64

struct ext_entry {
    unsigned char id[SSL_MAX_SSL_SESSION_ID_LENGTH];
    unsigned int id_len;
    unsigned char *der;
    int der_len;
};

static struct ext_entry ext_cache[EXT_CACHE_SLOTS];
static int ext_new_calls, ext_get_calls, ext_remove_calls;

static struct ext_entry *ext_find(const unsigned char *id, unsigned int id_len)
{
    size_t i;

    for (i = 0; i < EXT_CACHE_SLOTS; i++)
        if (ext_cache[i].der != NULL && ext_cache[i].id_len == id_len
            && memcmp(ext_cache[i].id, id, id_len) == 0)
            return &ext_cache[i];
    return NULL;
}

static void ext_drop(struct ext_entry *e)
{
    OPENSSL_free(e->der);
    memset(e, 0, sizeof(*e));
}

int hs_ext_cache_put(const SSL_SESSION *sess)
{
    unsigned int id_len;
    const unsigned char *id = SSL_SESSION_get_id(sess, &id_len);
    struct ext_entry *e = ext_find(id, id_len);
    size_t i;

    if (e == NULL)
        for (i = 0; i < EXT_CACHE_SLOTS && e == NULL; i++)
            if (ext_cache[i].der == NULL)
                e = &ext_cache[i];
    if (e == NULL || id_len > sizeof(e->id))
        return 0;
    ext_drop(e);
    if ((e->der_len = i2d_SSL_SESSION((SSL_SESSION *)sess, &e->der)) <= 0) {
        ext_drop(e);
        return 0;
    }
    memcpy(e->id, id, id_len);
    e->id_len = id_len;
    return 1;
}

int hs_ext_cache_forget_ems(void)
{
    /* flags [13] EXPLICIT INTEGER, one content byte: AD 03 02 01 xx */
    static const unsigned char field[] = { 0xad, 0x03, 0x02, 0x01 };
    size_t i;
    int n = 0, j;

    for (i = 0; i < EXT_CACHE_SLOTS; i++)
        for (j = 0; ext_cache[i].der != NULL && j + 5 <= ext_cache[i].der_len; j++)
            if (memcmp(ext_cache[i].der + j, field, sizeof(field)) == 0
                && (ext_cache[i].der[j + 4] & 0x01) != 0) { /* SSL_SESS_FLAG_EXTMS */
                ext_cache[i].der[j + 4] &= (unsigned char)~0x01;
                n++;
                break;
            }
    return n;
}

static int ext_new_cb(SSL *ssl, SSL_SESSION *sess)
{
    (void)ssl;
    ext_new_calls++;
    hs_ext_cache_put(sess);
    return 0; /* we kept a copy, not the reference */
}

static SSL_SESSION *ext_get_cb(SSL *ssl, const unsigned char *id, int id_len,
    int *copy)
{
    struct ext_entry *e = ext_find(id, (unsigned int)id_len);
    const unsigned char *p;

    (void)ssl;
    ext_get_calls++;
    *copy = 0; /* libssl takes the reference of the session we return */
    if (e == NULL)
        return NULL;
    p = e->der;
    return d2i_SSL_SESSION(NULL, &p, e->der_len);
}

static void ext_remove_cb(SSL_CTX *ctx, SSL_SESSION *sess)
{
    unsigned int id_len;
    const unsigned char *id = SSL_SESSION_get_id(sess, &id_len);
    struct ext_entry *e = ext_find(id, id_len);

    (void)ctx;
    ext_remove_calls++;
    if (e != NULL)
        ext_drop(e);
}

void hs_ext_cache_install(SSL_CTX *ctx)
{
    SSL_CTX_sess_set_new_cb(ctx, ext_new_cb);
    SSL_CTX_sess_set_get_cb(ctx, ext_get_cb);
    SSL_CTX_sess_set_remove_cb(ctx, ext_remove_cb);
}

void hs_ext_cache_reset(void)
{
    size_t i;

    for (i = 0; i < EXT_CACHE_SLOTS; i++)
        ext_drop(&ext_cache[i]);
    ext_new_calls = ext_get_calls = ext_remove_calls = 0;
}

size_t hs_ext_cache_size(void)
{
    size_t i, n = 0;

    for (i = 0; i < EXT_CACHE_SLOTS; i++)
        n += ext_cache[i].der != NULL;
    return n;
}

int hs_ext_cache_new_calls(void)
{
    return ext_new_calls;
}

int hs_ext_cache_get_calls(void)
{
    return ext_get_calls;
}

int hs_ext_cache_remove_calls(void)
{
    return ext_remove_calls;
}

const char *hs_capture_stderr(void (*fn)(void))
{
    static char buf[8192];
    FILE *tmp = tmpfile();
    int saved = dup(STDERR_FILENO);
    size_t n;

    if (tmp == NULL || saved < 0) {
        if (tmp != NULL)
            fclose(tmp);
        if (saved >= 0)
            close(saved);
        return NULL;
    }
    fflush(stderr);
    if (dup2(fileno(tmp), STDERR_FILENO) < 0) {
        fclose(tmp);
        close(saved);
        return NULL;
    }
    fn();
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(tmp);
    n = fread(buf, 1, sizeof(buf) - 1, tmp);
    buf[n] = '\0';
    fclose(tmp);
    return buf;
}

void hs_cleanup(void)
{
    hs_ext_cache_reset();
    X509_free(server_cert);
    EVP_PKEY_free(server_key);
    server_cert = NULL;
    server_key = NULL;
}

static unsigned hello_get16(const unsigned char *p)
{
    return ((unsigned)p[0] << 8) | p[1];
}

/*
 * The one ClientHello reader of the harness: *sid_offered for a non-empty
 * session ID, *ext_offered for a non-empty session ticket or a pre_shared_key
 * extension, *ems for extension 23.  A truncated message leaves what it could
 * not reach at 0.
 */
static void scan_client_hello(const unsigned char *p, size_t len, int dtls,
    int *sid_offered, int *ext_offered, int *ems)
{
    size_t off = (dtls ? 12 : 4) + 2 + 32, n;

    *sid_offered = *ext_offered = *ems = 0;
    if (len < off + 1)
        return;
    *sid_offered = p[off] > 0;
    off += 1 + p[off];
    if (dtls) { /* cookie */
        if (len < off + 1)
            return;
        off += 1 + p[off];
    }
    if (len < off + 2)
        return;
    off += 2 + hello_get16(p + off); /* cipher suites */
    if (len < off + 1)
        return;
    off += 1 + p[off]; /* compression methods */
    if (len < off + 2)
        return;
    off += 2;
    while (len >= off + 4) {
        unsigned type = hello_get16(p + off);

        n = hello_get16(p + off + 2);
        if (type == TLSEXT_TYPE_extended_master_secret)
            *ems = 1;
        if ((type == TLSEXT_TYPE_session_ticket && n > 0) || type == TLSEXT_TYPE_psk)
            *ext_offered = 1;
        off += 4 + n;
    }
}

void hs_read_client_hello(const unsigned char *p, size_t len, int dtls, int *offered,
    int *ems)
{
    int sid_offered, ext_offered;

    scan_client_hello(p, len, dtls, &sid_offered, &ext_offered, ems);
    *offered = sid_offered || ext_offered;
}

int hs_same_object(hs_security_fn a, hs_security_fn b)
{
    void *pa, *pb;
    Dl_info ia, ib;

    memcpy(&pa, &a, sizeof(pa));
    memcpy(&pb, &b, sizeof(pb));
    return dladdr(pa, &ia) != 0 && dladdr(pb, &ib) != 0 && ia.dli_fbase == ib.dli_fbase;
}
