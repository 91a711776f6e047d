/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Peers for check_interop.c (see interop_util.h).  Single-threaded, like the
 * harness: the statistics are plain static counters.
 */
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include "harness.h"
#include "interop_util.h"

#define IO_MAX_STEPS 400

/* ---- ticket keys ---------------------------------------------------------- */

/* 16-byte key name, AES-256 and HMAC-SHA256 keys: fixed, shared by all ctxs. */
static const char ticket_key_name[] = "emsguard-interop";
static const char ticket_aes_key[] = "interop AES-256 ticket key......";
static const char ticket_hmac_key[] = "interop HMAC-SHA256 ticket key..";

_Static_assert(sizeof(ticket_key_name) - 1 == 16, "key name is 16 bytes");
_Static_assert(sizeof(ticket_aes_key) - 1 == 32, "AES-256 key is 32 bytes");
_Static_assert(sizeof(ticket_hmac_key) - 1 == 32, "HMAC key is 32 bytes");

static io_ticket_stats ticket_stats;

static int set_hmac_key(EVP_MAC_CTX *hctx)
{
    OSSL_PARAM params[3];

    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
        (void *)ticket_hmac_key, sizeof(ticket_hmac_key) - 1);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
        (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(hctx, params);
}

/* The body of both callbacks; |renew| is what a valid ticket is told. */
static int ticket_key(unsigned char *name, unsigned char *iv,
    EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc, int renew)
{
    const unsigned char *aes = (const unsigned char *)ticket_aes_key;

    if (enc) {
        memcpy(name, ticket_key_name, 16);
        if (RAND_bytes(iv, 16) != 1
            || !EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, aes, iv)
            || !set_hmac_key(hctx))
            return -1;
        ticket_stats.encrypts++;
        return 1;
    }
    if (memcmp(name, ticket_key_name, 16) != 0) {
        ticket_stats.unknown++;
        return 0; /* not ours: libssl treats it as undecryptable */
    }
    if (!set_hmac_key(hctx)
        || !EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, aes, iv))
        return -1;
    ticket_stats.decrypts++;
    if (!renew)
        return 1;
    ticket_stats.renewals++;
    return 2;
}

static int renewing_key_cb(SSL *ssl, unsigned char *name, unsigned char *iv,
    EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    (void)ssl;
    return ticket_key(name, iv, cctx, hctx, enc, 1);
}

static int plain_key_cb(SSL *ssl, unsigned char *name, unsigned char *iv,
    EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    (void)ssl;
    return ticket_key(name, iv, cctx, hctx, enc, 0);
}

int io_ticket_keys_install(SSL_CTX *ctx, int renew)
{
    return SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx,
               renew ? renewing_key_cb : plain_key_cb) == 1;
}

void io_ticket_stats_reset(void)
{
    memset(&ticket_stats, 0, sizeof(ticket_stats));
}

io_ticket_stats io_ticket_stats_get(void)
{
    return ticket_stats;
}

/* ---- client certificate --------------------------------------------------- */

static EVP_PKEY *client_key;
static X509 *client_cert;
static int verify_calls;

X509 *io_client_cert(void)
{
    X509_NAME *name;

    if (client_cert != NULL)
        return client_cert;
    if ((client_key = EVP_EC_gen("P-256")) == NULL
        || (client_cert = X509_new()) == NULL)
        goto err;
    name = X509_get_subject_name(client_cert);
    if (X509_set_version(client_cert, 2)
        && ASN1_INTEGER_set(X509_get_serialNumber(client_cert), 7)
        && X509_gmtime_adj(X509_getm_notBefore(client_cert), -3600)
        && X509_gmtime_adj(X509_getm_notAfter(client_cert), 86400)
        && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
               (const unsigned char *)"emsguard-interop-client", -1, -1, 0)
        && X509_set_issuer_name(client_cert, name)
        && X509_set_pubkey(client_cert, client_key)
        && X509_sign(client_cert, client_key, EVP_sha256()) > 0)
        return client_cert;
err:
    io_cleanup();
    return NULL;
}

int io_use_client_cert(SSL_CTX *ctx)
{
    return io_client_cert() != NULL
        && SSL_CTX_use_certificate(ctx, client_cert) == 1
        && SSL_CTX_use_PrivateKey(ctx, client_key) == 1;
}

int io_verify_accept_ours(int preverify_ok, X509_STORE_CTX *store)
{
    X509 *cert = X509_STORE_CTX_get_current_cert(store);

    verify_calls++;
    if (preverify_ok)
        return 1;
    /* Self-signed and in no trust store: vouch for the leaf if it is ours. */
    if (client_cert == NULL || cert == NULL
        || X509_STORE_CTX_get_error_depth(store) != 0
        || X509_cmp(cert, client_cert) != 0)
        return 0;
    X509_STORE_CTX_set_error(store, X509_V_OK); /* so the verify result is OK */
    return 1;
}

int io_verify_reject_all(int preverify_ok, X509_STORE_CTX *store)
{
    (void)preverify_ok;
    verify_calls++;
    X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
    return 0;
}

int io_verify_calls(void)
{
    return verify_calls;
}

void io_cleanup(void)
{
    X509_free(client_cert);
    EVP_PKEY_free(client_key);
    client_cert = NULL;
    client_key = NULL;
}

/* ---- a live connection ---------------------------------------------------- */

static void on_message(int write_p, int version, int content_type,
    const void *buf, size_t len, SSL *ssl, void *arg)
{
    io_wire *w = arg;
    const unsigned char *p = buf;
    int server = SSL_is_server(ssl);

    (void)version;
    if (!write_p || len < 1)
        return;
    if (content_type == SSL3_RT_ALERT && len >= 2) {
        if (p[0] == SSL3_AL_FATAL)
            *(server ? &w->server_alert : &w->client_alert) = p[1];
        else if (p[1] != SSL_AD_CLOSE_NOTIFY)
            w->warning_alerts++;
        return;
    }
    if (content_type != SSL3_RT_HANDSHAKE)
        return;
    switch (p[0]) {
    case SSL3_MT_HELLO_REQUEST:
        w->hello_requests += server;
        break;
    case SSL3_MT_CLIENT_HELLO:
        w->client_hellos += !server;
        break;
    case SSL3_MT_CERTIFICATE_REQUEST:
        w->cert_requests += server;
        break;
    case SSL3_MT_CERTIFICATE:
        w->client_certs += !server;
        break;
    case SSL3_MT_NEWSESSION_TICKET:
        w->tickets += server;
        break;
    case SSL3_MT_FINISHED:
        if (server)
            w->server_finished++;
        else
            w->client_finished++;
        break;
    default:
        break;
    }
}

int io_conn_open(io_conn *c, SSL_CTX *sctx, SSL_CTX *cctx,
    const SSL_SESSION *offer)
{
    BIO *cbio = NULL, *sbio = NULL;
    SSL_SESSION *copy = NULL;
    int ok;

    memset(c, 0, sizeof(*c));
    c->wire.server_alert = c->wire.client_alert = -1;
    if ((c->client = SSL_new(cctx)) == NULL || (c->server = SSL_new(sctx)) == NULL
        || !BIO_new_bio_pair(&cbio, 0, &sbio, 0))
        return 0;
    SSL_set_bio(c->client, cbio, cbio);
    SSL_set_bio(c->server, sbio, sbio);
    SSL_set_connect_state(c->client);
    SSL_set_accept_state(c->server);
    SSL_set_msg_callback(c->client, on_message);
    SSL_set_msg_callback_arg(c->client, &c->wire);
    SSL_set_msg_callback(c->server, on_message);
    SSL_set_msg_callback_arg(c->server, &c->wire);
    if (offer == NULL)
        return 1;
    /* A copy: a failed attempt marks the offered session not resumable. */
    ok = (copy = hs_session_copy(offer)) != NULL && SSL_set_session(c->client, copy);
    SSL_SESSION_free(copy);
    return ok;
}

/* 1 done, 0 waiting for the peer, -1 failed. */
static int status_of(SSL *ssl, int r)
{
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

static int nothing_in_flight(const io_conn *c)
{
    return BIO_ctrl_pending(SSL_get_rbio(c->client)) == 0
        && BIO_ctrl_pending(SSL_get_rbio(c->server)) == 0;
}

int io_conn_handshake(io_conn *c)
{
    int cs = 0, ss = 0, i;

    for (i = 0; i < IO_MAX_STEPS && (cs == 0 || ss == 0); i++) {
        if (cs == 0)
            cs = status_of(c->client, SSL_do_handshake(c->client));
        if (ss == 0)
            ss = status_of(c->server, SSL_do_handshake(c->server));
        if ((cs < 0 || ss < 0) && nothing_in_flight(c))
            break;
    }
    return cs == 1 && ss == 1;
}

/*
 * One SSL_read() on an established connection: 0 while it only handles
 * handshake records, -1 on an error -- or on application data, which no
 * caller sends during a renegotiation.
 */
static int pump(SSL *ssl)
{
    unsigned char b;
    int r = SSL_read(ssl, &b, 1);

    return r > 0 ? -1 : status_of(ssl, r);
}

int io_conn_server_renegotiate(io_conn *c)
{
    int sfin = c->wire.server_finished, cfin = c->wire.client_finished;
    int cs = 0, ss = 0, i;

    if (SSL_renegotiate(c->server) != 1)
        return 0;
    /* Writes the HelloRequest; the server's handshake proper waits for it. */
    if (SSL_do_handshake(c->server) != 1)
        return 0;
    for (i = 0; i < IO_MAX_STEPS; i++) {
        if (cs == 0)
            cs = pump(c->client);
        if (ss == 0)
            ss = pump(c->server);
        if (cs < 0 || ss < 0) {
            /* Let the other end read the alert, then stop. */
            if (nothing_in_flight(c))
                return 0;
            continue;
        }
        if (!SSL_renegotiate_pending(c->server) && !SSL_in_init(c->server)
            && !SSL_in_init(c->client) && c->wire.server_finished > sfin
            && c->wire.client_finished > cfin)
            return 1;
    }
    return 0;
}

int io_conn_exchange(io_conn *c)
{
    unsigned char b = 0;

    return SSL_write(c->server, "s", 1) == 1 && SSL_read(c->client, &b, 1) == 1
        && b == 's' && SSL_write(c->client, "c", 1) == 1
        && SSL_read(c->server, &b, 1) == 1 && b == 'c';
}

void io_conn_close(io_conn *c)
{
    /* SSL_free() evicts the session of a connection not shut down. */
    if (c->client != NULL && c->server != NULL && c->wire.server_alert < 0
        && c->wire.client_alert < 0 && SSL_is_init_finished(c->client)
        && SSL_is_init_finished(c->server)) {
        SSL_shutdown(c->client);
        SSL_shutdown(c->server);
    }
    SSL_free(c->client);
    SSL_free(c->server);
    c->client = c->server = NULL;
    ERR_clear_error(); /* a failed handshake leaves its reason here */
}
