/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The server's ClientHello callback (issue 15, findings F2, F3 and C2):
 * what a ClientHello may or may not get past, decided on what the
 * handshake really becomes.
 *
 *  - F2: RequireExtendedMasterSecret=1 holds when the ClientHello lists
 *    TLS 1.3 but the server ends up in TLS 1.2: a TLS 1.2-only method, a
 *    certificate TLS 1.3 cannot use (secp256k1), DTLS 1.2 receiving
 *    supported_versions with 0x0304.  The DHE avoidance holds there too.
 *  - F3: SSL_OP_NO_EXTENDED_MASTER_SECRET on the server ctx (before or
 *    after enabling) or on one SSL: with Require=1 enabling fails, or the
 *    handshake fails closed, naming the option.
 *  - C2: a renegotiation is compared with the connection's previous
 *    ClientHello, not with its established EMS state, so a server with
 *    EMS off (DisableServerExtendedMasterSecret=1) renegotiates with
 *    clients that offer EMS every time.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include "emsguard.h"
#include "harness.h"
#include "harness_check.h"

#define AL_HANDSHAKE_FAILURE 40
#define AL_PROTOCOL_VERSION 70
#define MAX_STEPS 400

/* ---- credentials ------------------------------------------------------------ */

static EVP_PKEY *p256_key, *k1_key, *rsa_key;
static X509 *p256_cert, *k1_cert, *rsa_cert;

static X509 *self_signed(EVP_PKEY *key)
{
    X509 *x = X509_new();
    X509_NAME *name;

    ck_assert_ptr_nonnull(x);
    name = X509_get_subject_name(x);
    ck_assert(X509_set_version(x, 2)
        && ASN1_INTEGER_set(X509_get_serialNumber(x), 7)
        && X509_gmtime_adj(X509_getm_notBefore(x), -3600)
        && X509_gmtime_adj(X509_getm_notAfter(x), 86400)
        && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
            (const unsigned char *)"emsguard-hello-paths", -1, -1, 0)
        && X509_set_issuer_name(x, name)
        && X509_set_pubkey(x, key)
        && X509_sign(x, key, EVP_sha256()) > 0);
    return x;
}

static void make_credentials(void)
{
    if (p256_key != NULL)
        return;
    ck_assert_ptr_nonnull(p256_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"));
    /* TLS 1.3 signature schemes name a curve; secp256k1 has none. */
    ck_assert_ptr_nonnull(k1_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1"));
    ck_assert_ptr_nonnull(rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048));
    p256_cert = self_signed(p256_key);
    k1_cert = self_signed(k1_key);
    rsa_cert = self_signed(rsa_key);
}

static void free_credentials(void)
{
    X509_free(p256_cert);
    X509_free(k1_cert);
    X509_free(rsa_cert);
    EVP_PKEY_free(p256_key);
    EVP_PKEY_free(k1_key);
    EVP_PKEY_free(rsa_key);
    p256_cert = k1_cert = rsa_cert = NULL;
    p256_key = k1_key = rsa_key = NULL;
}

/*
 * What legacy applications still use: a method fixed to TLS 1.2, on which
 * SSL_CTX_set_min/max_proto_version() change nothing.  Deprecated since
 * OpenSSL 1.1.0, which is the point of testing it.
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static const SSL_METHOD *tls12_only_server_method(void)
{
    return TLSv1_2_server_method();
}
#pragma GCC diagnostic pop

/* ---- contexts ------------------------------------------------------------- */

static SSL_CTX *server_with(const SSL_METHOD *meth, EVP_PKEY *key, X509 *cert)
{
    SSL_CTX *ctx;

    make_credentials();
    ck_assert_ptr_nonnull(ctx = SSL_CTX_new(meth));
    ck_assert_int_eq(SSL_CTX_use_certificate(ctx, cert), 1);
    ck_assert_int_eq(SSL_CTX_use_PrivateKey(ctx, key), 1);
    ck_assert_int_eq(SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"hp", 2), 1);
    return ctx;
}

/* TLS_server_method, TLS 1.2 and 1.3, P-256 certificate. */
static SSL_CTX *tls_server(void)
{
    SSL_CTX *ctx = server_with(TLS_server_method(), p256_key, p256_cert);

    ck_assert_int_eq(SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION), 1);
    ck_assert_int_eq(SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION), 1);
    return ctx;
}

/* A client of TLS 1.2 and 1.3 that offers EMS only when |ems|. */
static SSL_CTX *tls_client(int ems)
{
    SSL_CTX *ctx = hs_client_ctx(HS_TLS13 | (ems ? 0 : HS_NO_EMS));

    ck_assert_ptr_nonnull(ctx);
    return ctx;
}

/* Only TLS 1.2 (the harness's default range). */
static SSL_CTX *tls12_client(int ems)
{
    SSL_CTX *ctx = hs_client_ctx(ems ? 0 : HS_NO_EMS);

    ck_assert_ptr_nonnull(ctx);
    return ctx;
}

/*
 * Enables a policy built from NULL-terminated name/value pairs (EventLogging
 * 0 unless named); returns what EMSGUARD_enable_policy() returned.
 */
static int try_enable(SSL_CTX *ctx, ...)
{
    EMSGUARD_POLICY *policy = EMSGUARD_POLICY_new();
    const char *name;
    va_list ap;
    int ok;

    ck_assert_ptr_nonnull(policy);
    ck_assert_int_eq(EMSGUARD_POLICY_set(policy, EMSGUARD_EVENT_LOGGING, "0"), 1);
    va_start(ap, ctx);
    while ((name = va_arg(ap, const char *)) != NULL)
        ck_assert_int_eq(EMSGUARD_POLICY_set(policy, name, va_arg(ap, const char *)), 1);
    va_end(ap);
    ok = EMSGUARD_enable_policy(ctx, policy);
    EMSGUARD_POLICY_free(policy);
    return ok;
}

static void enable_require(SSL_CTX *ctx)
{
    ck_assert_int_eq(try_enable(ctx, EMSGUARD_REQUIRE_EMS, "1", NULL), 1);
}

/* ---- one handshake, with what the wire and the error queue showed ------------ */

typedef struct {
    int hellos; /* ClientHellos the server read */
    int hello_ems[4]; /* extension 23 in each */
    int server_alert, client_alert; /* first fatal alert each sent, or -1 */
} wire;

typedef struct {
    int ok; /* both ends completed the handshake */
    int version; /* server's SSL_version(), if ok */
    int ems; /* server's SSL_get_extms_support(), if ok */
    const char *cipher; /* the negotiated suite, if ok */
    int server_alert, client_alert;
    int hellos; /* ClientHellos the server read */
    int eg_error; /* emsguard queued EMSGUARD_R_EMS_REQUIRED */
    char eg_text[512]; /* ... with this text */
} pair_result;

static int hello_has_ext(const unsigned char *p, size_t len, unsigned type)
{
    size_t off = 4 + 2 + 32, n;

    if (len < off + 1)
        return -1;
    off += 1 + p[off]; /* session ID */
    if (len < off + 2)
        return -1;
    off += 2 + (((size_t)p[off] << 8) | p[off + 1]); /* cipher suites */
    if (len < off + 1)
        return -1;
    off += 1 + p[off]; /* compression methods */
    if (len < off + 2)
        return 0;
    off += 2;
    while (len >= off + 4) {
        unsigned t = ((unsigned)p[off] << 8) | p[off + 1];

        n = ((size_t)p[off + 2] << 8) | p[off + 3];
        if (t == type)
            return 1;
        off += 4 + n;
    }
    return 0;
}

static void on_message(int write_p, int version, int content_type,
    const void *buf, size_t len, SSL *ssl, void *arg)
{
    wire *w = arg;
    const unsigned char *p = buf;

    (void)version;
    if (write_p && content_type == SSL3_RT_ALERT && len >= 2 && p[0] == SSL3_AL_FATAL) {
        int *slot = SSL_is_server(ssl) ? &w->server_alert : &w->client_alert;

        if (*slot < 0)
            *slot = p[1];
    } else if (!write_p && SSL_is_server(ssl) && content_type == SSL3_RT_HANDSHAKE
        && len >= 1 && p[0] == SSL3_MT_CLIENT_HELLO && w->hellos < 4) {
        w->hello_ems[w->hellos++] = hello_has_ext(p, len, TLSEXT_TYPE_extended_master_secret);
    }
}

static void watch(SSL *ssl, wire *w)
{
    SSL_set_msg_callback(ssl, on_message);
    SSL_set_msg_callback_arg(ssl, w);
}

/* Takes emsguard's EMS_REQUIRED error (with its text) off the queue, if there. */
static void collect_errors(pair_result *r)
{
    unsigned long e;
    const char *data;
    int flags;

    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        if (ERR_GET_LIB(e) == EMSGUARD_get_error_lib()
            && ERR_GET_REASON(e) == EMSGUARD_R_EMS_REQUIRED && !r->eg_error) {
            r->eg_error = 1;
            snprintf(r->eg_text, sizeof(r->eg_text), "%s",
                (flags & ERR_TXT_STRING) && data != NULL ? data : "");
        }
    }
}

/*
 * Drives |client| and |server| (joined by a BIO pair) to the end.  libssl
 * empties this thread's error queue whenever an end steps, so the server's
 * errors are collected right after the step that failed.
 */
static int drive(SSL *client, SSL *server, pair_result *r)
{
    BIO *cbio = NULL, *sbio = NULL;
    int c = 0, s = 0, i;

    ck_assert_int_eq(BIO_new_bio_pair(&cbio, 0, &sbio, 0), 1);
    SSL_set_bio(client, cbio, cbio);
    SSL_set_bio(server, sbio, sbio);
    SSL_set_connect_state(client);
    SSL_set_accept_state(server);
    for (i = 0; i < MAX_STEPS && (c == 0 || s == 0); i++) {
        if (c == 0)
            c = hs_step(client);
        if (s == 0 && (s = hs_step(server)) < 0)
            collect_errors(r);
        if ((c < 0 || s < 0) && BIO_ctrl_pending(cbio) == 0 && BIO_ctrl_pending(sbio) == 0)
            break;
    }
    return c == 1 && s == 1;
}

/*
 * One handshake between a new SSL of each ctx; |prep| (may be NULL) sees
 * the server SSL before it starts.
 */
static void handshake(SSL_CTX *sctx, SSL_CTX *cctx, void (*prep)(SSL *server), pair_result *r)
{
    SSL *server = SSL_new(sctx), *client = SSL_new(cctx);
    wire w = { 0, { 0 }, -1, -1 };

    memset(r, 0, sizeof(*r));
    ck_assert_ptr_nonnull(server);
    ck_assert_ptr_nonnull(client);
    watch(server, &w);
    watch(client, &w);
    if (prep != NULL)
        prep(server);
    ERR_clear_error();
    r->ok = drive(client, server, r);
    if (r->ok) {
        r->version = SSL_version(server);
        r->ems = SSL_get_extms_support(server);
        r->cipher = SSL_CIPHER_get_name(SSL_get_current_cipher(server));
    }
    r->server_alert = w.server_alert;
    r->client_alert = w.client_alert;
    r->hellos = w.hellos;
    ERR_clear_error();
    SSL_free(client);
    SSL_free(server);
}

static void assert_rejected_no_ems(const pair_result *r, const SSL_CTX *sctx, const char *what)
{
    ck_assert_msg(!r->ok, "%s: GAP: the handshake completed as version 0x%04x with EMS=%d, "
                          "cipher %s", what, r->version, r->ems, r->cipher);
    ck_assert_msg(r->server_alert == AL_HANDSHAKE_FAILURE || r->server_alert == AL_PROTOCOL_VERSION,
        "%s: server alert %d", what, r->server_alert);
    ck_assert_msg(r->eg_error, "%s: no EMSGUARD_R_EMS_REQUIRED on the error queue", what);
    ck_assert_msg(strstr(r->eg_text, "Extended Master Secret") != NULL,
        "%s: unclear error text '%s'", what, r->eg_text);
    ck_assert_uint_eq(hs_counter(sctx, EMSGUARD_CNT_REJECTED_NO_EMS), 1);
    ck_assert_uint_eq(hs_counter(sctx, EMSGUARD_CNT_FULL_WITHOUT_EMS), 0);
}

/* ---- F2: the version actually negotiated ------------------------------------ */

/* (a) A method fixed to TLS 1.2: the TLS 1.3 in the ClientHello never happens. */
START_TEST(test_require_tls12_method_tls13_client)
{
    SSL_CTX *sctx = server_with(tls12_only_server_method(), p256_key, p256_cert);
    SSL_CTX *legacy = tls_client(0), *ems_client = tls_client(1);
    pair_result r;

    enable_require(sctx);
    handshake(sctx, legacy, NULL, &r);
    assert_rejected_no_ems(&r, sctx, "TLSv1_2_server_method, legacy TLS 1.3-capable client");
    ck_assert_int_eq(r.server_alert, AL_HANDSHAKE_FAILURE);
    ck_assert_ptr_nonnull(strstr(r.eg_text, "RequireExtendedMasterSecret=1"));
    /* Control: the same client with EMS gets TLS 1.2 with EMS. */
    handshake(sctx, ems_client, NULL, &r);
    ck_assert_msg(r.ok, "EMS client refused: alert %d", r.server_alert);
    ck_assert_int_eq(r.version, TLS1_2_VERSION);
    ck_assert_int_eq(r.ems, 1);
    SSL_CTX_free(ems_client);
    SSL_CTX_free(legacy);
    SSL_CTX_free(sctx);
}
END_TEST

static void cap_at_tls12(SSL *server)
{
    ck_assert_int_eq(SSL_set_max_proto_version(server, TLS1_2_VERSION), 1);
}

/* (a) TLS_server_method capped at 1.2 per SSL, and on the ctx after enabling. */
START_TEST(test_require_capped_tls12_tls13_client)
{
    SSL_CTX *sctx = tls_server(), *legacy = tls_client(0);
    pair_result r;

    enable_require(sctx);
    handshake(sctx, legacy, cap_at_tls12, &r);
    assert_rejected_no_ems(&r, sctx, "max TLS 1.2 per SSL");
    ck_assert_int_eq(SSL_CTX_set_max_proto_version(sctx, TLS1_2_VERSION), 1);
    handshake(sctx, legacy, NULL, &r);
    ck_assert_msg(!r.ok, "GAP: max TLS 1.2 on the ctx after enabling: completed");
    ck_assert_uint_eq(hs_counter(sctx, EMSGUARD_CNT_REJECTED_NO_EMS), 2);
    ck_assert_uint_eq(hs_counter(sctx, EMSGUARD_CNT_FULL_WITHOUT_EMS), 0);
    SSL_CTX_free(legacy);
    SSL_CTX_free(sctx);
}
END_TEST

static SSL_CTX *k1_server(void)
{
    SSL_CTX *ctx = server_with(TLS_server_method(), k1_key, k1_cert);

    ck_assert_int_eq(SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION), 1);
    ck_assert_int_eq(SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION), 1);
    ck_assert_int_eq(SSL_CTX_set1_groups_list(ctx, "X25519:P-256:secp256k1"), 1);
    return ctx;
}

static SSL_CTX *k1_client(int ems)
{
    SSL_CTX *ctx = tls_client(ems);

    ck_assert_int_eq(SSL_CTX_set1_groups_list(ctx, "X25519:P-256:secp256k1"), 1);
    return ctx;
}

/* (b) TLS_server_method whose certificate TLS 1.3 cannot use. */
START_TEST(test_require_cert_not_tls13_capable)
{
    SSL_CTX *stock = k1_server(), *sctx = k1_server();
    SSL_CTX *legacy = k1_client(0), *ems_client = k1_client(1);
    pair_result r;

    /* The scenario is real: a stock server picks TLS 1.2 for this client. */
    handshake(stock, legacy, NULL, &r);
    ck_assert_msg(r.ok, "stock secp256k1 server: alert %d", r.server_alert);
    ck_assert_int_eq(r.version, TLS1_2_VERSION);
    ck_assert_int_eq(r.ems, 0);

    enable_require(sctx);
    handshake(sctx, legacy, NULL, &r);
    assert_rejected_no_ems(&r, sctx, "secp256k1 certificate, legacy TLS 1.3-capable client");
    /* Control: with EMS the client gets TLS 1.2 with EMS. */
    handshake(sctx, ems_client, NULL, &r);
    ck_assert_msg(r.ok, "EMS client refused: alert %d", r.server_alert);
    ck_assert_int_eq(r.version, TLS1_2_VERSION);
    ck_assert_int_eq(r.ems, 1);
    SSL_CTX_free(ems_client);
    SSL_CTX_free(legacy);
    SSL_CTX_free(sctx);
    SSL_CTX_free(stock);
}
END_TEST

/*
 * A TLS 1.3 client without EMS still gets TLS 1.3 from a server that can do
 * it; and the SSL, reset with SSL_clear() for a new connection, then serves
 * a TLS 1.2-only client with EMS (whatever the first connection needed is
 * not left behind).
 */
START_TEST(test_require_tls13_client_then_ssl_clear)
{
    SSL_CTX *sctx = tls_server(), *legacy = tls_client(0), *ems12 = tls12_client(1);
    SSL *server, *client;

    enable_require(sctx);
    ck_assert_ptr_nonnull(server = SSL_new(sctx));
    ck_assert_ptr_nonnull(client = SSL_new(legacy));
    ck_assert_msg(hs_connect(client, server) == 1, "TLS 1.3 client without EMS refused");
    ck_assert_int_eq(SSL_version(server), TLS1_3_VERSION);
    SSL_free(client);
    ck_assert_int_eq(SSL_clear(server), 1);
    ck_assert_ptr_nonnull(client = SSL_new(ems12));
    ERR_clear_error();
    ck_assert_msg(hs_connect(client, server) == 1,
        "TLS 1.2 EMS client on the same SSL after SSL_clear refused (min version %#lx)",
        (unsigned long)SSL_get_min_proto_version(server));
    ck_assert_int_eq(SSL_version(server), TLS1_2_VERSION);
    ck_assert_int_eq(SSL_get_extms_support(server), 1);
    ck_assert_uint_eq(hs_counter(sctx, EMSGUARD_CNT_REJECTED_NO_EMS), 0);
    SSL_free(client);
    SSL_free(server);
    SSL_CTX_free(ems12);
    SSL_CTX_free(legacy);
    SSL_CTX_free(sctx);
}
END_TEST

/*
 * A client of TLS 1.3 only (which sends no EMS at all) cannot end in
 * TLS 1.2: it is served without touching the SSL's minimum version.
 */
START_TEST(test_require_tls13_only_client_untouched)
{
    SSL_CTX *sctx = tls_server(), *cctx = tls_client(0);
    SSL *server, *client;

    ck_assert_int_eq(SSL_CTX_set_min_proto_version(cctx, TLS1_3_VERSION), 1);
    enable_require(sctx);
    ck_assert_ptr_nonnull(server = SSL_new(sctx));
    ck_assert_ptr_nonnull(client = SSL_new(cctx));
    ck_assert_msg(hs_connect(client, server) == 1, "TLS 1.3-only client refused");
    ck_assert_int_eq(SSL_version(server), TLS1_3_VERSION);
    ck_assert_int_eq(SSL_get_min_proto_version(server), TLS1_2_VERSION);
    SSL_free(client);
    SSL_free(server);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}
END_TEST

/*
 * A HelloRetryRequest: the second ClientHello of the handshake (no EMS
 * either) is already TLS 1.3 and must not be refused.
 */
START_TEST(test_require_tls13_after_hello_retry)
{
    SSL_CTX *sctx = tls_server(), *legacy = tls_client(0);
    pair_result r;

    /* The client's first key share (P-256) is not one the server takes. */
    ck_assert_int_eq(SSL_CTX_set1_groups_list(legacy, "P-256:X25519"), 1);
    ck_assert_int_eq(SSL_CTX_set1_groups_list(sctx, "X25519"), 1);
    enable_require(sctx);
    handshake(sctx, legacy, NULL, &r);
    ck_assert_msg(r.ok, "TLS 1.3 after HelloRetryRequest refused: alert %d (%s)",
        r.server_alert, r.eg_text);
    ck_assert_int_eq(r.hellos, 2);
    ck_assert_int_eq(r.version, TLS1_3_VERSION);
    ck_assert_uint_eq(hs_counter(sctx, EMSGUARD_CNT_REJECTED_NO_EMS), 0);
    SSL_CTX_free(legacy);
    SSL_CTX_free(sctx);
}
END_TEST

/* The rejection of a pinned handshake is logged, with the reason. */
static void reject_k1_logged(void)
{
    SSL_CTX *sctx = k1_server(), *legacy = k1_client(0);
    pair_result r;

    ck_assert_int_eq(try_enable(sctx, EMSGUARD_REQUIRE_EMS, "1",
                         EMSGUARD_EVENT_LOGGING, "1", NULL), 1);
    handshake(sctx, legacy, NULL, &r);
    ck_assert(!r.ok);
    SSL_CTX_free(legacy);
    SSL_CTX_free(sctx);
}

START_TEST(test_require_rejection_logged)
{
    const char *out = hs_capture_stderr(reject_k1_logged);

    ck_assert_ptr_nonnull(out);
    ck_assert_msg(strstr(out, "role=server rejected ClientHello") != NULL
            && strstr(out, "reason=ems-required") != NULL,
        "no rejection line in: %s", out);
}
END_TEST

/*
 * DisableDHEWithoutExtendedMasterSecret (default 1): a ClientHello without
 * EMS that lists TLS 1.3 but ends in TLS 1.2 does not get TLS_DHE_*.
 */
START_TEST(test_dhe_avoided_when_tls13_listed)
{
    static const char suites[] = "DHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256";
    SSL_CTX *stock = server_with(tls12_only_server_method(), rsa_key, rsa_cert);
    SSL_CTX *sctx = server_with(tls12_only_server_method(), rsa_key, rsa_cert);
    SSL_CTX *legacy = tls_client(0);
    pair_result r;

    ck_assert_int_eq(SSL_CTX_set_cipher_list(legacy, suites), 1);
    ck_assert_int_eq(SSL_CTX_set_cipher_list(stock, suites), 1);
    ck_assert_int_eq(SSL_CTX_set_cipher_list(sctx, suites), 1);
    ck_assert_int_eq(SSL_CTX_set_dh_auto(stock, 1), 1);
    ck_assert_int_eq(SSL_CTX_set_dh_auto(sctx, 1), 1);
    /* Control: stock OpenSSL follows the client's preference, DHE. */
    handshake(stock, legacy, NULL, &r);
    ck_assert_msg(r.ok, "stock: alert %d", r.server_alert);
    ck_assert_str_eq(r.cipher, "DHE-RSA-AES128-GCM-SHA256");
    ck_assert_int_eq(try_enable(sctx, NULL), 1);
    handshake(sctx, legacy, NULL, &r);
    ck_assert_msg(r.ok, "policy server: alert %d", r.server_alert);
    ck_assert_int_eq(r.version, TLS1_2_VERSION);
    ck_assert_int_eq(r.ems, 0);
    ck_assert_msg(strcmp(r.cipher, "ECDHE-RSA-AES128-GCM-SHA256") == 0,
        "GAP: TLS 1.2 without EMS negotiated %s", r.cipher);
    SSL_CTX_free(legacy);
    SSL_CTX_free(sctx);
    SSL_CTX_free(stock);
}
END_TEST

/* ---- F2 (c): DTLS 1.2 and a ClientHello listing 0x0304 --------------------- */

static SSL_CTX *dtls_server(void)
{
    SSL_CTX *ctx = server_with(DTLS_server_method(), p256_key, p256_cert);

    ck_assert_int_eq(SSL_CTX_set_min_proto_version(ctx, DTLS1_2_VERSION), 1);
    return ctx;
}

static SSL_CTX *dtls_client(int ems)
{
    SSL_CTX *ctx = SSL_CTX_new(DTLS_client_method());

    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(SSL_CTX_set_min_proto_version(ctx, DTLS1_2_VERSION), 1);
    if (!ems)
        SSL_CTX_set_options(ctx, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    return ctx;
}

static unsigned get16(const unsigned char *p)
{
    return ((unsigned)p[0] << 8) | p[1];
}

static void put16(unsigned char *p, size_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void put24(unsigned char *p, size_t v)
{
    p[0] = (unsigned char)(v >> 16);
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)v;
}

/*
 * Appends supported_versions {0x0304, DTLS 1.2} to the DTLS ClientHello in
 * |rec| (one record, one unfragmented message) and fixes every length.
 * OpenSSL's DTLS client never sends the extension; any other stack may.
 */
static size_t add_supported_versions(unsigned char *rec, size_t len, size_t cap)
{
    static const unsigned char ext[] = { 0x00, 0x2b, 0x00, 0x05, 0x04, 0x03, 0x04, 0xfe, 0xfd };
    const size_t rh = 13, hh = 12;
    size_t body, off, ext_len_at;

    ck_assert_uint_ge(len, rh + hh);
    ck_assert_int_eq(rec[0], SSL3_RT_HANDSHAKE);
    ck_assert_int_eq(rec[rh], SSL3_MT_CLIENT_HELLO);
    body = ((size_t)rec[rh + 1] << 16) | ((size_t)rec[rh + 2] << 8) | rec[rh + 3];
    ck_assert_uint_eq(get16(rec + 11), hh + body); /* one record */
    ck_assert_uint_eq(len, rh + hh + body); /* one datagram, one record */
    ck_assert_uint_eq(((size_t)rec[rh + 9] << 16) | ((size_t)rec[rh + 10] << 8) | rec[rh + 11],
        body); /* unfragmented */
    off = rh + hh + 2 + 32;
    off += 1 + rec[off]; /* session ID */
    off += 1 + rec[off]; /* cookie */
    off += 2 + get16(rec + off); /* cipher suites */
    off += 1 + rec[off]; /* compression methods */
    ext_len_at = off;
    ck_assert_uint_eq(ext_len_at + 2 + get16(rec + ext_len_at), len);
    ck_assert_uint_le(len + sizeof(ext), cap);
    memcpy(rec + len, ext, sizeof(ext));
    put16(rec + ext_len_at, get16(rec + ext_len_at) + sizeof(ext));
    body += sizeof(ext);
    put24(rec + rh + 1, body);
    put24(rec + rh + 9, body);
    put16(rec + 11, hh + body);
    return len + sizeof(ext);
}

typedef struct {
    int server_hello; /* the server answered with a ServerHello */
    int server_hello_ems; /* ... carrying extension 23 */
    int alert; /* or with this fatal alert, else -1 */
    int eg_error;
    char eg_text[512];
} dtls_answer;

/* Sends one (optionally rewritten) DTLS ClientHello; reads the first answer. */
static void dtls_first_flight(SSL_CTX *sctx, SSL_CTX *cctx, int rewrite, dtls_answer *a)
{
    SSL *client = SSL_new(cctx), *server = SSL_new(sctx);
    BIO *c_in = BIO_new(BIO_s_mem()), *c_out = BIO_new(BIO_s_mem());
    BIO *s_in = BIO_new(BIO_s_mem()), *s_out = BIO_new(BIO_s_mem());
    unsigned char buf[4096];
    int n, ret;
    pair_result pr;

    memset(a, 0, sizeof(*a));
    a->alert = -1;
    ck_assert(client != NULL && server != NULL && c_in != NULL && c_out != NULL
        && s_in != NULL && s_out != NULL);
    SSL_set_bio(client, c_in, c_out);
    SSL_set_bio(server, s_in, s_out);
    /* A whole ClientHello in one record: no MTU guessing on a memory BIO. */
    SSL_set_options(client, SSL_OP_NO_QUERY_MTU);
    ck_assert_int_eq(SSL_set_mtu(client, 1400), 1400);
    SSL_set_connect_state(client);
    SSL_set_accept_state(server);
    ret = SSL_do_handshake(client);
    ck_assert_int_eq(SSL_get_error(client, ret), SSL_ERROR_WANT_READ);
    n = BIO_read(c_out, buf, (int)sizeof(buf) - 16);
    ck_assert_int_gt(n, 0);
    if (rewrite)
        n = (int)add_supported_versions(buf, (size_t)n, sizeof(buf));
    ck_assert_int_eq(BIO_write(s_in, buf, n), n);
    ERR_clear_error();
    (void)SSL_do_handshake(server);
    memset(&pr, 0, sizeof(pr));
    collect_errors(&pr);
    a->eg_error = pr.eg_error;
    memcpy(a->eg_text, pr.eg_text, sizeof(a->eg_text));
    n = BIO_read(s_out, buf, (int)sizeof(buf));
    ck_assert_msg(n >= 13 + 2, "the server sent nothing");
    if (buf[0] == SSL3_RT_ALERT && buf[13] == SSL3_AL_FATAL) {
        a->alert = buf[14];
    } else if (buf[0] == SSL3_RT_HANDSHAKE && buf[13] == SSL3_MT_SERVER_HELLO) {
        size_t body = ((size_t)buf[14] << 16) | ((size_t)buf[15] << 8) | buf[16];
        size_t off = 13 + 12 + 2 + 32, end = 13 + 12 + body;

        a->server_hello = 1;
        off += 1 + buf[off]; /* session ID */
        off += 2 + 1; /* cipher suite, compression */
        for (off += 2; off + 4 <= end && off + 4 <= (size_t)n; off += 4 + get16(buf + off + 2))
            if (get16(buf + off) == TLSEXT_TYPE_extended_master_secret)
                a->server_hello_ems = 1;
    }
    SSL_free(client);
    SSL_free(server);
}

START_TEST(test_require_dtls_hello_lists_tls13)
{
    SSL_CTX *stock = dtls_server(), *sctx = dtls_server();
    SSL_CTX *legacy = dtls_client(0), *ems_client = dtls_client(1);
    dtls_answer a;

    /* The scenario is real: a stock DTLS server goes on in DTLS 1.2 without EMS. */
    dtls_first_flight(stock, legacy, 1, &a);
    ck_assert_msg(a.server_hello && !a.server_hello_ems,
        "stock server: ServerHello %d (EMS %d), alert %d", a.server_hello,
        a.server_hello_ems, a.alert);

    enable_require(sctx);
    /* Without supported_versions: rejected (the row that held). */
    dtls_first_flight(sctx, legacy, 0, &a);
    ck_assert_msg(!a.server_hello && a.alert == AL_HANDSHAKE_FAILURE,
        "plain DTLS hello without EMS: ServerHello %d, alert %d", a.server_hello, a.alert);
    ck_assert_uint_eq(hs_counter(sctx, EMSGUARD_CNT_REJECTED_NO_EMS), 1);
    /* With supported_versions listing 0x0304: rejected as well. */
    dtls_first_flight(sctx, legacy, 1, &a);
    ck_assert_msg(!a.server_hello,
        "GAP: DTLS hello listing 0x0304 without EMS got a ServerHello (EMS %d)",
        a.server_hello_ems);
    ck_assert_int_eq(a.alert, AL_HANDSHAKE_FAILURE);
    ck_assert_msg(a.eg_error, "no EMSGUARD_R_EMS_REQUIRED on the error queue");
    ck_assert_uint_eq(hs_counter(sctx, EMSGUARD_CNT_REJECTED_NO_EMS), 2);
    /* Control: a DTLS client with EMS gets a ServerHello with EMS. */
    dtls_first_flight(sctx, ems_client, 1, &a);
    ck_assert_msg(a.server_hello && a.server_hello_ems,
        "EMS client: ServerHello %d (EMS %d), alert %d", a.server_hello,
        a.server_hello_ems, a.alert);
    SSL_CTX_free(ems_client);
    SSL_CTX_free(legacy);
    SSL_CTX_free(sctx);
    SSL_CTX_free(stock);
}
END_TEST

/* A whole DTLS 1.2 handshake with EMS still completes under Require=1. */
START_TEST(test_require_dtls_ems_completes)
{
    SSL_CTX *sctx = dtls_server(), *ems_client = dtls_client(1);
    SSL *server, *client;

    enable_require(sctx);
    ck_assert_ptr_nonnull(server = SSL_new(sctx));
    ck_assert_ptr_nonnull(client = SSL_new(ems_client));
    ck_assert_msg(hs_connect(client, server) == 1, "DTLS 1.2 EMS handshake failed");
    ck_assert_int_eq(SSL_version(server), DTLS1_2_VERSION);
    ck_assert_int_eq(SSL_get_extms_support(server), 1);
    SSL_free(client);
    SSL_free(server);
    SSL_CTX_free(ems_client);
    SSL_CTX_free(sctx);
}
END_TEST

/* ---- F3: SSL_OP_NO_EXTENDED_MASTER_SECRET on the server ---------------------- */

START_TEST(test_require_refuses_ctx_with_ems_off)
{
    SSL_CTX *sctx = tls_server(), *cctx = tls_client(1), *plain = tls_server();
    SSL_CTX *client_only = SSL_CTX_new(TLS_client_method());
    unsigned long e;
    const char *data = NULL;
    int flags = 0;

    SSL_CTX_set_options(sctx, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    ERR_clear_error();
    ck_assert_msg(try_enable(sctx, EMSGUARD_REQUIRE_EMS, "1", NULL) == 0,
        "GAP: enabled RequireExtendedMasterSecret=1 on a ctx with EMS switched off");
    e = ERR_peek_last_error_all(NULL, NULL, NULL, &data, &flags);
    ck_assert_int_eq(ERR_GET_LIB(e), EMSGUARD_get_error_lib());
    ck_assert_int_eq(ERR_GET_REASON(e), EMSGUARD_R_EMS_REQUIRED);
    ck_assert_msg(data != NULL && strstr(data, "SSL_OP_NO_EXTENDED_MASTER_SECRET") != NULL
            && strstr(data, "-ExtendedMasterSecret") != NULL,
        "unclear message: %s", data != NULL ? data : "(none)");
    ERR_clear_error();
    ck_assert_int_eq(EMSGUARD_CTX_is_enabled(sctx), 0);
    /* Require=0: nothing to refuse, the option stays the application's. */
    SSL_CTX_set_options(plain, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    ck_assert_int_eq(try_enable(plain, NULL), 1);
    /* A client-only ctx: RequireExtendedMasterSecret covers the server role. */
    ck_assert_ptr_nonnull(client_only);
    SSL_CTX_set_options(client_only, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    ck_assert_int_eq(try_enable(client_only, EMSGUARD_REQUIRE_EMS, "1", NULL), 1);
    SSL_CTX_free(client_only);
    SSL_CTX_free(plain);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}
END_TEST

static void assert_option_named(const pair_result *r, const SSL_CTX *sctx, const char *what)
{
    assert_rejected_no_ems(r, sctx, what);
    ck_assert_int_eq(r->server_alert, AL_HANDSHAKE_FAILURE);
    ck_assert_msg(strstr(r->eg_text, "SSL_OP_NO_EXTENDED_MASTER_SECRET") != NULL,
        "%s: the error does not name the option: %s", what, r->eg_text);
}

START_TEST(test_require_ems_off_on_ctx_after_enable)
{
    SSL_CTX *sctx = tls_server(), *ems12 = tls12_client(1), *ems13 = tls_client(1);
    pair_result r;

    enable_require(sctx);
    SSL_CTX_set_options(sctx, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    handshake(sctx, ems12, NULL, &r);
    assert_option_named(&r, sctx, "option set on the ctx after enabling");
    /* TLS 1.3 does not use EMS: still served. */
    handshake(sctx, ems13, NULL, &r);
    ck_assert_msg(r.ok, "TLS 1.3 client refused: alert %d", r.server_alert);
    ck_assert_int_eq(r.version, TLS1_3_VERSION);
    SSL_CTX_free(ems13);
    SSL_CTX_free(ems12);
    SSL_CTX_free(sctx);
}
END_TEST

static void ems_off_on_ssl(SSL *server)
{
    SSL_set_options(server, SSL_OP_NO_EXTENDED_MASTER_SECRET);
}

START_TEST(test_require_ems_off_on_ssl)
{
    SSL_CTX *sctx = tls_server(), *ems12 = tls12_client(1);
    pair_result r;

    enable_require(sctx);
    handshake(sctx, ems12, ems_off_on_ssl, &r);
    assert_option_named(&r, sctx, "option set on the SSL");
    SSL_CTX_free(ems12);
    SSL_CTX_free(sctx);
}
END_TEST

/* ---- C2: renegotiation compared with the previous ClientHello --------------- */

typedef struct {
    SSL *client, *server;
    wire w;
} link;

static void link_open(link *l, SSL_CTX *sctx, SSL_CTX *cctx)
{
    memset(l, 0, sizeof(*l));
    l->w.server_alert = l->w.client_alert = -1;
    ck_assert_ptr_nonnull(l->server = SSL_new(sctx));
    ck_assert_ptr_nonnull(l->client = SSL_new(cctx));
    watch(l->server, &l->w);
    watch(l->client, &l->w);
    /* OpenSSL 3.0 refuses client-initiated renegotiation by default. */
    SSL_set_options(l->server, SSL_OP_ALLOW_CLIENT_RENEGOTIATION);
    ck_assert_msg(hs_connect(l->client, l->server) == 1, "first handshake failed");
    ck_assert_int_eq(SSL_version(l->server), TLS1_2_VERSION);
}

static void link_close(link *l)
{
    SSL_free(l->client);
    SSL_free(l->server);
}

/* 1 when the renegotiation |initiator| starts completes on both ends. */
static int renegotiate(link *l, SSL *initiator)
{
    int hellos = l->w.hellos, i, c = 0, s = 0;

    ERR_clear_error();
    ck_assert_int_eq(SSL_renegotiate(initiator), 1);
    for (i = 0; i < MAX_STEPS; i++) {
        c = hs_io_step(l->client);
        s = hs_io_step(l->server);
        if (c < 0 || s < 0)
            break;
        if (l->w.hellos > hellos && !SSL_in_init(l->client) && !SSL_in_init(l->server)
            && !SSL_renegotiate_pending(initiator))
            break;
    }
    if (c < 0 || s < 0) {
        /* Let the other end read the alert. */
        (void)hs_io_step(c < 0 ? l->server : l->client);
        return 0;
    }
    return i < MAX_STEPS && l->w.hellos == hellos + 1;
}

static SSL_CTX *reneg_server(void)
{
    SSL_CTX *ctx = hs_server_ctx(HS_MECH_SESSION_ID, 0); /* TLS 1.2 */

    ck_assert_ptr_nonnull(ctx);
    return ctx;
}

/* Server EMS off, client offering EMS in every ClientHello: both triggers work. */
START_TEST(test_disabled_server_ems_renegotiates)
{
    SSL_CTX *sctx = reneg_server(), *ems_client = tls12_client(1);
    link l;

    ck_assert_int_eq(try_enable(sctx, EMSGUARD_DISABLE_SERVER_EMS, "1", NULL), 1);
    link_open(&l, sctx, ems_client);
    ck_assert_int_eq(SSL_get_extms_support(l.server), 0);
    ck_assert_int_eq(l.w.hello_ems[0], 1);
    ck_assert_msg(renegotiate(&l, l.client),
        "client-initiated renegotiation refused: server alert %d", l.w.server_alert);
    ck_assert_int_eq(l.w.hello_ems[1], 1);
    ck_assert_msg(renegotiate(&l, l.server),
        "server-initiated renegotiation refused: server alert %d", l.w.server_alert);
    ck_assert_int_eq(l.w.hello_ems[2], 1);
    ck_assert_int_eq(SSL_get_extms_support(l.server), 0);
    ck_assert_uint_eq(hs_counter(sctx, EMSGUARD_CNT_ABORTED_INCONSISTENT), 0);
    link_close(&l);
    SSL_CTX_free(ems_client);
    SSL_CTX_free(sctx);
}
END_TEST

/* The same with the option set by the application (RequireEMS=0). */
START_TEST(test_app_ems_off_renegotiates)
{
    SSL_CTX *sctx = reneg_server(), *ems_client = tls12_client(1);
    link l;

    SSL_CTX_set_options(sctx, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    ck_assert_int_eq(try_enable(sctx, NULL), 1);
    link_open(&l, sctx, ems_client);
    ck_assert_int_eq(SSL_get_extms_support(l.server), 0);
    ck_assert_msg(renegotiate(&l, l.client),
        "client-initiated renegotiation refused: server alert %d", l.w.server_alert);
    ck_assert_uint_eq(hs_counter(sctx, EMSGUARD_CNT_ABORTED_INCONSISTENT), 0);
    link_close(&l);
    SSL_CTX_free(ems_client);
    SSL_CTX_free(sctx);
}
END_TEST

/*
 * A renegotiation ClientHello that really changes EMS relative to the
 * previous one is still refused, whether or not the server uses EMS.
 */
static void reneg_flip(const char *disable_server_ems, int first_ems)
{
    SSL_CTX *sctx = reneg_server(), *cctx = tls12_client(1);
    link l;

    ck_assert_int_eq(try_enable(sctx, EMSGUARD_DISABLE_SERVER_EMS, disable_server_ems, NULL), 1);
    if (!first_ems)
        SSL_CTX_set_options(cctx, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    link_open(&l, sctx, cctx);
    ck_assert_int_eq(l.w.hello_ems[0], first_ems);
    if (first_ems)
        SSL_set_options(l.client, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    else
        SSL_clear_options(l.client, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    ck_assert_msg(!renegotiate(&l, l.client),
        "GAP: DisableServerEMS=%s: a renegotiation that %s EMS completed", disable_server_ems,
        first_ems ? "drops" : "adds");
    ck_assert_int_eq(l.w.hellos, 2);
    ck_assert_int_eq(l.w.hello_ems[1], !first_ems);
    ck_assert_int_eq(l.w.server_alert, AL_HANDSHAKE_FAILURE);
    ck_assert_uint_eq(hs_counter(sctx, EMSGUARD_CNT_ABORTED_INCONSISTENT), 1);
    ERR_clear_error();
    link_close(&l);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}

START_TEST(test_reneg_change_refused)
{
    /* _i: bit 0 the server's EMS off, bit 1 the first hello had EMS. */
    reneg_flip((_i & 1) ? "1" : "0", (_i & 2) != 0);
}
END_TEST

static void setup(void)
{
    make_credentials();
    hs_ext_cache_reset();
    hs_set_sni(NULL);
    ERR_clear_error();
}

static Suite *hello_paths_suite(void)
{
    Suite *s = suite_create("hello-paths");
    TCase *tc;

    tc = tcase_create("require-negotiated-version");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_require_tls12_method_tls13_client);
    tcase_add_test(tc, test_require_capped_tls12_tls13_client);
    tcase_add_test(tc, test_require_cert_not_tls13_capable);
    tcase_add_test(tc, test_require_tls13_client_then_ssl_clear);
    tcase_add_test(tc, test_require_tls13_after_hello_retry);
    tcase_add_test(tc, test_require_tls13_only_client_untouched);
    tcase_add_test(tc, test_require_rejection_logged);
    tcase_add_test(tc, test_dhe_avoided_when_tls13_listed);
    tcase_add_test(tc, test_require_dtls_hello_lists_tls13);
    tcase_add_test(tc, test_require_dtls_ems_completes);
    suite_add_tcase(s, tc);

    tc = tcase_create("require-ems-switched-off");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_require_refuses_ctx_with_ems_off);
    tcase_add_test(tc, test_require_ems_off_on_ctx_after_enable);
    tcase_add_test(tc, test_require_ems_off_on_ssl);
    suite_add_tcase(s, tc);

    tc = tcase_create("renegotiation-previous-hello");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_disabled_server_ems_renegotiates);
    tcase_add_test(tc, test_app_ems_off_renegotiates);
    tcase_add_loop_test(tc, test_reneg_change_refused, 0, 4);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(hello_paths_suite());
    int failed;

    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    free_credentials();
    hs_cleanup();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
