/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The application's verify and security callbacks on an SSL_CTX with the
 * policy (issue 15, attack round 2, R4), in memory.
 *
 * emsguard installs its own verify callback (KeyExchangeAlgorithms\PKCS\
 * {Client,Server}MinKeyBitLength) and security callback (Diffie-Hellman\
 * ClientMinKeyBitLength, and a RequireExtendedMasterSecret=1 client's check
 * of the ServerHello) and calls the application's from them.  A plain
 * SSL_CTX_set_verify(), SSL_set_verify(), SSL_CTX_set_security_callback()
 * or SSL_set_security_callback() replaces emsguard's.  The EMSGUARD_*
 * setters store the application's callback where emsguard's calls it, and
 * the EMSGUARD_* getters read it back; libemsguard-preload.so redirects the
 * plain calls to them (test/preload_config.sh).
 *
 * Checked here: the check of emsguard's callback still refuses, the
 * application's callback is still consulted and its verdict still counts,
 * per SSL_CTX and per SSL (SSL_dup() included), OpenSSL's rule that
 * SSL_set_verify() with a NULL callback keeps the current one, an
 * application's own certificate check (SSL_CTX_set_cert_verify_callback(),
 * which replaces X509_verify_cert() and with it the verify callback), the getters,
 * and the setters on a ctx where emsguard installed no such callback (they
 * are the plain setters there) and with NULL arguments.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include "emsguard.h"
#include "harness.h"

typedef int (*security_fn)(const SSL *, const SSL_CTX *, int, int, int, void *, void *);

/* ---- an RSA-1024 DHE server (a 1024-bit key, a 1024-bit DH group) ---------- */

static EVP_PKEY *rsa_key;
static X509 *rsa_cert;

static void make_rsa1024(void)
{
    X509_NAME *name;

    if (rsa_key != NULL)
        return;
    rsa_key = EVP_RSA_gen(1024);
    rsa_cert = X509_new();
    ck_assert(rsa_key != NULL && rsa_cert != NULL);
    ASN1_INTEGER_set(X509_get_serialNumber(rsa_cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(rsa_cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(rsa_cert), 3600);
    X509_set_pubkey(rsa_cert, rsa_key);
    name = X509_get_subject_name(rsa_cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"rsa1024",
        -1, -1, 0);
    X509_set_issuer_name(rsa_cert, name);
    ck_assert_int_gt(X509_sign(rsa_cert, rsa_key, EVP_sha256()), 0);
}

#define DHE_SUITES "DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=1"

static SSL_CTX *dhe_server(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    make_rsa1024();
    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION), 1);
    ck_assert_int_eq(SSL_CTX_set_cipher_list(ctx, DHE_SUITES), 1);
    ck_assert_int_eq(SSL_CTX_use_certificate(ctx, rsa_cert), 1);
    ck_assert_int_eq(SSL_CTX_use_PrivateKey(ctx, rsa_key), 1);
    SSL_CTX_set_dh_auto(ctx, 1); /* 1024-bit group for a 1024-bit key */
    return ctx;
}

/*
 * A TLS 1.2 DHE client with the policy (|name| = |value|) that trusts the
 * server's certificate: OpenSSL's own verification passes, so a refusal is
 * emsguard's or the application's.
 */
static SSL_CTX *dhe_client(const char *name, const char *value)
{
    SSL_CTX *ctx = hs_client_ctx(0);
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();

    make_rsa1024();
    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(SSL_CTX_set_cipher_list(ctx, DHE_SUITES), 1);
    ck_assert_int_eq(X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), rsa_cert), 1);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(EMSGUARD_POLICY_set(p, EMSGUARD_EVENT_LOGGING, "0"), 1);
    if (name != NULL)
        ck_assert_int_eq(EMSGUARD_POLICY_set(p, name, value), 1);
    ck_assert_int_eq(EMSGUARD_enable_policy(ctx, p), 1);
    EMSGUARD_POLICY_free(p);
    return ctx;
}

#define PKCS_MIN "KeyExchangeAlgorithms\\PKCS\\ClientMinKeyBitLength"
#define DH_MIN "KeyExchangeAlgorithms\\Diffie-Hellman\\ClientMinKeyBitLength"

/* Connects a fresh SSL of |server| with |client|; the client's verify result. */
static int connect_ssl(SSL_CTX *server, SSL *client, long *verify_result)
{
    SSL *s = SSL_new(server);
    int ok;

    ck_assert_ptr_nonnull(s);
    ok = hs_connect(client, s);
    if (verify_result != NULL)
        *verify_result = SSL_get_verify_result(client);
    SSL_free(s);
    ERR_clear_error();
    return ok;
}

static int connect_ctx(SSL_CTX *server, SSL_CTX *client, long *verify_result)
{
    SSL *c = SSL_new(client);
    int ok;

    ck_assert_ptr_nonnull(c);
    ok = connect_ssl(server, c, verify_result);
    SSL_free(c);
    return ok;
}

/* ---- the application's callbacks ---------------------------------------------- */

static int verify_calls, security_calls, security_dh_asked;

static int app_verify_keep(int ok, X509_STORE_CTX *store)
{
    (void)store;
    verify_calls++;
    return ok;
}

static int app_verify_reject(int ok, X509_STORE_CTX *store)
{
    (void)ok;
    (void)store;
    verify_calls++;
    return 0;
}

static int app_security_allow(const SSL *ssl, const SSL_CTX *ctx, int op, int bits, int nid,
    void *other, void *ex)
{
    (void)ssl;
    (void)ctx;
    (void)op;
    (void)bits;
    (void)nid;
    (void)other;
    (void)ex;
    security_calls++;
    return 1;
}

/* Refuses every DH group: an application policy stricter than emsguard's. */
static int app_security_no_dh(const SSL *ssl, const SSL_CTX *ctx, int op, int bits, int nid,
    void *other, void *ex)
{
    (void)ssl;
    (void)ctx;
    (void)bits;
    (void)nid;
    (void)other;
    (void)ex;
    security_calls++;
    if ((op & ~SSL_SECOP_PEER) == SSL_SECOP_TMP_DH) {
        security_dh_asked++;
        return 0;
    }
    return 1;
}

static void reset_counts(void)
{
    verify_calls = security_calls = security_dh_asked = 0;
}

/* ---- verify callback ------------------------------------------------------------ */

START_TEST(test_ctx_set_verify)
{
    SSL_CTX *srv = dhe_server();
    SSL_CTX *cli = dhe_client(PKCS_MIN, "2048");
    SSL_CTX *plain = dhe_client(PKCS_MIN, "2048");
    SSL_CTX *weak = dhe_client(PKCS_MIN, "1024");
    long vr = 0;

    /* The application asks for peer verification with its own callback. */
    reset_counts();
    ck_assert_int_eq(EMSGUARD_CTX_set_verify(cli, SSL_VERIFY_PEER, app_verify_keep), 1);
    ck_assert_int_eq(SSL_CTX_get_verify_mode(cli), SSL_VERIFY_PEER);
    ck_assert(EMSGUARD_CTX_get_verify_callback(cli) == app_verify_keep);
    /* emsguard's is still the one libssl calls. */
    ck_assert(SSL_CTX_get_verify_callback(cli) != app_verify_keep);
    ck_assert_ptr_nonnull(SSL_CTX_get_verify_callback(cli));
    ck_assert_int_eq(connect_ctx(srv, cli, &vr), 0);
    ck_assert_int_eq(vr, X509_V_ERR_EE_KEY_TOO_SMALL);
    ck_assert_int_gt(verify_calls, 0);

    /* NULL: no callback of the application's; the check stays. */
    ck_assert_int_eq(EMSGUARD_CTX_set_verify(cli, SSL_VERIFY_PEER, NULL), 1);
    ck_assert(EMSGUARD_CTX_get_verify_callback(cli) == NULL);
    reset_counts();
    ck_assert_int_eq(connect_ctx(srv, cli, &vr), 0);
    ck_assert_int_eq(vr, X509_V_ERR_EE_KEY_TOO_SMALL);
    ck_assert_int_eq(verify_calls, 0);

    /*
     * libssl's own setter replaces emsguard's callback on the ctx; emsguard
     * puts it back on each connection at handshake start
     * (hold_verify_callback), chaining the ctx's: the check holds as well.
     */
    SSL_CTX_set_verify(plain, SSL_VERIFY_PEER, app_verify_keep);
    reset_counts();
    ck_assert_int_eq(connect_ctx(srv, plain, &vr), 0);
    ck_assert_int_eq(vr, X509_V_ERR_EE_KEY_TOO_SMALL);
    ck_assert_int_gt(verify_calls, 0);
    ck_assert(EMSGUARD_CTX_get_verify_callback(plain) == app_verify_keep);

    /* A key the policy accepts: the application's callback decides. */
    ck_assert_int_eq(EMSGUARD_CTX_set_verify(weak, SSL_VERIFY_PEER, app_verify_keep), 1);
    reset_counts();
    ck_assert_int_eq(connect_ctx(srv, weak, &vr), 1);
    ck_assert_int_eq(vr, X509_V_OK);
    ck_assert_int_gt(verify_calls, 0);
    ck_assert_int_eq(EMSGUARD_CTX_set_verify(weak, SSL_VERIFY_PEER, app_verify_reject), 1);
    reset_counts();
    ck_assert_int_eq(connect_ctx(srv, weak, &vr), 0);
    ck_assert_int_gt(verify_calls, 0);
    SSL_CTX_free(srv);
    SSL_CTX_free(cli);
    SSL_CTX_free(plain);
    SSL_CTX_free(weak);
}
END_TEST

START_TEST(test_ssl_set_verify)
{
    SSL_CTX *srv = dhe_server();
    SSL_CTX *cli = dhe_client(PKCS_MIN, "2048");
    SSL_CTX *weak = dhe_client(PKCS_MIN, "1024");
    SSL *ssl, *dup;
    long vr = 0;

    /* Per SSL, on a ctx that asks for no verification. */
    ssl = SSL_new(cli);
    ck_assert_ptr_nonnull(ssl);
    ck_assert(EMSGUARD_get_verify_callback(ssl) == NULL);
    ck_assert_int_eq(EMSGUARD_set_verify(ssl, SSL_VERIFY_PEER, app_verify_keep), 1);
    ck_assert_int_eq(SSL_get_verify_mode(ssl), SSL_VERIFY_PEER);
    ck_assert(EMSGUARD_get_verify_callback(ssl) == app_verify_keep);
    ck_assert(SSL_get_verify_callback(ssl) != app_verify_keep);
    /* The ctx is untouched. */
    ck_assert(EMSGUARD_CTX_get_verify_callback(cli) == NULL);
    ck_assert_int_eq(SSL_CTX_get_verify_mode(cli), SSL_VERIFY_NONE);
    reset_counts();
    ck_assert_int_eq(connect_ssl(srv, ssl, &vr), 0);
    ck_assert_int_eq(vr, X509_V_ERR_EE_KEY_TOO_SMALL);
    ck_assert_int_gt(verify_calls, 0);
    SSL_free(ssl);

    /*
     * OpenSSL's rule: SSL_set_verify() with a NULL callback changes only the
     * mode, the SSL keeps the callback it has (its ctx's).  SSL_dup() copies
     * the SSL's callback.
     */
    ck_assert_int_eq(EMSGUARD_CTX_set_verify(weak, SSL_VERIFY_NONE, app_verify_reject), 1);
    ssl = SSL_new(weak);
    ck_assert(EMSGUARD_get_verify_callback(ssl) == app_verify_reject);
    ck_assert_int_eq(EMSGUARD_set_verify(ssl, SSL_VERIFY_PEER, NULL), 1);
    ck_assert(EMSGUARD_get_verify_callback(ssl) == app_verify_reject);
    ck_assert_int_eq(EMSGUARD_set_verify(ssl, SSL_VERIFY_PEER, app_verify_keep), 1);
    dup = SSL_dup(ssl);
    ck_assert_ptr_nonnull(dup);
    ck_assert(EMSGUARD_get_verify_callback(dup) == app_verify_keep);
    ck_assert_int_eq(SSL_get_verify_mode(dup), SSL_VERIFY_PEER);
    /* The per-SSL callback is the one consulted, not the ctx's. */
    reset_counts();
    ck_assert_int_eq(connect_ssl(srv, dup, &vr), 1);
    ck_assert_int_gt(verify_calls, 0);
    SSL_free(dup);
    SSL_free(ssl);
    /* An SSL without one of its own uses the ctx's, whose verdict counts. */
    ck_assert_int_eq(EMSGUARD_CTX_set_verify(weak, SSL_VERIFY_PEER, app_verify_reject), 1);
    reset_counts();
    ck_assert_int_eq(connect_ctx(srv, weak, &vr), 0);
    ck_assert_int_gt(verify_calls, 0);
    SSL_CTX_free(srv);
    SSL_CTX_free(cli);
    SSL_CTX_free(weak);
}
END_TEST

/* The application's certificate check: trusts the peer, never calls X509_verify_cert(). */
static int cert_verify_calls;

static int app_cert_verify(X509_STORE_CTX *store, void *arg)
{
    (void)store;
    ck_assert_ptr_eq(arg, &cert_verify_calls);
    cert_verify_calls++;
    return 1;
}

START_TEST(test_ctx_cert_verify_callback)
{
    SSL_CTX *srv = dhe_server();
    SSL_CTX *cli = dhe_client(PKCS_MIN, "2048");
    SSL_CTX *weak = dhe_client(PKCS_MIN, "1024");
    SSL_CTX *plain = dhe_client(PKCS_MIN, "2048");
    long vr = 0;

    /* It replaces X509_verify_cert(), and with it the verify callback. */
    ck_assert_int_eq(EMSGUARD_CTX_set_verify(cli, SSL_VERIFY_PEER, NULL), 1);
    ck_assert_int_eq(EMSGUARD_CTX_set_cert_verify_callback(cli, app_cert_verify,
                         &cert_verify_calls), 1);
    cert_verify_calls = 0;
    ck_assert_int_eq(connect_ctx(srv, cli, &vr), 0);
    ck_assert_int_eq(vr, X509_V_ERR_EE_KEY_TOO_SMALL);
    ck_assert_int_eq(cert_verify_calls, 1);
    /* A key the policy accepts: the application's check decides. */
    ck_assert_int_eq(EMSGUARD_CTX_set_verify(weak, SSL_VERIFY_PEER, NULL), 1);
    ck_assert_int_eq(EMSGUARD_CTX_set_cert_verify_callback(weak, app_cert_verify,
                         &cert_verify_calls), 1);
    cert_verify_calls = 0;
    ck_assert_int_eq(connect_ctx(srv, weak, &vr), 1);
    ck_assert_int_eq(cert_verify_calls, 1);
    /* NULL: libssl's X509_verify_cert() again, emsguard's verify callback in it. */
    ck_assert_int_eq(EMSGUARD_CTX_set_cert_verify_callback(cli, NULL, NULL), 1);
    cert_verify_calls = 0;
    ck_assert_int_eq(connect_ctx(srv, cli, &vr), 0);
    ck_assert_int_eq(vr, X509_V_ERR_EE_KEY_TOO_SMALL);
    ck_assert_int_eq(cert_verify_calls, 0);
    /* The contrast: libssl's setter skips emsguard's check. */
    SSL_CTX_set_verify(plain, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_cert_verify_callback(plain, app_cert_verify, &cert_verify_calls);
    ck_assert_int_eq(connect_ctx(srv, plain, &vr), 1);
    ck_assert_int_eq(EMSGUARD_CTX_set_cert_verify_callback(NULL, app_cert_verify, NULL), 0);
    ERR_clear_error();
    SSL_CTX_free(srv);
    SSL_CTX_free(cli);
    SSL_CTX_free(weak);
    SSL_CTX_free(plain);
}
END_TEST

/* ---- security callback ------------------------------------------------------------ */

static SSL_CTX *require_client(void)
{
    SSL_CTX *ctx = hs_client_ctx(0);
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();

    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(EMSGUARD_POLICY_set(p, EMSGUARD_EVENT_LOGGING, "0"), 1);
    ck_assert_int_eq(EMSGUARD_POLICY_set(p, EMSGUARD_REQUIRE_EMS, "1"), 1);
    ck_assert_int_eq(EMSGUARD_enable_policy(ctx, p), 1);
    EMSGUARD_POLICY_free(p);
    return ctx;
}

/* |client| (made with SSL_new) against a TLS 1.2 server: the version, 0 if it failed. */
static int version_with(SSL_CTX *server, SSL *client)
{
    SSL *s = SSL_new(server);
    int v;

    ck_assert_ptr_nonnull(s);
    v = hs_connect(client, s) ? SSL_version(client) : 0;
    SSL_free(s);
    ERR_clear_error();
    return v;
}

START_TEST(test_ctx_security_require)
{
    SSL_CTX *ems = hs_server_ctx(HS_MECH_SESSION_ID, 0);
    SSL_CTX *legacy = hs_server_ctx(HS_MECH_SESSION_ID, HS_NO_EMS);
    SSL_CTX *cli = require_client();
    security_fn ours = SSL_CTX_get_security_callback(cli);
    SSL *ssl;

    ck_assert_int_eq(EMSGUARD_CTX_set_security_callback(cli, app_security_allow), 1);
    ck_assert(EMSGUARD_CTX_get_security_callback(cli) == app_security_allow);
    /* Still emsguard's (the one that calls the application's: not |ours|). */
    ck_assert(SSL_CTX_get_security_callback(cli) != app_security_allow);
    ck_assert(hs_same_object(SSL_CTX_get_security_callback(cli), ours));
    /* TLS 1.2 with EMS: checked, not held to TLS 1.3. */
    reset_counts();
    ssl = SSL_new(cli);
    ck_assert(EMSGUARD_get_security_callback(ssl) == app_security_allow);
    ck_assert_int_eq(version_with(ems, ssl), TLS1_2_VERSION);
    ck_assert_int_gt(security_calls, 0);
    SSL_free(ssl);
    /* Without EMS: refused. */
    ssl = SSL_new(cli);
    ck_assert_int_eq(version_with(legacy, ssl), 0);
    SSL_free(ssl);
    SSL_CTX_free(ems);
    SSL_CTX_free(legacy);
    SSL_CTX_free(cli);
}
END_TEST

/*
 * An SSL made before the application's callback is set on its ctx: it still
 * holds the callback libssl copied from the ctx then, the one for a ctx with
 * libssl's own callback behind (eg_security_cb_plain), and the application's
 * callback must reach it too (docs/api.md: unlike libssl).
 */
START_TEST(test_ctx_security_reaches_existing_ssl)
{
    SSL_CTX *ems = hs_server_ctx(HS_MECH_SESSION_ID, 0);
    SSL_CTX *legacy = hs_server_ctx(HS_MECH_SESSION_ID, HS_NO_EMS);
    SSL_CTX *cli = require_client();
    SSL *before = SSL_new(cli), *refused = SSL_new(cli);

    ck_assert_ptr_nonnull(before);
    ck_assert_ptr_nonnull(refused);
    ck_assert_int_eq(EMSGUARD_CTX_set_security_callback(cli, app_security_allow), 1);
    reset_counts();
    ck_assert_int_eq(version_with(ems, before), TLS1_2_VERSION);
    ck_assert_int_gt(security_calls, 0);
    /* And emsguard's check still applies to it. */
    ck_assert_int_eq(version_with(legacy, refused), 0);
    SSL_free(before);
    SSL_free(refused);
    SSL_CTX_free(ems);
    SSL_CTX_free(legacy);
    SSL_CTX_free(cli);
}
END_TEST

START_TEST(test_ssl_security_require)
{
    SSL_CTX *ems = hs_server_ctx(HS_MECH_SESSION_ID, 0);
    SSL_CTX *legacy = hs_server_ctx(HS_MECH_SESSION_ID, HS_NO_EMS);
    SSL_CTX *cli = require_client();
    security_fn ours = SSL_CTX_get_security_callback(cli);
    security_fn openssl_default = EMSGUARD_CTX_get_security_callback(cli);
    SSL *ssl, *dup;

    /* OpenSSL's default callback (the security level) is what emsguard chains. */
    ck_assert_ptr_nonnull(openssl_default);
    ck_assert(openssl_default != ours);
    ssl = SSL_new(cli);
    ck_assert(EMSGUARD_get_security_callback(ssl) == openssl_default);
    ck_assert_int_eq(EMSGUARD_set_security_callback(ssl, app_security_allow), 1);
    ck_assert(EMSGUARD_get_security_callback(ssl) == app_security_allow);
    ck_assert(SSL_get_security_callback(ssl) == ours);
    ck_assert(EMSGUARD_CTX_get_security_callback(cli) == openssl_default);
    dup = SSL_dup(ssl);
    ck_assert_ptr_nonnull(dup);
    ck_assert(EMSGUARD_get_security_callback(dup) == app_security_allow);
    reset_counts();
    ck_assert_int_eq(version_with(ems, ssl), TLS1_2_VERSION);
    ck_assert_int_gt(security_calls, 0);
    reset_counts();
    ck_assert_int_eq(version_with(legacy, dup), 0);
    ck_assert_int_gt(security_calls, 0);
    SSL_free(ssl);
    SSL_free(dup);
    SSL_CTX_free(ems);
    SSL_CTX_free(legacy);
    SSL_CTX_free(cli);
}
END_TEST

START_TEST(test_security_dh_min_bits)
{
    SSL_CTX *srv = dhe_server();
    SSL_CTX *cli = dhe_client(DH_MIN, "3072");
    SSL_CTX *strict = dhe_client(DH_MIN, "3072");
    SSL_CTX *loose = dhe_client(DH_MIN, "512");
    SSL *ssl;

    /* A permissive application callback does not lift emsguard's DH minimum. */
    ck_assert_int_eq(EMSGUARD_CTX_set_security_callback(cli, app_security_allow), 1);
    reset_counts();
    ck_assert_int_eq(connect_ctx(srv, cli, NULL), 0);
    ck_assert_int_gt(security_calls, 0);
    /* Per SSL: the same. */
    ssl = SSL_new(strict);
    ck_assert_int_eq(EMSGUARD_set_security_callback(ssl, app_security_allow), 1);
    reset_counts();
    ck_assert_int_eq(connect_ssl(srv, ssl, NULL), 0);
    ck_assert_int_gt(security_calls, 0);
    SSL_free(ssl);
    /* emsguard's minimum met: the application's stricter verdict still counts. */
    ck_assert_int_eq(connect_ctx(srv, loose, NULL), 1);
    ck_assert_int_eq(EMSGUARD_CTX_set_security_callback(loose, app_security_no_dh), 1);
    reset_counts();
    ck_assert_int_eq(connect_ctx(srv, loose, NULL), 0);
    ck_assert_int_gt(security_dh_asked, 0);
    SSL_CTX_free(srv);
    SSL_CTX_free(cli);
    SSL_CTX_free(strict);
    SSL_CTX_free(loose);
}
END_TEST

/* ---- where emsguard installed nothing, and bad arguments ---------------------------- */

START_TEST(test_plain_where_not_ours)
{
    SSL_CTX *none = hs_client_ctx(0);
    SSL_CTX *defaults = dhe_client(NULL, NULL); /* policy without either callback */
    SSL_CTX *ctxs[2] = { none, defaults };
    size_t i;

    for (i = 0; i < 2; i++) {
        SSL_CTX *ctx = ctxs[i];
        SSL *ssl;

        ck_assert_int_eq(EMSGUARD_CTX_set_verify(ctx, SSL_VERIFY_PEER, app_verify_keep), 1);
        ck_assert(SSL_CTX_get_verify_callback(ctx) == app_verify_keep);
        ck_assert(EMSGUARD_CTX_get_verify_callback(ctx) == app_verify_keep);
        ck_assert_int_eq(SSL_CTX_get_verify_mode(ctx), SSL_VERIFY_PEER);
        ck_assert_int_eq(EMSGUARD_CTX_set_security_callback(ctx, app_security_allow), 1);
        ck_assert(SSL_CTX_get_security_callback(ctx) == app_security_allow);
        ck_assert(EMSGUARD_CTX_get_security_callback(ctx) == app_security_allow);
        ssl = SSL_new(ctx);
        ck_assert_ptr_nonnull(ssl);
        ck_assert_int_eq(EMSGUARD_set_verify(ssl, SSL_VERIFY_NONE, app_verify_reject), 1);
        ck_assert(SSL_get_verify_callback(ssl) == app_verify_reject);
        ck_assert(EMSGUARD_get_verify_callback(ssl) == app_verify_reject);
        ck_assert_int_eq(SSL_get_verify_mode(ssl), SSL_VERIFY_NONE);
        ck_assert_int_eq(EMSGUARD_set_security_callback(ssl, app_security_no_dh), 1);
        ck_assert(SSL_get_security_callback(ssl) == app_security_no_dh);
        ck_assert(EMSGUARD_get_security_callback(ssl) == app_security_no_dh);
        SSL_free(ssl);
    }
    SSL_CTX_free(none);
    SSL_CTX_free(defaults);

    ERR_clear_error();
    ck_assert_int_eq(EMSGUARD_CTX_set_verify(NULL, SSL_VERIFY_PEER, app_verify_keep), 0);
    ck_assert_int_eq(ERR_GET_REASON(ERR_peek_last_error()), EMSGUARD_R_INVALID_ARGUMENT);
    ERR_clear_error();
    ck_assert_int_eq(EMSGUARD_set_verify(NULL, SSL_VERIFY_PEER, app_verify_keep), 0);
    ck_assert_int_eq(ERR_GET_REASON(ERR_peek_last_error()), EMSGUARD_R_INVALID_ARGUMENT);
    ERR_clear_error();
    ck_assert_int_eq(EMSGUARD_CTX_set_security_callback(NULL, app_security_allow), 0);
    ck_assert_int_eq(ERR_GET_REASON(ERR_peek_last_error()), EMSGUARD_R_INVALID_ARGUMENT);
    ERR_clear_error();
    ck_assert_int_eq(EMSGUARD_set_security_callback(NULL, app_security_allow), 0);
    ck_assert_int_eq(ERR_GET_REASON(ERR_peek_last_error()), EMSGUARD_R_INVALID_ARGUMENT);
    ERR_clear_error();
    ck_assert(EMSGUARD_CTX_get_verify_callback(NULL) == NULL);
    ck_assert(EMSGUARD_get_verify_callback(NULL) == NULL);
    ck_assert(EMSGUARD_CTX_get_security_callback(NULL) == NULL);
    ck_assert(EMSGUARD_get_security_callback(NULL) == NULL);
}
END_TEST

static Suite *setters2_suite(void)
{
    Suite *s = suite_create("setters2");
    TCase *tc = tcase_create("setters2");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_ctx_set_verify);
    tcase_add_test(tc, test_ssl_set_verify);
    tcase_add_test(tc, test_ctx_cert_verify_callback);
    tcase_add_test(tc, test_ctx_security_require);
    tcase_add_test(tc, test_ctx_security_reaches_existing_ssl);
    tcase_add_test(tc, test_ssl_security_require);
    tcase_add_test(tc, test_security_dh_min_bits);
    tcase_add_test(tc, test_plain_where_not_ours);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(setters2_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    X509_free(rsa_cert);
    EVP_PKEY_free(rsa_key);
    hs_cleanup();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
