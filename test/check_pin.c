/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The TLS 1.3 pin of a RequireExtendedMasterSecret=1 server never lowers a
 * minimum version the application set (issue 15, round 2: R5), in-memory
 * client/server pairs.
 *
 * A ClientHello without EMS that lists TLS 1.3 and lower gets TLS 1.3 as
 * the SSL's minimum version for that handshake (hooks_hello.c pin_tls13).
 * The minimum it replaced used to come back at the SSL's next ClientHello
 * unless the minimum was no longer TLS 1.3 -- which cannot tell the pin from
 * an application that set TLS 1.3 itself on the SSL reused after
 * SSL_clear(): its floor was lowered and a TLS 1.2 client connected.  Now
 * the minimum comes back when the pinned handshake ends (done, or a fatal
 * alert), and a pinned handshake abandoned without either leaves TLS 1.3
 * in place (the safe direction).  A HelloRetryRequest's second ClientHello
 * stays pinned.
 *
 *   BUILD=build build/test/check_pin
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include "emsguard.h"
#include "harness.h"
#include "harness_check.h"

static SSL_CTX *require_server(void)
{
    SSL_CTX *ctx = hs_server_ctx(HS_MECH_SESSION_ID, HS_TLS13);
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();

    ck_assert_ptr_nonnull(ctx);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(EMSGUARD_POLICY_set(p, EMSGUARD_EVENT_LOGGING, "0"), 1);
    ck_assert_int_eq(EMSGUARD_POLICY_set(p, EMSGUARD_REQUIRE_EMS, "1"), 1);
    ck_assert_int_eq(EMSGUARD_enable_policy(ctx, p), 1);
    EMSGUARD_POLICY_free(p);
    return ctx;
}

/* A connection of a new |cctx| client to the server SSL |s|; its version or 0. */
static int connect_to(SSL *s, SSL_CTX *cctx)
{
    SSL *c = SSL_new(cctx);
    int version = 0;

    ck_assert_ptr_nonnull(c);
    if (hs_connect(c, s)) {
        version = SSL_version(c);
        SSL_shutdown(c);
        SSL_shutdown(s);
    }
    SSL_free(c);
    ERR_clear_error();
    return version;
}

/*
 * SSL_clear() and the application's own TLS 1.3 minimum: it stands, so a
 * TLS 1.2 client does not connect (emsguard never lowers an application's
 * floor after a pin).
 */
static void expect_app_tls13_floor_stands(SSL *s, SSL_CTX *c12)
{
    ck_assert_int_eq(SSL_clear(s), 1);
    ck_assert_int_eq(SSL_set_min_proto_version(s, TLS1_3_VERSION), 1);
    ck_assert_msg(connect_to(s, c12) == 0,
        "a TLS 1.2 client connected: emsguard lowered the application's TLS 1.3 minimum");
    ck_assert_int_eq(SSL_get_min_proto_version(s), TLS1_3_VERSION);
}

static void free_ctxs(SSL_CTX *sctx, SSL_CTX *c13noems, SSL_CTX *c12)
{
    SSL_CTX_free(c12);
    SSL_CTX_free(c13noems);
    SSL_CTX_free(sctx);
}

/* The reproducer: the application's own TLS 1.3 floor on the cleared SSL. */
START_TEST(test_app_min_after_clear_stands)
{
    SSL_CTX *sctx = require_server();
    SSL_CTX *c13noems = hs_client(HS_TLS13 | HS_NO_EMS), *c12 = hs_client(0);
    SSL *s = SSL_new(sctx);

    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(connect_to(s, c13noems), TLS1_3_VERSION); /* pinned */
    expect_app_tls13_floor_stands(s, c12);
    SSL_free(s);
    free_ctxs(sctx, c13noems, c12);
}
END_TEST

/* The minimum is back as soon as the pinned handshake is done. */
START_TEST(test_pin_undone_when_handshake_done)
{
    SSL_CTX *sctx = require_server();
    SSL_CTX *c13noems = hs_client(HS_TLS13 | HS_NO_EMS), *c12 = hs_client(0);
    SSL *s = SSL_new(sctx);

    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(SSL_set_min_proto_version(s, TLS1_2_VERSION), 1);
    ck_assert_int_eq(connect_to(s, c13noems), TLS1_3_VERSION);
    ck_assert_int_eq(SSL_get_min_proto_version(s), TLS1_2_VERSION);
    /* Reused: an EMS client on TLS 1.2 is welcome, nothing of the pin lasts. */
    ck_assert_int_eq(SSL_clear(s), 1);
    ck_assert_int_eq(connect_to(s, c12), TLS1_2_VERSION);
    ck_assert_int_eq(SSL_get_min_proto_version(s), TLS1_2_VERSION);
    SSL_free(s);
    free_ctxs(sctx, c13noems, c12);
}
END_TEST

/*
 * A pinned handshake that fails with a fatal alert (no TLS 1.3 cipher suite
 * in common): the minimum is back at once, and the application's later
 * TLS 1.3 floor stands.
 */
START_TEST(test_pin_undone_by_fatal_alert)
{
    SSL_CTX *sctx = require_server();
    SSL_CTX *c13noems = hs_client(HS_TLS13 | HS_NO_EMS), *c12 = hs_client(0);
    SSL *s = SSL_new(sctx);
    long before;

    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(SSL_set_ciphersuites(s, "TLS_AES_256_GCM_SHA384"), 1);
    ck_assert_int_eq(SSL_CTX_set_ciphersuites(c13noems, "TLS_AES_128_GCM_SHA256"), 1);
    ck_assert_int_ne(before = SSL_get_min_proto_version(s), TLS1_3_VERSION);
    ck_assert_int_eq(connect_to(s, c13noems), 0);
    ck_assert_int_eq(SSL_get_min_proto_version(s), before);
    expect_app_tls13_floor_stands(s, c12);
    SSL_free(s);
    free_ctxs(sctx, c13noems, c12);
}
END_TEST

/*
 * A pinned handshake abandoned without an alert or an end (the client
 * vanished after its ClientHello): nothing can tell the pin from a floor
 * the application sets later, so TLS 1.3 stays, whatever the application
 * does next; the application's own settings after SSL_clear() stand.
 */
START_TEST(test_abandoned_pin_never_lowers)
{
    SSL_CTX *sctx = require_server();
    SSL_CTX *c13noems = hs_client(HS_TLS13 | HS_NO_EMS), *c12 = hs_client(0);
    SSL *s = SSL_new(sctx), *c = SSL_new(c13noems);
    BIO *cb = NULL, *sb = NULL;
    char buf[16384];
    int n;

    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(BIO_new_bio_pair(&cb, sizeof(buf), &sb, sizeof(buf)), 1);
    SSL_set_bio(c, cb, cb);
    SSL_set_bio(s, sb, sb);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    ck_assert_int_le(SSL_do_handshake(c), 0); /* ClientHello written */
    ck_assert_int_le(SSL_do_handshake(s), 0); /* pinned; waits for the Finished */
    ck_assert_int_eq(SSL_get_min_proto_version(s), TLS1_3_VERSION);
    /* The client reads nothing more and is gone. */
    while ((n = BIO_read(cb, buf, sizeof(buf))) > 0)
        ;
    SSL_free(c);
    ERR_clear_error();
    expect_app_tls13_floor_stands(s, c12);
    /* The application lowers it itself: that stands too. */
    ck_assert_int_eq(SSL_clear(s), 1);
    ck_assert_int_eq(SSL_set_min_proto_version(s, TLS1_2_VERSION), 1);
    ck_assert_int_eq(connect_to(s, c12), TLS1_2_VERSION);
    SSL_free(s);
    free_ctxs(sctx, c13noems, c12);
}
END_TEST

/*
 * HelloRetryRequest: the key share the client sent is for a group the
 * server does not take, so a second ClientHello follows in the same
 * handshake.  It stays pinned, the handshake ends in TLS 1.3, and only then
 * is the minimum back.
 */
START_TEST(test_hello_retry_stays_pinned)
{
    SSL_CTX *sctx = require_server();
    SSL_CTX *c13noems = hs_client(HS_TLS13 | HS_NO_EMS);
    SSL *s = SSL_new(sctx), *c = SSL_new(c13noems);
    long before;

    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_ne(before = SSL_get_min_proto_version(s), TLS1_3_VERSION);
    ck_assert_int_eq(SSL_set1_groups_list(s, "P-256"), 1);
    ck_assert_int_eq(SSL_set1_groups_list(c, "X25519:P-256"), 1);
    ck_assert_msg(hs_connect(c, s), "the handshake after HelloRetryRequest failed");
    ck_assert_int_eq(SSL_version(s), TLS1_3_VERSION);
    ck_assert_int_eq(SSL_get_negotiated_group(s), NID_X9_62_prime256v1);
    ck_assert_int_eq(SSL_get_min_proto_version(s), before);
    SSL_free(c);
    SSL_free(s);
    SSL_CTX_free(c13noems);
    SSL_CTX_free(sctx);
}
END_TEST

static Suite *pin_suite(void)
{
    Suite *s = suite_create("pin");
    TCase *tc = tcase_create("tls13-pin");

    tcase_add_test(tc, test_app_min_after_clear_stands);
    tcase_add_test(tc, test_pin_undone_when_handshake_done);
    tcase_add_test(tc, test_pin_undone_by_fatal_alert);
    tcase_add_test(tc, test_abandoned_pin_never_lowers);
    tcase_add_test(tc, test_hello_retry_stays_pinned);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return hs_run_suite(pin_suite);
}
