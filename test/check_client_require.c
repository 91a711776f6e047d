/* SPDX-License-Identifier: Apache-2.0 */
/*
 * RequireExtendedMasterSecret=1 in the client role (issue 15, attack round
 * finding N7), in memory.
 *
 * A client SSL_CTX with the policy and Require=1 (API or preload, no TLS1-PRF
 * guard) must not complete a TLS <= 1.2 handshake in which the server did
 * not agree to Extended Master Secret: the handshake fails before the client
 * sends its key exchange or Finished, with EMSGUARD_R_EMS_REQUIRED on the
 * error queue, an error-level log line and the rejected_no_ems counter.
 *
 * What must keep working: EMS servers (ECDHE-ECDSA, ECDHE-RSA, DHE-RSA),
 * resumption with them, TLS 1.3, Require=0, the server role of a both-roles
 * SSL_CTX, and the application's (or OpenSSL's default) security callback.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/tls1.h>
#include <openssl/x509.h>
#include "emsguard.h"
#include "harness.h"
#include "harness_check.h"

/* ---- contexts ------------------------------------------------------------- */

/* A client with the default policy and RequireExtendedMasterSecret=1. */
static SSL_CTX *require_client(int flags)
{
    SSL_CTX *ctx = hs_client(flags);

    hs_enable_with(ctx, EMSGUARD_REQUIRE_EMS, "1", NULL);
    return ctx;
}

/* A throwaway self-signed RSA certificate: ECDHE-RSA, DHE-RSA, RSA kx. */
static EVP_PKEY *rsa_key;
static X509 *rsa_cert;

static void make_rsa_credentials(void)
{
    X509_NAME *name;

    if (rsa_cert != NULL)
        return;
    ck_assert_ptr_nonnull(rsa_key = EVP_RSA_gen(2048));
    ck_assert_ptr_nonnull(rsa_cert = X509_new());
    name = X509_get_subject_name(rsa_cert);
    ck_assert(X509_set_version(rsa_cert, 2)
        && ASN1_INTEGER_set(X509_get_serialNumber(rsa_cert), 3)
        && X509_gmtime_adj(X509_getm_notBefore(rsa_cert), -3600)
        && X509_gmtime_adj(X509_getm_notAfter(rsa_cert), 86400)
        && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
            (const unsigned char *)"emsguard-client-require", -1, -1, 0)
        && X509_set_issuer_name(rsa_cert, name)
        && X509_set_pubkey(rsa_cert, rsa_key)
        && X509_sign(rsa_cert, rsa_key, EVP_sha256()) > 0);
}

/* The key exchanges a TLS 1.2 server may pick; the harness default first. */
typedef enum {
    KX_ECDHE_ECDSA = 0,
    KX_ECDHE_RSA,
    KX_DHE_RSA,
    KX_RSA, /* RSA key exchange: no ServerKeyExchange */
    KX_COUNT
} kx_kind;

static const char *const kx_ciphers[KX_COUNT] = {
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "DHE-RSA-AES128-GCM-SHA256",
    "AES128-GCM-SHA256",
};

/*
 * A TLS 1.2 server (session-ID cache) that can only pick |kx|'s suite.
 * HS_NO_EMS makes it a legacy server: its ServerHello never carries EMS.
 */
static SSL_CTX *kx_server(kx_kind kx, int flags)
{
    SSL_CTX *ctx;

    if (kx == KX_ECDHE_ECDSA) {
        ctx = hs_server_ctx(HS_MECH_SESSION_ID, flags);
        ck_assert_ptr_nonnull(ctx);
    } else {
        make_rsa_credentials();
        ck_assert_ptr_nonnull(ctx = SSL_CTX_new(TLS_server_method()));
        ck_assert(SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)
            && SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION)
            && SSL_CTX_use_certificate(ctx, rsa_cert) == 1
            && SSL_CTX_use_PrivateKey(ctx, rsa_key) == 1
            && SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"rq", 2)
            && SSL_CTX_set_dh_auto(ctx, 1) == 1);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        if (flags & HS_NO_EMS)
            SSL_CTX_set_options(ctx, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    }
    ck_assert_int_eq(SSL_CTX_set_cipher_list(ctx, kx_ciphers[kx]), 1);
    return ctx;
}

/* ---- one handshake, as the client saw it -------------------------------------- */

typedef struct {
    int ok; /* both ends completed, and a byte went each way */
    int ems; /* client: SSL_get_extms_support() */
    int reused; /* client: SSL_session_reused() */
    int version;
    char cipher[64]; /* negotiated suite */
    int client_alert; /* fatal alert the client sent, or -1 */
    int sent_key_exchange; /* the client wrote ClientKeyExchange */
    int sent_ccs_or_finished; /* ... ChangeCipherSpec or Finished */
    int offered_rsa_kx; /* its ClientHello listed an RSA key exchange suite */
    int ems_required_error; /* EMSGUARD_R_EMS_REQUIRED was on the error queue */
    char error_text[512]; /* that error's message */
    SSL_SESSION *session; /* client's session afterwards (owned) */
} run_result;

static unsigned get16(const unsigned char *p)
{
    return ((unsigned)p[0] << 8) | p[1];
}

/* Notes RSA key exchange suites in a ClientHello (TLS: 4-byte header, DTLS: 12). */
static void read_client_hello(run_result *rr, SSL *ssl, const unsigned char *p,
    size_t len)
{
    size_t off = (SSL_is_dtls(ssl) ? 12 : 4) + 2 + 32, n, i;

    if (len < off + 1)
        return;
    off += 1 + p[off]; /* session ID */
    if (SSL_is_dtls(ssl)) {
        if (len < off + 1)
            return;
        off += 1 + p[off]; /* cookie */
    }
    if (len < off + 2)
        return;
    n = get16(p + off);
    off += 2;
    for (i = 0; i + 1 < n && off + i + 1 < len; i += 2) {
        const SSL_CIPHER *c = SSL_CIPHER_find(ssl, p + off + i);

        if (c != NULL && SSL_CIPHER_get_kx_nid(c) == NID_kx_rsa)
            rr->offered_rsa_kx = 1;
    }
}

static void on_client_message(int write_p, int version, int content_type,
    const void *buf, size_t len, SSL *ssl, void *arg)
{
    run_result *rr = arg;
    const unsigned char *p = buf;

    (void)version;
    if (!write_p || len < 1)
        return;
    if (content_type == SSL3_RT_CHANGE_CIPHER_SPEC)
        rr->sent_ccs_or_finished = 1;
    if (content_type == SSL3_RT_ALERT && len >= 2 && p[0] == SSL3_AL_FATAL)
        rr->client_alert = p[1];
    if (content_type != SSL3_RT_HANDSHAKE)
        return;
    if (p[0] == SSL3_MT_CLIENT_HELLO)
        read_client_hello(rr, ssl, p, len);
    else if (p[0] == SSL3_MT_CLIENT_KEY_EXCHANGE)
        rr->sent_key_exchange = 1;
    else if (p[0] == SSL3_MT_FINISHED)
        rr->sent_ccs_or_finished = 1;
}

/* Empties this thread's error queue, noting emsguard's EMS_REQUIRED. */
static void read_errors(run_result *rr)
{
    const char *data;
    int flags;
    unsigned long e;

    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0)
        if (ERR_GET_LIB(e) == EMSGUARD_get_error_lib()
            && ERR_GET_REASON(e) == EMSGUARD_R_EMS_REQUIRED) {
            rr->ems_required_error = 1;
            snprintf(rr->error_text, sizeof(rr->error_text), "%s",
                (flags & ERR_TXT_STRING) && data != NULL ? data : "");
        }
}

/*
 * Like hs_connect(), but the client's error queue is read the moment it
 * fails: the server's next step starts by clearing the thread's queue.
 */
static int connect_pair(SSL *c, SSL *s, run_result *rr)
{
    BIO *cbio = NULL, *sbio = NULL;
    int cr = 0, sr = 0, i;

    ck_assert_int_eq(BIO_new_bio_pair(&cbio, 0, &sbio, 0), 1);
    SSL_set_bio(c, cbio, cbio);
    SSL_set_bio(s, sbio, sbio);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    for (i = 0; i < 200 && (cr == 0 || sr == 0); i++) {
        if (cr == 0 && (cr = hs_step(c)) < 0)
            read_errors(rr);
        ERR_clear_error();
        if (sr == 0)
            sr = hs_step(s);
        ERR_clear_error();
        if ((cr < 0 || sr < 0) && BIO_ctrl_pending(SSL_get_rbio(c)) == 0
            && BIO_ctrl_pending(SSL_get_rbio(s)) == 0)
            break;
    }
    return cr == 1 && sr == 1;
}

/*
 * One connection between new SSLs of |sctx| and |cctx|; the client offers a
 * copy of |offer| if set and gets |client_options| on its SSL.
 */
static int run_ex(SSL_CTX *sctx, SSL_CTX *cctx, const SSL_SESSION *offer,
    uint64_t client_options, run_result *rr)
{
    SSL *c = SSL_new(cctx), *s = SSL_new(sctx);
    unsigned char b = 0;

    memset(rr, 0, sizeof(*rr));
    rr->client_alert = -1;
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_nonnull(s);
    ERR_clear_error();
    SSL_set_msg_callback(c, on_client_message);
    SSL_set_msg_callback_arg(c, rr);
    SSL_set_options(c, client_options);
    if (SSL_is_dtls(c)) {
        /* A BIO pair has no MTU to ask for. */
        SSL_set_options(c, SSL_OP_NO_QUERY_MTU);
        SSL_set_options(s, SSL_OP_NO_QUERY_MTU);
        ck_assert_int_eq(DTLS_set_link_mtu(c, 1400), 1);
        ck_assert_int_eq(DTLS_set_link_mtu(s, 1400), 1);
    }
    if (offer != NULL) {
        SSL_SESSION *copy = hs_session_copy(offer);

        ck_assert_ptr_nonnull(copy);
        ck_assert_int_eq(SSL_set_session(c, copy), 1);
        SSL_SESSION_free(copy);
    }
    if (connect_pair(c, s, rr) && SSL_write(s, "s", 1) == 1 && SSL_read(c, &b, 1) == 1
        && SSL_write(c, "c", 1) == 1 && SSL_read(s, &b, 1) == 1) {
        rr->ok = 1;
        rr->ems = SSL_get_extms_support(c);
        rr->reused = SSL_session_reused(c);
        rr->version = SSL_version(c);
        snprintf(rr->cipher, sizeof(rr->cipher), "%s", SSL_get_cipher_name(c));
        rr->session = SSL_get1_session(c);
        SSL_shutdown(c);
        SSL_shutdown(s);
    }
    ERR_clear_error();
    SSL_free(c);
    SSL_free(s);
    return rr->ok;
}

static int run(SSL_CTX *sctx, SSL_CTX *cctx, run_result *rr)
{
    return run_ex(sctx, cctx, NULL, 0, rr);
}

static void run_clear(run_result *rr)
{
    SSL_SESSION_free(rr->session);
    rr->session = NULL;
}

/* The refusal N7 asks for: failed, early, loud on the queue, counted. */
static void assert_refused(const run_result *rr, SSL_CTX *cctx, uint64_t rejected)
{
    ck_assert_msg(!rr->ok,
        "Require=1 client completed TLS 1.2 without EMS (cipher %s, ems=%d)",
        rr->cipher, rr->ems);
    ck_assert_msg(rr->ems_required_error, "no EMSGUARD_R_EMS_REQUIRED on the error queue");
    ck_assert_msg(rr->client_alert >= 0, "the client sent no alert");
    ck_assert_msg(!rr->sent_key_exchange && !rr->sent_ccs_or_finished,
        "the client got as far as its key exchange or Finished");
    ck_assert_uint_eq(hs_counter(cctx, EMSGUARD_CNT_REJECTED_NO_EMS), rejected);
    ck_assert_uint_eq(hs_counter(cctx, EMSGUARD_CNT_FULL_HANDSHAKES), 0);
}

/* ---- N7: the legacy server -------------------------------------------------- */

/* Every (EC)DHE key exchange: refused at the ServerKeyExchange. */
START_TEST(test_legacy_server_refused)
{
    kx_kind kx = (kx_kind)_i;
    SSL_CTX *legacy = kx_server(kx, HS_NO_EMS), *stock = hs_client(0);
    SSL_CTX *cctx = require_client(0);
    run_result rr;

    /* Control: a stock client completes it, without EMS. */
    ck_assert_msg(run(legacy, stock, &rr), "control: stock client failed (%s)", kx_ciphers[kx]);
    ck_assert_int_eq(rr.ems, 0);
    ck_assert_str_eq(rr.cipher, kx_ciphers[kx]);
    run_clear(&rr);

    run(legacy, cctx, &rr);
    assert_refused(&rr, cctx, 1);
    ck_assert_msg(strstr(rr.error_text, "RequireExtendedMasterSecret=1") != NULL,
        "error text: %s", rr.error_text);
    run_clear(&rr);
    SSL_CTX_free(cctx);
    SSL_CTX_free(stock);
    SSL_CTX_free(legacy);
}
END_TEST

/*
 * RSA key exchange runs no check of the client's after the ServerHello
 * (no ServerKeyExchange), so a Require=1 client does not offer it in TLS <=
 * 1.2: a legacy server that has nothing else fails the handshake, and the
 * client never sends a key exchange.
 */
START_TEST(test_legacy_rsa_kx_server_refused)
{
    SSL_CTX *legacy = kx_server(KX_RSA, HS_NO_EMS), *stock = hs_client(0);
    SSL_CTX *cctx = require_client(0);
    run_result rr;

    ck_assert_msg(run(legacy, stock, &rr), "control: stock client failed");
    ck_assert_int_eq(rr.ems, 0);
    ck_assert(rr.offered_rsa_kx);
    run_clear(&rr);

    ck_assert_msg(!run(legacy, cctx, &rr),
        "Require=1 client completed TLS 1.2 without EMS over RSA key exchange");
    ck_assert_msg(!rr.offered_rsa_kx, "the Require=1 ClientHello offered RSA key exchange");
    ck_assert(!rr.sent_key_exchange && !rr.sent_ccs_or_finished);
    run_clear(&rr);
    SSL_CTX_free(cctx);
    SSL_CTX_free(stock);
    SSL_CTX_free(legacy);
}
END_TEST

/* The log line, at error level. */
static SSL_CTX *log_server, *log_client;
static run_result log_rr;

static void log_handshake(void)
{
    run(log_server, log_client, &log_rr);
}

START_TEST(test_refusal_logged)
{
    const char *out;

    log_server = kx_server(KX_ECDHE_ECDSA, HS_NO_EMS);
    log_client = hs_client(0);
    hs_enable_with(log_client, EMSGUARD_REQUIRE_EMS, "1", EMSGUARD_EVENT_LOGGING, "1", NULL);
    out = hs_capture_stderr(log_handshake);
    ck_assert_ptr_nonnull(out);
    ck_assert(!log_rr.ok);
    ck_assert_msg(strstr(out, "error: role=client rejected ServerHello: reason=ems-required") != NULL,
        "no error line: %s", out);
    run_clear(&log_rr);
    SSL_CTX_free(log_client);
    SSL_CTX_free(log_server);
}
END_TEST

/* DTLS 1.2 has the same handshake. */
static SSL_CTX *dtls_ctx(const SSL_METHOD *method, int flags)
{
    SSL_CTX *ctx = SSL_CTX_new(method);

    ck_assert_ptr_nonnull(ctx);
    ck_assert(SSL_CTX_set_min_proto_version(ctx, DTLS1_2_VERSION)
        && SSL_CTX_set_max_proto_version(ctx, DTLS1_2_VERSION));
    if (flags & HS_NO_EMS)
        SSL_CTX_set_options(ctx, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    return ctx;
}

START_TEST(test_dtls_legacy_server_refused)
{
    SSL_CTX *legacy = dtls_ctx(DTLS_server_method(), HS_NO_EMS);
    SSL_CTX *ems_srv = dtls_ctx(DTLS_server_method(), 0);
    SSL_CTX *cctx = dtls_ctx(DTLS_client_method(), 0);
    run_result rr;

    make_rsa_credentials();
    ck_assert(SSL_CTX_use_certificate(legacy, rsa_cert) == 1
        && SSL_CTX_use_PrivateKey(legacy, rsa_key) == 1
        && SSL_CTX_use_certificate(ems_srv, rsa_cert) == 1
        && SSL_CTX_use_PrivateKey(ems_srv, rsa_key) == 1);
    hs_enable_with(cctx, EMSGUARD_REQUIRE_EMS, "1", NULL);
    run(legacy, cctx, &rr);
    assert_refused(&rr, cctx, 1);
    run_clear(&rr);
    ck_assert_msg(run(ems_srv, cctx, &rr), "DTLS 1.2 with EMS failed");
    ck_assert_int_eq(rr.ems, 1);
    run_clear(&rr);
    SSL_CTX_free(cctx);
    SSL_CTX_free(ems_srv);
    SSL_CTX_free(legacy);
}
END_TEST

/* ---- what keeps working ------------------------------------------------------ */

START_TEST(test_ems_server_accepted)
{
    kx_kind kx = (kx_kind)_i;
    SSL_CTX *srv = kx_server(kx, 0), *cctx = require_client(0);
    run_result rr;

    ck_assert_msg(run(srv, cctx, &rr), "Require=1 client failed against an EMS server (%s)",
        kx_ciphers[kx]);
    ck_assert_int_eq(rr.ems, 1);
    ck_assert_int_eq(rr.version, TLS1_2_VERSION);
    ck_assert_str_eq(rr.cipher, kx_ciphers[kx]);
    ck_assert(!rr.ems_required_error);
    run_clear(&rr);
    ck_assert_uint_eq(hs_counter(cctx, EMSGUARD_CNT_REJECTED_NO_EMS), 0);
    ck_assert_uint_eq(hs_counter(cctx, EMSGUARD_CNT_FULL_HANDSHAKES), 1);
    SSL_CTX_free(cctx);
    SSL_CTX_free(srv);
}
END_TEST

/*
 * A server that prefers RSA key exchange but also has ECDHE: the Require=1
 * client gets ECDHE (with EMS) instead of a failure.
 */
START_TEST(test_rsa_kx_preferring_server_gets_ecdhe)
{
    SSL_CTX *srv = kx_server(KX_RSA, 0), *cctx = require_client(0);
    run_result rr;

    ck_assert_int_eq(SSL_CTX_set_cipher_list(srv,
                         "AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"), 1);
    SSL_CTX_set_options(srv, SSL_OP_CIPHER_SERVER_PREFERENCE);
    ck_assert_msg(run(srv, cctx, &rr), "handshake failed");
    ck_assert_str_eq(rr.cipher, "ECDHE-RSA-AES128-GCM-SHA256");
    ck_assert_int_eq(rr.ems, 1);
    run_clear(&rr);
    SSL_CTX_free(cctx);
    SSL_CTX_free(srv);
}
END_TEST

START_TEST(test_resumption_still_works)
{
    hs_mech mech = (hs_mech)_i;
    SSL_CTX *srv = hs_server_ctx(mech, 0), *cctx = require_client(0);
    SSL_SESSION *sess;
    run_result rr;

    ck_assert_ptr_nonnull(srv);
    ck_assert(run(srv, cctx, &rr));
    ck_assert_int_eq(rr.ems, 1);
    sess = rr.session;
    rr.session = NULL;
    ck_assert_msg(run_ex(srv, cctx, sess, 0, &rr), "resumption failed (%s)", hs_mech_name(mech));
    ck_assert_msg(rr.reused, "did not resume (%s)", hs_mech_name(mech));
    ck_assert_int_eq(rr.ems, 1);
    run_clear(&rr);
    ck_assert_uint_eq(hs_counter(cctx, EMSGUARD_CNT_RESUMPTIONS), 1);
    ck_assert_uint_eq(hs_counter(cctx, EMSGUARD_CNT_REJECTED_NO_EMS), 0);
    SSL_SESSION_free(sess);
    SSL_CTX_free(cctx);
    SSL_CTX_free(srv);
}
END_TEST

/* TLS 1.3 has EMS in its key schedule: a "legacy" TLS 1.3 server is fine. */
START_TEST(test_tls13_unaffected)
{
    SSL_CTX *srv = hs_server_ctx(HS_MECH_TICKET, HS_NO_EMS | HS_TLS13);
    SSL_CTX *cctx = require_client(HS_TLS13);
    run_result rr;

    ck_assert_ptr_nonnull(srv);
    ck_assert(run(srv, cctx, &rr));
    ck_assert_int_eq(rr.version, TLS1_3_VERSION);
    run_clear(&rr);
    SSL_CTX_free(cctx);
    SSL_CTX_free(srv);
}
END_TEST

/* Require=0 (the default): the legacy server still gets a full handshake. */
START_TEST(test_require_off_unaffected)
{
    kx_kind kx = (kx_kind)_i;
    SSL_CTX *legacy = kx_server(kx, HS_NO_EMS), *cctx = hs_client(0);
    run_result rr;

    hs_enable_with(cctx, NULL);
    ck_assert_msg(run(legacy, cctx, &rr), "Require=0 client failed (%s)", kx_ciphers[kx]);
    ck_assert_int_eq(rr.ems, 0);
    ck_assert_msg(rr.offered_rsa_kx, "Require=0 client stopped offering RSA key exchange");
    run_clear(&rr);
    ck_assert_uint_eq(hs_counter(cctx, EMSGUARD_CNT_FULL_WITHOUT_EMS), 1);
    ck_assert_uint_eq(hs_counter(cctx, EMSGUARD_CNT_REJECTED_NO_EMS), 0);
    SSL_CTX_free(cctx);
    SSL_CTX_free(legacy);
}
END_TEST

/*
 * A both-roles SSL_CTX (TLS_method, as a relay uses): its client role is
 * held to Require=1, its server role keeps serving EMS clients.
 */
START_TEST(test_dual_role_ctx)
{
    SSL_CTX *legacy = kx_server(KX_ECDHE_ECDSA, HS_NO_EMS);
    SSL_CTX *dual = SSL_CTX_new(TLS_method()), *down = hs_client(0);
    run_result rr;

    ck_assert_ptr_nonnull(dual);
    make_rsa_credentials();
    ck_assert(SSL_CTX_use_certificate(dual, rsa_cert) == 1
        && SSL_CTX_use_PrivateKey(dual, rsa_key) == 1
        && SSL_CTX_set_max_proto_version(dual, TLS1_2_VERSION));
    hs_enable_with(dual, EMSGUARD_REQUIRE_EMS, "1", NULL);
    run(legacy, dual, &rr);
    assert_refused(&rr, dual, 1);
    run_clear(&rr);
    ck_assert_msg(run(dual, down, &rr), "the server role failed an EMS client");
    ck_assert_int_eq(rr.ems, 1);
    run_clear(&rr);
    SSL_CTX_free(down);
    SSL_CTX_free(dual);
    SSL_CTX_free(legacy);
}
END_TEST

/* ---- the application's security callback ----------------------------------- */

static int app_sec_calls, app_sec_bad_ex, app_veto_curves;
static int app_sec_ex_marker;
static int (*default_sec_cb)(const SSL *, const SSL_CTX *, int, int, int, void *, void *);

/* Counts, checks its ex data, may veto curves, else asks OpenSSL's default. */
static int app_security_cb(const SSL *ssl, const SSL_CTX *ctx, int op, int bits,
    int nid, void *other, void *ex)
{
    app_sec_calls++;
    if (ex != &app_sec_ex_marker)
        app_sec_bad_ex++;
    if (app_veto_curves && (op & ~SSL_SECOP_PEER) == SSL_SECOP_CURVE_CHECK)
        return 0;
    return default_sec_cb(ssl, ctx, op, bits, nid, other, ex);
}

static void take_default_security_cb(void)
{
    SSL_CTX *tmp = SSL_CTX_new(TLS_client_method());

    ck_assert_ptr_nonnull(tmp);
    default_sec_cb = SSL_CTX_get_security_callback(tmp);
    ck_assert_ptr_nonnull(default_sec_cb);
    SSL_CTX_free(tmp);
}

/* Set before EMSGUARD_enable(): still asked, with its own ex data, and obeyed. */
START_TEST(test_app_security_cb_chained)
{
    SSL_CTX *srv = kx_server(KX_ECDHE_ECDSA, 0), *cctx = hs_client(0);
    run_result rr;

    take_default_security_cb();
    app_sec_calls = app_sec_bad_ex = app_veto_curves = 0;
    SSL_CTX_set_security_callback(cctx, app_security_cb);
    SSL_CTX_set0_security_ex_data(cctx, &app_sec_ex_marker);
    hs_enable_with(cctx, EMSGUARD_REQUIRE_EMS, "1", NULL);
    ck_assert(run(srv, cctx, &rr));
    run_clear(&rr);
    ck_assert_int_gt(app_sec_calls, 0);
    ck_assert_int_eq(app_sec_bad_ex, 0);
    app_veto_curves = 1;
    ck_assert_msg(!run(srv, cctx, &rr), "the application's veto was ignored");
    ck_assert(!rr.ems_required_error);
    run_clear(&rr);
    app_veto_curves = 0;
    SSL_CTX_free(cctx);
    SSL_CTX_free(srv);
}
END_TEST

/*
 * OpenSSL's default callback (the security level) stays in the chain: at
 * level 4 (192 bits) the harness's P-256 server is refused, as without
 * emsguard.
 */
START_TEST(test_default_security_level_chained)
{
    SSL_CTX *srv = kx_server(KX_ECDHE_ECDSA, 0), *stock = hs_client(0), *cctx = hs_client(0);
    run_result rr;

    SSL_CTX_set_security_level(stock, 4);
    SSL_CTX_set_security_level(cctx, 4);
    hs_enable_with(cctx, EMSGUARD_REQUIRE_EMS, "1", NULL);
    ck_assert_msg(!run(srv, stock, &rr), "control: level 4 accepted P-256");
    run_clear(&rr);
    ck_assert_msg(!run(srv, cctx, &rr), "security level 4 no longer applied");
    run_clear(&rr);
    SSL_CTX_set_security_level(cctx, 1);
    ck_assert_msg(run(srv, cctx, &rr), "level 1 refused");
    run_clear(&rr);
    SSL_CTX_free(cctx);
    SSL_CTX_free(stock);
    SSL_CTX_free(srv);
}
END_TEST

/*
 * The application replaces the security callback after EMSGUARD_enable():
 * the check cannot run, so the client role fails closed for TLS <= 1.2 and
 * keeps TLS 1.3.
 */
START_TEST(test_security_cb_replaced_fails_closed)
{
    SSL_CTX *legacy = kx_server(KX_ECDHE_ECDSA, HS_NO_EMS), *cctx = hs_client(HS_TLS13);
    SSL_CTX *srv13 = hs_server_ctx(HS_MECH_TICKET, HS_TLS13);
    run_result rr;

    ck_assert_ptr_nonnull(srv13);
    take_default_security_cb();
    app_veto_curves = 0;
    hs_enable_with(cctx, EMSGUARD_REQUIRE_EMS, "1", NULL);
    SSL_CTX_set_security_callback(cctx, app_security_cb);
    SSL_CTX_set0_security_ex_data(cctx, &app_sec_ex_marker);
    ck_assert_msg(!run(legacy, cctx, &rr),
        "replaced security callback: TLS 1.2 without EMS completed");
    run_clear(&rr);
    ck_assert_msg(run(srv13, cctx, &rr), "replaced security callback: TLS 1.3 failed");
    ck_assert_int_eq(rr.version, TLS1_3_VERSION);
    run_clear(&rr);
    SSL_CTX_free(srv13);
    SSL_CTX_free(cctx);
    SSL_CTX_free(legacy);
}
END_TEST

/* ---- other switches ------------------------------------------------------------ */

/*
 * SSL_OP_NO_EXTENDED_MASTER_SECRET on the client's SSL: it cannot get EMS,
 * so Require=1 refuses every TLS 1.2 handshake, saying why.
 */
START_TEST(test_per_connection_no_ems_option)
{
    SSL_CTX *srv = kx_server(KX_ECDHE_ECDSA, 0), *cctx = require_client(0);
    run_result rr;

    run_ex(srv, cctx, NULL, SSL_OP_NO_EXTENDED_MASTER_SECRET, &rr);
    assert_refused(&rr, cctx, 1);
    ck_assert_msg(strstr(rr.error_text, "SSL_OP_NO_EXTENDED_MASTER_SECRET") != NULL,
        "error text: %s", rr.error_text);
    run_clear(&rr);
    SSL_CTX_free(cctx);
    SSL_CTX_free(srv);
}
END_TEST

/*
 * DisableClientExtendedMasterSecret=1 with Require=1: the client role does
 * no EMS, so Require=1 does not apply to it (as for the server role).
 */
START_TEST(test_disable_client_ems_wins)
{
    SSL_CTX *legacy = kx_server(KX_ECDHE_ECDSA, HS_NO_EMS), *cctx = hs_client(0);
    run_result rr;

    hs_enable_with(cctx, EMSGUARD_REQUIRE_EMS, "1", EMSGUARD_DISABLE_CLIENT_EMS, "1", NULL);
    ck_assert_msg(run(legacy, cctx, &rr), "EMS-disabled client role was held to Require=1");
    ck_assert_int_eq(rr.ems, 0);
    run_clear(&rr);
    ck_assert_uint_eq(hs_counter(cctx, EMSGUARD_CNT_REJECTED_NO_EMS), 0);
    SSL_CTX_free(cctx);
    SSL_CTX_free(legacy);
}
END_TEST

/*
 * AllowLegacyResumption=1 with Require=1: a non-EMS session (from another
 * client) is not resumed either: a resumption has no ServerKeyExchange, and
 * it would be a TLS 1.2 handshake without EMS.
 */
START_TEST(test_allow_legacy_resumption_does_not_bypass)
{
    SSL_CTX *legacy = kx_server(KX_ECDHE_ECDSA, HS_NO_EMS);
    SSL_CTX *stock = hs_client(0), *cctx = hs_client(0);
    SSL_SESSION *sess;
    run_result rr;

    hs_enable_with(cctx, EMSGUARD_REQUIRE_EMS, "1", EMSGUARD_ALLOW_LEGACY_RESUMPTION, "1", NULL);
    ck_assert(run(legacy, stock, &rr));
    ck_assert_int_eq(rr.ems, 0);
    sess = rr.session;
    rr.session = NULL;
    /* Control: the stock client resumes it. */
    ck_assert(run_ex(legacy, stock, sess, 0, &rr));
    ck_assert_int_eq(rr.reused, 1);
    run_clear(&rr);
    run_ex(legacy, cctx, sess, 0, &rr);
    ck_assert_msg(!rr.ok, "Require=1 client completed a TLS 1.2 handshake without EMS (reused=%d)",
        rr.reused);
    run_clear(&rr);
    SSL_SESSION_free(sess);
    SSL_CTX_free(cctx);
    SSL_CTX_free(stock);
    SSL_CTX_free(legacy);
}
END_TEST

/* ---- suite ---------------------------------------------------------------- */

static void setup(void)
{
    hs_ext_cache_reset();
    hs_set_sni(NULL);
}

static Suite *client_require_suite(void)
{
    Suite *s = suite_create("emsguard-client-require");
    TCase *tc;

    tc = tcase_create("legacy-server");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_loop_test(tc, test_legacy_server_refused, KX_ECDHE_ECDSA, KX_RSA);
    tcase_add_test(tc, test_legacy_rsa_kx_server_refused);
    tcase_add_test(tc, test_refusal_logged);
    tcase_add_test(tc, test_dtls_legacy_server_refused);
    suite_add_tcase(s, tc);

    tc = tcase_create("keeps-working");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_loop_test(tc, test_ems_server_accepted, KX_ECDHE_ECDSA, KX_RSA);
    tcase_add_test(tc, test_rsa_kx_preferring_server_gets_ecdhe);
    tcase_add_loop_test(tc, test_resumption_still_works, 0, HS_MECH_COUNT);
    tcase_add_test(tc, test_tls13_unaffected);
    tcase_add_loop_test(tc, test_require_off_unaffected, KX_ECDHE_ECDSA, KX_COUNT);
    tcase_add_test(tc, test_dual_role_ctx);
    suite_add_tcase(s, tc);

    tc = tcase_create("security-callback");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_app_security_cb_chained);
    tcase_add_test(tc, test_default_security_level_chained);
    tcase_add_test(tc, test_security_cb_replaced_fails_closed);
    suite_add_tcase(s, tc);

    tc = tcase_create("switches");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_per_connection_no_ems_option);
    tcase_add_test(tc, test_disable_client_ems_wins);
    tcase_add_test(tc, test_allow_legacy_resumption_does_not_bypass);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(client_require_suite());
    int failed;

    /* One process: leak checking sees everything, and failures stay readable. */
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    X509_free(rsa_cert);
    EVP_PKEY_free(rsa_key);
    hs_cleanup();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
