/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Regression tests of the per-handshake fast paths (bench/README.md, issue 21):
 *  - a client's EMS bit read at the SSL_CB_CONNECT_EXIT after "done"
 *    (CONN_EMS_AT_EXIT), its fallback at the next handshake start, and a
 *    handshake driven by SSL_write() or over DTLS;
 *  - the security callbacks that pass straight to libssl's
 *    (eg_security_cb_plain): one copied by the application from a ctx
 *    without a Schannel filter onto a ctx with one.
 * Each test runs in its own child (the process-wide flags the plain
 * callbacks read start clear in every test).
 */
#include <string.h>
#include <check.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include "emsguard.h"
#include "harness.h"
#include "harness_check.h"

#define DH_CLIENT_MIN "KeyExchangeAlgorithms\\Diffie-Hellman\\ClientMinKeyBitLength"
#define MAX_STEPS 200

typedef int (*security_fn)(const SSL *, const SSL_CTX *, int, int, int, void *, void *);

static const char *const aes128_off[] = { "Ciphers\\AES 128/128\\Enabled", "0", NULL };
static const char *const dh_min[] = { DH_CLIENT_MIN, "2048", NULL };

/*
 * A server ctx whose policy has AES 128 off (a Schannel filter), its list
 * widened after enable; |template_cb|, when set, is put on it afterwards
 * with libssl's plain setter (an application copying the security callback
 * of a template ctx, API route: no preload hides emsguard's callback).
 */
static SSL_CTX *filtered_server(security_fn template_cb)
{
    SSL_CTX *b = hs_enabled(hs_server_ctx(HS_MECH_SESSION_ID, 0), aes128_off);

    ck_assert_int_eq(SSL_CTX_set_cipher_list(b, "ALL"), 1);
    if (template_cb != NULL)
        SSL_CTX_set_security_callback(b, template_cb);
    return b;
}

START_TEST(test_copied_plain_callback_keeps_suite_filter)
{
    /* A: a policy that needs a security callback, no filter: emsguard's plain one. */
    SSL_CTX *a = hs_enabled(hs_server_ctx(HS_MECH_SESSION_ID, 0), dh_min);
    SSL_CTX *cli = hs_client12("ECDHE-ECDSA-AES128-GCM-SHA256");
    security_fn from_a = SSL_CTX_get_security_callback(a);
    SSL_CTX *control = filtered_server(NULL);
    SSL_CTX *b;

    /* Control: B's own callback refuses AES 128. */
    ck_assert_str_eq(hs_negotiated_suite(control, cli), "");
    /*
     * emsguard's callback from A on B (before the plain callbacks, the same
     * function B had): B's policy must still hold.
     */
    b = filtered_server(from_a);
    ck_assert_msg(hs_same_object(SSL_CTX_get_security_callback(b), from_a), "not emsguard's");
    ck_assert_str_eq(hs_negotiated_suite(b, cli), "");
    SSL_CTX_free(a);
    SSL_CTX_free(b);
    SSL_CTX_free(control);
    SSL_CTX_free(cli);
}
END_TEST

/* ---- the client's EMS bit at the exit --------------------------------------- */

/* Drives a client SSL with SSL_write() (no SSL_connect) against |server|. */
static int write_driven(SSL *client, SSL *server)
{
    BIO *cb, *sb;
    int i, c = -1, s = 0;

    ck_assert_int_eq(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
    SSL_set_bio(client, cb, cb);
    SSL_set_bio(server, sb, sb);
    SSL_set_connect_state(client);
    SSL_set_accept_state(server);
    for (i = 0; i < MAX_STEPS; i++) {
        c = SSL_write(client, "x", 1);
        if (c <= 0 && SSL_get_error(client, c) != SSL_ERROR_WANT_READ)
            return 0;
        s = hs_step(server);
        if (s < 0)
            return 0;
        if (c == 1 && s == 1)
            return 1;
    }
    return 0;
}

START_TEST(test_write_driven_client_counts_and_withholds)
{
    SSL_CTX *legacy = hs_server(HS_MECH_SESSION_ID, HS_NO_EMS), *cli = hs_policy_client(0);
    SSL *c = SSL_new(cli), *s = SSL_new(legacy);
    SSL_SESSION *sess;
    hs_result r;

    ck_assert(c != NULL && s != NULL);
    ck_assert_int_eq(write_driven(c, s), 1);
    ck_assert_int_eq(SSL_get_extms_support(c), 0);
    ck_assert_uint_eq(hs_counter(cli, EMSGUARD_CNT_FULL_HANDSHAKES), 1);
    ck_assert_uint_eq(hs_counter(cli, EMSGUARD_CNT_FULL_WITHOUT_EMS), 1);
    ck_assert_ptr_nonnull(sess = SSL_get1_session(c));
    ck_assert_int_eq(hs_session_ems(sess), 0);
    SSL_shutdown(c);
    SSL_shutdown(s);
    SSL_free(c);
    SSL_free(s);
    /* The very session object is not offered (the peer memo says non-EMS). */
    ck_assert_int_eq(SSL_set_session(c = SSL_new(cli), sess), 1);
    s = SSL_new(legacy);
    ck_assert_int_eq(hs_connect(c, s), 1);
    ck_assert_int_eq(SSL_session_reused(c), 0);
    ck_assert_uint_eq(hs_counter(cli, EMSGUARD_CNT_REFUSED_NO_EMS), 1);
    SSL_free(c);
    SSL_free(s);
    /* And a copy is not either. */
    hs_handshake(legacy, cli, sess, &r);
    ck_assert_int_eq(r.hello_offered, 0);
    hs_result_clear(&r);
    ck_assert_uint_eq(hs_counter(cli, EMSGUARD_CNT_FULL_WITHOUT_EMS), 3);
    SSL_SESSION_free(sess);
    SSL_CTX_free(legacy);
    SSL_CTX_free(cli);
}
END_TEST

/* An EMS session stays "EMS" and is offered and resumed. */
START_TEST(test_ems_session_noted_at_exit_resumes)
{
    SSL_CTX *srv = hs_server(HS_MECH_SESSION_ID, 0), *cli = hs_policy_client(0);
    SSL_SESSION *sess = hs_new_session(srv, cli);
    hs_result r;

    ck_assert_uint_eq(hs_counter(cli, EMSGUARD_CNT_FULL_WITHOUT_EMS), 0);
    ck_assert_int_eq(hs_session_ems(sess), 1);
    hs_handshake(srv, cli, sess, &r);
    hs_assert_resumed(&r);
    hs_result_clear(&r);
    ck_assert_uint_eq(hs_counter(cli, EMSGUARD_CNT_RESUMPTIONS), 1);
    SSL_SESSION_free(sess);
    SSL_CTX_free(srv);
    SSL_CTX_free(cli);
}
END_TEST

/*
 * The exit never reaches emsguard: the application's per-SSL info callback
 * (libssl's own setter) passes every event but SSL_CB_CONNECT_EXIT on to
 * the ctx's.  The next handshake's start settles the first one, SSL_free()
 * the last.
 */
static void (*ctx_info)(const SSL *, int, int);

static void no_exits(const SSL *ssl, int where, int ret)
{
    if (where != SSL_CB_CONNECT_EXIT && ctx_info != NULL)
        ctx_info(ssl, where, ret);
}

static int quiet(SSL *c, SSL *s)
{
    return !SSL_in_init(c) && !SSL_in_init(s) && !SSL_renegotiate_pending(c)
        && !SSL_renegotiate_pending(s) && BIO_ctrl_pending(SSL_get_rbio(c)) == 0
        && BIO_ctrl_pending(SSL_get_rbio(s)) == 0;
}

START_TEST(test_exit_missing_settled_at_next_start)
{
    SSL_CTX *legacy = hs_server(HS_MECH_SESSION_ID, HS_NO_EMS), *cli = hs_policy_client(0);
    SSL *c, *s;
    int i, rc = 0, rs = 0, r;

    SSL_CTX_set_options(legacy, SSL_OP_ALLOW_CLIENT_RENEGOTIATION);
    ctx_info = SSL_CTX_get_info_callback(cli);
    ck_assert_ptr_nonnull(ctx_info);
    c = SSL_new(cli);
    s = SSL_new(legacy);
    SSL_set_info_callback(c, no_exits);
    ck_assert_int_eq(hs_connect(c, s), 1);
    ck_assert_uint_eq(hs_counter(cli, EMSGUARD_CNT_FULL_HANDSHAKES), 1);
    /* Not yet: waiting for an exit that does not come. */
    ck_assert_uint_eq(hs_counter(cli, EMSGUARD_CNT_FULL_WITHOUT_EMS), 0);
    /* A full renegotiation by the client: its start settles the first handshake. */
    ck_assert_int_eq(SSL_renegotiate(c), 1);
    r = SSL_do_handshake(c);
    ck_assert(r == 1 || SSL_get_error(c, r) == SSL_ERROR_WANT_READ);
    ck_assert_uint_eq(hs_counter(cli, EMSGUARD_CNT_FULL_WITHOUT_EMS), 1);
    for (i = 0; i < MAX_STEPS; i++) {
        rc = hs_io_step(c);
        rs = hs_io_step(s);
        if (rc < 0 || rs < 0 || quiet(c, s))
            break;
    }
    ck_assert(rc >= 0 && rs >= 0 && quiet(c, s));
    ck_assert_uint_eq(hs_counter(cli, EMSGUARD_CNT_FULL_HANDSHAKES), 2);
    /* The renegotiation's own bit still waits, until the SSL is freed. */
    ck_assert_uint_eq(hs_counter(cli, EMSGUARD_CNT_FULL_WITHOUT_EMS), 1);
    SSL_free(c);
    ck_assert_uint_eq(hs_counter(cli, EMSGUARD_CNT_FULL_WITHOUT_EMS), 2);
    SSL_free(s);
    ERR_clear_error();
    SSL_CTX_free(legacy);
    SSL_CTX_free(cli);
}
END_TEST

static Suite *fast_paths_suite(void)
{
    Suite *s = suite_create("fast-paths");
    TCase *tc = tcase_create("plain_security");

    tcase_add_test(tc, test_copied_plain_callback_keeps_suite_filter);
    suite_add_tcase(s, tc);
    tc = tcase_create("ems_at_exit");
    tcase_add_test(tc, test_write_driven_client_counts_and_withholds);
    tcase_add_test(tc, test_ems_session_noted_at_exit_resumes);
    tcase_add_test(tc, test_exit_missing_settled_at_next_start);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return hs_run_suite_forked(fast_paths_suite);
}
