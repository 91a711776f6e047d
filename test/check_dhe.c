/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DHE with peers that lack Extended Master Secret: the 1-in-256 failure.
 *
 * A peer that keeps the leading zero bytes of the DH shared secret (see
 * dhe_buggy.h) fails about one full DHE handshake in 256 against a correct
 * peer, with bad_record_mac.  Once non-EMS sessions are never resumed, every
 * connection to such a peer is a full handshake, so emsguard's policy
 * DisableDHEWithoutExtendedMasterSecret (default 1) steers those peers away
 * from TLS_DHE_*.  Each scenario runs many fresh full handshakes over BIO
 * pairs and prints what it observed.
 *
 * EMSGUARD_DHE_HANDSHAKES sets the handshakes per scenario: default 3000
 * (about 11.7 expected failures; none at all has odds of 1 in 120000), and
 * never fewer than 2000, where "failures > 0" starts to be a gamble.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/ssl.h>
#include "dhe_buggy.h"
#include "emsguard.h"

#define MIN_HANDSHAKES 2000
#define DEFAULT_HANDSHAKES 3000
#define LEGACY_HANDSHAKES 50
#define MAX_STEPS 200
#define DISABLE_DHE_NO_EMS EMSGUARD_DISABLE_DHE_WITHOUT_EMS

static int n_handshakes = DEFAULT_HANDSHAKES;
static EVP_PKEY *rsa_key; /* the correct peers' certificate, default libctx */
static X509 *rsa_cert;

/* ---- one handshake, as the wire saw it ---------------------------------- */

typedef struct {
    int server_alert; /* fatal alert the server sent, -1 if none */
    int client_alert; /* fatal alert the client sent, -1 if none */
    int hello_dhe; /* the ClientHello offered a TLS_DHE_* suite */
    int hello_ems; /* the ClientHello carried extension 23 */
    const SSL_CIPHER *cipher; /* the ServerHello's suite, NULL if none */
} wire_view;

static unsigned get16(const unsigned char *p)
{
    return ((unsigned)p[0] << 8) | p[1];
}

static int is_dhe(const SSL_CIPHER *c)
{
    return c != NULL && SSL_CIPHER_get_kx_nid(c) == NID_kx_dhe;
}

static void read_client_hello(wire_view *v, SSL *ssl, const unsigned char *p,
    size_t len)
{
    size_t off = 4 + 2 + 32, end, n;

    if (len < off + 1)
        return;
    off += 1 + p[off]; /* session ID */
    if (len < off + 2 || len < off + 2 + get16(p + off))
        return;
    end = off + 2 + get16(p + off);
    for (off += 2; off + 2 <= end; off += 2)
        if (is_dhe(SSL_CIPHER_find(ssl, p + off)))
            v->hello_dhe = 1;
    off = end;
    if (len < off + 1)
        return;
    off += 1 + p[off]; /* compression methods */
    if (len < off + 2)
        return;
    for (off += 2; len >= off + 4; off += 4 + n) {
        n = get16(p + off + 2);
        if (get16(p + off) == TLSEXT_TYPE_extended_master_secret)
            v->hello_ems = 1;
    }
}

static void read_server_hello(wire_view *v, SSL *ssl, const unsigned char *p,
    size_t len)
{
    size_t off = 4 + 2 + 32;

    if (len < off + 1 || len < off + 1 + p[off] + 2)
        return;
    v->cipher = SSL_CIPHER_find(ssl, p + off + 1 + p[off]);
}

static void on_message(int write_p, int version, int content_type,
    const void *buf, size_t len, SSL *ssl, void *arg)
{
    wire_view *v = arg;
    const unsigned char *p = buf;

    (void)version;
    if (!write_p || len < 2)
        return;
    if (content_type == SSL3_RT_ALERT && p[0] == SSL3_AL_FATAL) {
        if (SSL_is_server(ssl))
            v->server_alert = p[1];
        else
            v->client_alert = p[1];
    } else if (content_type == SSL3_RT_HANDSHAKE) {
        if (p[0] == SSL3_MT_CLIENT_HELLO && !SSL_is_server(ssl))
            read_client_hello(v, ssl, p, len);
        else if (p[0] == SSL3_MT_SERVER_HELLO && SSL_is_server(ssl))
            read_server_hello(v, ssl, p, len);
    }
}

/* One step of one end: 1 done, 0 waiting for the peer, -1 failed. */
static int step(SSL *ssl)
{
    int r = SSL_do_handshake(ssl);

    if (r == 1)
        return 1;
    r = SSL_get_error(ssl, r);
    return r == SSL_ERROR_WANT_READ || r == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

/* A fresh full handshake (no session offered) and one byte each way. */
static int handshake(SSL_CTX *sctx, SSL_CTX *cctx, wire_view *v)
{
    SSL *client = SSL_new(cctx), *server = SSL_new(sctx);
    BIO *cbio = NULL, *sbio = NULL;
    unsigned char b = 0;
    int c = 0, s = 0, i, ok = 0;

    memset(v, 0, sizeof(*v));
    v->server_alert = v->client_alert = -1;
    if (client == NULL || server == NULL || !BIO_new_bio_pair(&cbio, 0, &sbio, 0))
        goto done;
    SSL_set_bio(client, cbio, cbio);
    SSL_set_bio(server, sbio, sbio);
    SSL_set_connect_state(client);
    SSL_set_accept_state(server);
    SSL_set_msg_callback(client, on_message);
    SSL_set_msg_callback_arg(client, v);
    SSL_set_msg_callback(server, on_message);
    SSL_set_msg_callback_arg(server, v);
    for (i = 0; i < MAX_STEPS && (c == 0 || s == 0); i++) {
        if (c == 0)
            c = step(client);
        if (s == 0)
            s = step(server);
        /* One end failed: go on until the other has read all it was sent. */
        if ((c < 0 || s < 0) && BIO_ctrl_pending(SSL_get_rbio(client)) == 0
            && BIO_ctrl_pending(SSL_get_rbio(server)) == 0)
            break;
    }
    ok = c == 1 && s == 1 && SSL_write(server, "s", 1) == 1
        && SSL_read(client, &b, 1) == 1 && b == 's'
        && SSL_write(client, "c", 1) == 1 && SSL_read(server, &b, 1) == 1
        && b == 'c';
done:
    SSL_free(client);
    SSL_free(server);
    ERR_clear_error();
    return ok;
}

/* ---- a scenario: many handshakes, tallied ------------------------------- */

typedef struct {
    int n; /* handshakes run */
    int failures;
    int alert20_only; /* failures where exactly one end sent bad_record_mac */
    int server_alert20, client_alert20;
    int other_alerts; /* any fatal alert other than a lone 20 */
    int dhe, ecdhe; /* suites the ServerHello chose */
    int hello_dhe, hello_ems; /* ClientHellos offering DHE / EMS */
    unsigned long derivations, leading_zero; /* buggy peer's DH secrets */
} tally;

/*
 * Runs |n| handshakes and frees both ctxs.  Returns 0 if a ctx is NULL (a
 * peer that could not be set up); the caller fails the test then.
 */
static int run(const char *label, SSL_CTX *sctx, SSL_CTX *cctx, int n,
    tally *t)
{
    dhe_buggy_stats before, after;
    wire_view v;
    int i, ok = sctx != NULL && cctx != NULL;

    memset(t, 0, sizeof(*t));
    dhe_buggy_get_stats(&before);
    for (i = 0; ok && i < n; i++, t->n++) {
        if (!handshake(sctx, cctx, &v)) {
            t->failures++;
            if (v.server_alert == SSL_AD_BAD_RECORD_MAC && v.client_alert == -1) {
                t->alert20_only++;
                t->server_alert20++;
            } else if (v.client_alert == SSL_AD_BAD_RECORD_MAC && v.server_alert == -1) {
                t->alert20_only++;
                t->client_alert20++;
            } else {
                t->other_alerts++;
                if (t->other_alerts <= 3)
                    printf("  %s: handshake %d failed, server alert %d, "
                           "client alert %d\n", label, i, v.server_alert,
                        v.client_alert);
            }
        }
        t->dhe += is_dhe(v.cipher);
        t->ecdhe += v.cipher != NULL && SSL_CIPHER_get_kx_nid(v.cipher) == NID_kx_ecdhe;
        t->hello_dhe += v.hello_dhe;
        t->hello_ems += v.hello_ems;
    }
    dhe_buggy_get_stats(&after);
    t->derivations = after.derivations - before.derivations;
    t->leading_zero = after.leading_zero - before.leading_zero;
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    if (!ok) {
        printf("%s: a peer could not be set up\n", label);
        return 0;
    }
    printf("%s: observed: %d failures / %d handshakes (rate %.3f%%), "
           "%lu secrets with a leading zero byte\n",
        label, t->failures, t->n, 100.0 * t->failures / t->n, t->leading_zero);
    printf("  expected at 1/256: %.1f; DHE chosen %d, ECDHE %d; "
           "bad_record_mac sent by server %d, by client %d; "
           "ClientHellos with DHE %d, with EMS %d\n",
        t->n / 256.0, t->dhe, t->ecdhe, t->server_alert20, t->client_alert20,
        t->hello_dhe, t->hello_ems);
    fflush(stdout);
    return 1;
}

/*
 * The bug shows: DHE every time, and a handshake fails exactly when the
 * buggy end's secret began with a zero byte -- then the server, first to
 * decrypt a Finished made with the other keys, sends bad_record_mac.
 */
static void expect_bug(const char *label, const tally *t)
{
    ck_assert_msg(t->dhe == t->n, "%s: DHE chosen in %d of %d", label, t->dhe, t->n);
    ck_assert_msg(t->derivations == (unsigned long)t->n,
        "%s: the buggy peer derived %lu DH secrets in %d handshakes "
        "(is EVP_PKEY_derive interposed?)", label, t->derivations, t->n);
    ck_assert_msg(t->failures > 0, "%s: no failure in %d DHE handshakes", label, t->n);
    ck_assert_msg(t->failures <= 3 * t->n / 256,
        "%s: %d failures, more than 3x the %.1f expected at 1/256",
        label, t->failures, t->n / 256.0);
    ck_assert_msg((unsigned long)t->failures == t->leading_zero,
        "%s: %d failures but %lu leading-zero secrets", label, t->failures,
        t->leading_zero);
    ck_assert_msg(t->alert20_only == t->failures,
        "%s: %d of %d failures were not a lone bad_record_mac", label,
        t->failures - t->alert20_only, t->failures);
    /* The client's Finished is the first record under the new keys. */
    ck_assert_msg(t->server_alert20 == t->failures,
        "%s: the client sent bad_record_mac in %d failures", label,
        t->client_alert20);
}

/* The mitigation held: no DHE, no DH secret at the buggy end, no failure. */
static void expect_no_dhe(const char *label, const tally *t)
{
    ck_assert_msg(t->failures == 0, "%s: %d failures", label, t->failures);
    ck_assert_msg(t->dhe == 0, "%s: DHE chosen in %d of %d", label, t->dhe, t->n);
    ck_assert_msg(t->ecdhe == t->n, "%s: ECDHE chosen in %d of %d", label, t->ecdhe, t->n);
    ck_assert_msg(t->derivations == 0, "%s: the buggy peer derived %lu DH secrets",
        label, t->derivations);
}

/* ---- the correct peers -------------------------------------------------- */

/* Stock OpenSSL server: DEFAULT suites, client's order (OpenSSL's default). */
static SSL_CTX *stock_server(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_security_level(ctx, 1); /* RSA-1024 and 1024-bit DH */
    if (SSL_CTX_use_certificate(ctx, rsa_cert) != 1
        || SSL_CTX_use_PrivateKey(ctx, rsa_key) != 1
        || !SSL_CTX_set_dh_auto(ctx, 1)
        || !SSL_CTX_set_cipher_list(ctx, "DEFAULT")) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* Stock OpenSSL client offering |ciphers| in that order. */
static SSL_CTX *stock_client(const char *ciphers)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_security_level(ctx, 1);
    if (!SSL_CTX_set_cipher_list(ctx, ciphers)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/*
 * Enables a policy of NULL-terminated name/value pairs on |ctx| (logging
 * off, to keep the output readable).  On failure prints why, frees |ctx|
 * and returns NULL.
 */
static SSL_CTX *with_policy(SSL_CTX *ctx, ...)
{
    EMSGUARD_POLICY *policy = EMSGUARD_POLICY_new();
    const char *name, *value;
    int ok = ctx != NULL && policy != NULL
        && EMSGUARD_POLICY_set(policy, EMSGUARD_EVENT_LOGGING, "0");
    va_list ap;

    va_start(ap, ctx);
    while (ok && (name = va_arg(ap, const char *)) != NULL) {
        value = va_arg(ap, const char *);
        if (!(ok = EMSGUARD_POLICY_set(policy, name, value)))
            printf("  EMSGUARD_POLICY_set(%s, %s) failed\n", name, value);
    }
    va_end(ap);
    ok = ok && EMSGUARD_enable_policy(ctx, policy);
    EMSGUARD_POLICY_free(policy);
    if (!ok) {
        ERR_print_errors_fp(stdout);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* ---- scenarios ---------------------------------------------------------- */

#define SETUP_FAILED "%s: a peer could not be set up"

START_TEST(test_a_buggy_client_vs_stock_server)
{
    const char *label = "a) buggy client vs stock server";
    SSL_CTX *sctx = stock_server(), *cctx = dhe_buggy_ctx(0);
    tally t;

    ck_assert_msg(run(label, sctx, cctx, n_handshakes, &t), SETUP_FAILED, label);
    expect_bug(label, &t);
}
END_TEST

START_TEST(test_b_buggy_server_vs_stock_client)
{
    const char *label = "b) buggy server vs stock client";
    SSL_CTX *sctx = dhe_buggy_ctx(1), *cctx = stock_client(DHE_BUGGY_CIPHERS);
    tally t;

    ck_assert_msg(run(label, sctx, cctx, n_handshakes, &t), SETUP_FAILED, label);
    expect_bug(label, &t);
}
END_TEST

/*
 * Control: the same library context in observe mode derives correctly.  No
 * failure, yet the zero-led secrets are there -- so the failures above come
 * from keeping the zeros, not from the interposition.
 */
START_TEST(test_observe_mode_is_harmless)
{
    const char *label = "control) observe-mode client vs stock server";
    SSL_CTX *sctx = stock_server(), *cctx = dhe_buggy_ctx(0);
    tally t;
    int ok;

    dhe_buggy_set_keep_zeros(0);
    ok = run(label, sctx, cctx, n_handshakes, &t);
    dhe_buggy_set_keep_zeros(1);
    ck_assert_msg(ok, SETUP_FAILED, label);
    ck_assert_msg(t.failures == 0, "%s: %d failures", label, t.failures);
    ck_assert_msg(t.dhe == t.n, "%s: DHE chosen in %d of %d", label, t.dhe, t.n);
    ck_assert_msg(t.derivations == (unsigned long)t.n, "%s: %lu DH secrets",
        label, t.derivations);
    ck_assert_msg(t.leading_zero > 0 && t.leading_zero <= 3UL * t.n / 256,
        "%s: %lu leading-zero secrets in %d, expected about %.1f", label,
        t.leading_zero, t.n, t.n / 256.0);
}
END_TEST

START_TEST(test_c_buggy_client_vs_emsguard_server)
{
    const char *label = "c) buggy client vs emsguard server";
    SSL_CTX *sctx = with_policy(stock_server(), NULL), *cctx = dhe_buggy_ctx(0);
    tally t;

    ck_assert_msg(run(label, sctx, cctx, n_handshakes, &t), SETUP_FAILED, label);
    expect_no_dhe(label, &t);
    /* The client did offer DHE first, without EMS: the server declined it. */
    ck_assert_int_eq(t.hello_dhe, t.n);
    ck_assert_int_eq(t.hello_ems, 0);
}
END_TEST

START_TEST(test_d_buggy_server_vs_emsguard_client)
{
    const char *label = "d) buggy server vs emsguard client without EMS";
    SSL_CTX *sctx = dhe_buggy_ctx(1);
    SSL_CTX *cctx = with_policy(stock_client(DHE_BUGGY_CIPHERS),
        EMSGUARD_DISABLE_CLIENT_EMS, "1", NULL);
    tally t;

    ck_assert_msg(run(label, sctx, cctx, n_handshakes, &t), SETUP_FAILED, label);
    expect_no_dhe(label, &t);
    /* The client role without EMS dropped TLS_DHE_* from its offer. */
    ck_assert_int_eq(t.hello_ems, 0);
    ck_assert_msg(t.hello_dhe == 0, "%s: %d ClientHellos offered DHE", label,
        t.hello_dhe);
}
END_TEST

START_TEST(test_e1_toggle_off_server)
{
    const char *label = "e1) buggy client vs emsguard server, " DISABLE_DHE_NO_EMS "=0";
    SSL_CTX *sctx = with_policy(stock_server(), DISABLE_DHE_NO_EMS, "0", NULL);
    SSL_CTX *cctx = dhe_buggy_ctx(0);
    tally t;

    ck_assert_msg(run(label, sctx, cctx, n_handshakes, &t), SETUP_FAILED, label);
    expect_bug(label, &t);
}
END_TEST

START_TEST(test_e2_toggle_off_client)
{
    const char *label = "e2) buggy server vs emsguard client without EMS, "
        DISABLE_DHE_NO_EMS "=0";
    SSL_CTX *sctx = dhe_buggy_ctx(1);
    SSL_CTX *cctx = with_policy(stock_client(DHE_BUGGY_CIPHERS),
        EMSGUARD_DISABLE_CLIENT_EMS, "1", DISABLE_DHE_NO_EMS, "0", NULL);
    tally t;

    ck_assert_msg(run(label, sctx, cctx, n_handshakes, &t), SETUP_FAILED, label);
    expect_bug(label, &t);
    ck_assert_int_eq(t.hello_dhe, t.n);
    ck_assert_int_eq(t.hello_ems, 0);
}
END_TEST

/* A legacy client that knows only DHE (and no EMS) must still get in. */
START_TEST(test_f_dhe_only_client_vs_emsguard_server)
{
    const char *label = "f) DHE-only client without EMS vs emsguard server";
    SSL_CTX *sctx = with_policy(stock_server(), NULL);
    SSL_CTX *cctx = stock_client("DHE-RSA-AES128-GCM-SHA256");
    tally t;

    if (cctx != NULL) {
        SSL_CTX_set_options(cctx, SSL_OP_NO_EXTENDED_MASTER_SECRET);
        if (!SSL_CTX_set_max_proto_version(cctx, TLS1_2_VERSION)) {
            SSL_CTX_free(cctx);
            cctx = NULL;
        }
    }
    ck_assert_msg(run(label, sctx, cctx, LEGACY_HANDSHAKES, &t), SETUP_FAILED, label);
    ck_assert_msg(t.failures == 0, "%s: %d failures", label, t.failures);
    ck_assert_msg(t.dhe == t.n, "%s: DHE chosen in %d of %d", label, t.dhe, t.n);
    ck_assert_int_eq(t.hello_ems, 0);
}
END_TEST

static Suite *dhe_suite(void)
{
    Suite *s = suite_create("check_dhe");
    TCase *tc = tcase_create("bug");

    tcase_add_test(tc, test_a_buggy_client_vs_stock_server);
    tcase_add_test(tc, test_b_buggy_server_vs_stock_client);
    tcase_add_test(tc, test_observe_mode_is_harmless);
    suite_add_tcase(s, tc);

    tc = tcase_create("mitigation");
    tcase_add_test(tc, test_c_buggy_client_vs_emsguard_server);
    tcase_add_test(tc, test_d_buggy_server_vs_emsguard_client);
    tcase_add_test(tc, test_e1_toggle_off_server);
    tcase_add_test(tc, test_e2_toggle_off_client);
    tcase_add_test(tc, test_f_dhe_only_client_vs_emsguard_server);
    suite_add_tcase(s, tc);
    return s;
}

/* EMSGUARD_DHE_HANDSHAKES: a number >= MIN_HANDSHAKES, else an error. */
static int read_handshake_count(void)
{
    const char *env = getenv("EMSGUARD_DHE_HANDSHAKES");
    char *end;
    long n;

    if (env == NULL || *env == '\0')
        return 1;
    n = strtol(env, &end, 10);
    if (*end != '\0' || n < MIN_HANDSHAKES || n > 1000000) {
        fprintf(stderr, "check_dhe: EMSGUARD_DHE_HANDSHAKES=%s: need a number "
                        "from %d to 1000000\n", env, MIN_HANDSHAKES);
        return 0;
    }
    n_handshakes = (int)n;
    return 1;
}

int main(void)
{
    SRunner *sr;
    int failed;

    if (!read_handshake_count())
        return EXIT_FAILURE;
    if (!dhe_buggy_init() || !dhe_rsa_credentials(NULL, 1024, &rsa_key, &rsa_cert)) {
        fprintf(stderr, "check_dhe: the buggy peer or the test certificate "
                        "could not be set up\n");
        ERR_print_errors_fp(stderr);
        dhe_buggy_cleanup();
        return EXIT_FAILURE;
    }
    sr = srunner_create(dhe_suite());
    /* One process: leak checking sees everything; counters are global. */
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    X509_free(rsa_cert);
    EVP_PKEY_free(rsa_key);
    dhe_buggy_cleanup();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
