/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The application's callbacks read back on an SSL_CTX with the policy
 * (issue 15, attack finding N3), in memory.
 *
 * emsguard installs its own new-session, get-session and info callbacks and
 * calls the application's from them, so OpenSSL's getters
 * (SSL_CTX_sess_get_new_cb(), SSL_CTX_sess_get_get_cb(),
 * SSL_CTX_get_info_callback(), SSL_get_info_callback()) return emsguard's.
 * An application that chains -- prev = get(); set(mine); mine() calls prev
 * -- then calls emsguard's, not its previous callback.  The EMSGUARD_*
 * getters return what the application set (what OpenSSL's getters would
 * return without emsguard), and libemsguard-preload.so answers OpenSSL's
 * getters with them (test/preload_static.sh, chain_getters).
 *
 * Checked here: the getters on an enabled ctx and SSL (nothing set, set
 * before enable, set after with the EMSGUARD_* setters, NULL again, replaced
 * by a plain libssl setter), on a ctx without the policy and NULL; and the
 * chain done twice with the EMSGUARD_* getters and setters over real
 * handshakes: every callback sees every event exactly once, no recursion,
 * and the chained external session cache still resumes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include "emsguard.h"
#include "harness.h"
#include "harness_check.h"

typedef void (*info_fn)(const SSL *, int, int);
typedef int (*new_fn)(SSL *, SSL_SESSION *);
typedef SSL_SESSION *(*get_fn)(SSL *, const unsigned char *, int, int *);

static void enable_quiet(SSL_CTX *ctx)
{
    EMSGUARD_POLICY *policy = EMSGUARD_POLICY_new();

    ck_assert_ptr_nonnull(policy);
    ck_assert_int_eq(EMSGUARD_POLICY_set(policy, EMSGUARD_EVENT_LOGGING, "0"), 1);
    ck_assert_int_eq(EMSGUARD_enable_policy(ctx, policy), 1);
    EMSGUARD_POLICY_free(policy);
}

/* ---- callbacks that only count ------------------------------------------ */

static void info_a(const SSL *s, int w, int r)
{
    (void)s;
    (void)w;
    (void)r;
}

static void info_b(const SSL *s, int w, int r)
{
    (void)s;
    (void)w;
    (void)r;
}

static int new_a(SSL *s, SSL_SESSION *sess)
{
    (void)s;
    (void)sess;
    return 0;
}

static SSL_SESSION *get_a(SSL *s, const unsigned char *id, int len, int *copy)
{
    (void)s;
    (void)id;
    (void)len;
    (void)copy;
    return NULL;
}

/* ---- the chain: outer calls prev, which must be the inner one ------------ */

enum { CH_SRV_INFO, CH_CLI_INFO, CH_SSL_INFO, CH_NEW, CH_GET, CH_N };

static struct {
    int outer, inner, outer_active, inner_active;
    int outer_starts, inner_starts;
} ch[CH_N];
static int recursion, unchained;
static info_fn info_prev_inner[CH_N], info_prev_outer[CH_N];
static new_fn new_prev_outer;
static get_fn get_prev_outer;

static void reset_chain(void)
{
    memset(ch, 0, sizeof(ch));
    recursion = unchained = 0;
    memset(info_prev_inner, 0, sizeof(info_prev_inner));
    memset(info_prev_outer, 0, sizeof(info_prev_outer));
    new_prev_outer = NULL;
    get_prev_outer = NULL;
}

static void enter(int c, int outer)
{
    if (outer) {
        if (ch[c].outer_active++ > 0)
            recursion++;
        ch[c].outer++;
    } else {
        if (ch[c].inner_active++ > 0)
            recursion++;
        if (ch[c].outer_active != 1)
            unchained++;
        ch[c].inner++;
    }
}

static void leave(int c, int outer)
{
    if (outer)
        ch[c].outer_active--;
    else
        ch[c].inner_active--;
}

#define INFO_CHAIN(c)                                                 \
    static void inner_##c(const SSL *s, int w, int r)                 \
    {                                                                 \
        enter(c, 0);                                                  \
        ch[c].inner_starts += (w & SSL_CB_HANDSHAKE_START) != 0;      \
        if (info_prev_inner[c] != NULL)                               \
            info_prev_inner[c](s, w, r);                              \
        leave(c, 0);                                                  \
    }                                                                 \
    static void outer_##c(const SSL *s, int w, int r)                 \
    {                                                                 \
        enter(c, 1);                                                  \
        ch[c].outer_starts += (w & SSL_CB_HANDSHAKE_START) != 0;      \
        if (info_prev_outer[c] != NULL)                               \
            info_prev_outer[c](s, w, r);                              \
        leave(c, 1);                                                  \
    }
INFO_CHAIN(CH_SRV_INFO)
INFO_CHAIN(CH_CLI_INFO)
INFO_CHAIN(CH_SSL_INFO)

/* Around the harness's external cache (set before EMSGUARD_enable). */
static int outer_new(SSL *s, SSL_SESSION *sess)
{
    int kept = 0;

    enter(CH_NEW, 1);
    if (new_prev_outer != NULL)
        kept = new_prev_outer(s, sess);
    leave(CH_NEW, 1);
    return kept;
}

static SSL_SESSION *outer_get(SSL *s, const unsigned char *id, int len, int *copy)
{
    SSL_SESSION *found = NULL;

    enter(CH_GET, 1);
    if (get_prev_outer != NULL)
        found = get_prev_outer(s, id, len, copy);
    leave(CH_GET, 1);
    return found;
}

static void assert_chain(int c, int min_calls)
{
    ck_assert_msg(ch[c].outer >= min_calls, "chain %d: outer called %d times, want >= %d",
        c, ch[c].outer, min_calls);
    ck_assert_msg(ch[c].inner == ch[c].outer,
        "chain %d: inner called %d times, outer %d: each event must reach both once",
        c, ch[c].inner, ch[c].outer);
    ck_assert_int_eq(ch[c].inner_starts, ch[c].outer_starts);
}

/* ---- tests ---------------------------------------------------------------- */

/* Nothing set by the application: NULL, although libssl holds emsguard's. */
START_TEST(test_enabled_nothing_set)
{
    SSL_CTX *ctx = hs_server_ctx(HS_MECH_SESSION_ID, 0);
    SSL *ssl;

    ck_assert_ptr_nonnull(ctx);
    enable_quiet(ctx);
    ck_assert_ptr_nonnull(SSL_CTX_get_info_callback(ctx)); /* emsguard's */
    ck_assert_ptr_nonnull(SSL_CTX_sess_get_new_cb(ctx));
    ck_assert_ptr_null(EMSGUARD_CTX_get_info_callback(ctx));
    ck_assert_ptr_null(EMSGUARD_CTX_sess_get_new_cb(ctx));
    ck_assert_ptr_null(EMSGUARD_CTX_sess_get_get_cb(ctx));
    ssl = SSL_new(ctx);
    ck_assert_ptr_nonnull(ssl);
    ck_assert_ptr_null(EMSGUARD_get_info_callback(ssl));
    SSL_free(ssl);
    SSL_CTX_free(ctx);
}
END_TEST

/* Set before EMSGUARD_enable(): emsguard chains them, the getters say so. */
START_TEST(test_enabled_set_before)
{
    SSL_CTX *ctx = hs_server_ctx(HS_MECH_EXT_CACHE, 0);
    new_fn harness_new = SSL_CTX_sess_get_new_cb(ctx);
    get_fn harness_get = SSL_CTX_sess_get_get_cb(ctx);

    ck_assert_ptr_nonnull(harness_new);
    ck_assert_ptr_nonnull(harness_get);
    SSL_CTX_set_info_callback(ctx, info_a);
    enable_quiet(ctx);
    ck_assert_ptr_ne(SSL_CTX_sess_get_new_cb(ctx), harness_new);
    ck_assert_ptr_eq(EMSGUARD_CTX_sess_get_new_cb(ctx), harness_new);
    ck_assert_ptr_eq(EMSGUARD_CTX_sess_get_get_cb(ctx), harness_get);
    ck_assert_ptr_eq(EMSGUARD_CTX_get_info_callback(ctx), info_a);
    SSL_CTX_free(ctx);
}
END_TEST

/* The EMSGUARD_* setters, then NULL again. */
START_TEST(test_enabled_set_after)
{
    SSL_CTX *ctx = hs_server_ctx(HS_MECH_SESSION_ID, 0);
    SSL *ssl;

    enable_quiet(ctx);
    ck_assert_int_eq(EMSGUARD_CTX_set_info_callback(ctx, info_a), 1);
    ck_assert_int_eq(EMSGUARD_CTX_sess_set_new_cb(ctx, new_a), 1);
    ck_assert_int_eq(EMSGUARD_CTX_sess_set_get_cb(ctx, get_a), 1);
    ck_assert_ptr_eq(EMSGUARD_CTX_get_info_callback(ctx), info_a);
    ck_assert_ptr_eq(EMSGUARD_CTX_sess_get_new_cb(ctx), new_a);
    ck_assert_ptr_eq(EMSGUARD_CTX_sess_get_get_cb(ctx), get_a);
    ck_assert_ptr_ne(SSL_CTX_get_info_callback(ctx), info_a); /* emsguard's stays */

    ssl = SSL_new(ctx);
    ck_assert_ptr_nonnull(ssl);
    ck_assert_int_eq(EMSGUARD_set_info_callback(ssl, info_b), 1);
    ck_assert_ptr_eq(EMSGUARD_get_info_callback(ssl), info_b);
    ck_assert_ptr_ne(SSL_get_info_callback(ssl), info_b);
    /* The per-SSL one does not change the ctx's, nor the reverse. */
    ck_assert_ptr_eq(EMSGUARD_CTX_get_info_callback(ctx), info_a);
    ck_assert_int_eq(EMSGUARD_set_info_callback(ssl, NULL), 1);
    ck_assert_ptr_null(EMSGUARD_get_info_callback(ssl));
    SSL_free(ssl);

    ck_assert_int_eq(EMSGUARD_CTX_set_info_callback(ctx, NULL), 1);
    ck_assert_int_eq(EMSGUARD_CTX_sess_set_new_cb(ctx, NULL), 1);
    ck_assert_int_eq(EMSGUARD_CTX_sess_set_get_cb(ctx, NULL), 1);
    ck_assert_ptr_null(EMSGUARD_CTX_get_info_callback(ctx));
    ck_assert_ptr_null(EMSGUARD_CTX_sess_get_new_cb(ctx));
    ck_assert_ptr_null(EMSGUARD_CTX_sess_get_get_cb(ctx));
    SSL_CTX_free(ctx);
}
END_TEST

/*
 * A plain libssl setter after enable replaces emsguard's callback (the
 * documented way to lose the policy's): the getters then report what libssl
 * calls, as OpenSSL's do.
 */
START_TEST(test_enabled_replaced_by_plain_setter)
{
    SSL_CTX *ctx = hs_server_ctx(HS_MECH_SESSION_ID, 0);
    SSL *ssl;

    enable_quiet(ctx);
    ck_assert_int_eq(EMSGUARD_CTX_set_info_callback(ctx, info_a), 1);
    SSL_CTX_set_info_callback(ctx, info_b);
    SSL_CTX_sess_set_new_cb(ctx, new_a);
    SSL_CTX_sess_set_get_cb(ctx, get_a);
    ck_assert_ptr_eq(EMSGUARD_CTX_get_info_callback(ctx), info_b);
    ck_assert_ptr_eq(EMSGUARD_CTX_sess_get_new_cb(ctx), new_a);
    ck_assert_ptr_eq(EMSGUARD_CTX_sess_get_get_cb(ctx), get_a);
    ssl = SSL_new(ctx);
    ck_assert_ptr_nonnull(ssl);
    SSL_set_info_callback(ssl, info_a);
    ck_assert_ptr_eq(EMSGUARD_get_info_callback(ssl), info_a);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
}
END_TEST

/* Without the policy they are OpenSSL's getters; NULL gives NULL. */
START_TEST(test_not_enabled_and_null)
{
    SSL_CTX *ctx = hs_server_ctx(HS_MECH_SESSION_ID, 0);
    SSL *ssl;

    ck_assert_ptr_null(EMSGUARD_CTX_get_info_callback(ctx));
    SSL_CTX_set_info_callback(ctx, info_a);
    SSL_CTX_sess_set_new_cb(ctx, new_a);
    SSL_CTX_sess_set_get_cb(ctx, get_a);
    ck_assert_ptr_eq(EMSGUARD_CTX_get_info_callback(ctx), info_a);
    ck_assert_ptr_eq(EMSGUARD_CTX_sess_get_new_cb(ctx), new_a);
    ck_assert_ptr_eq(EMSGUARD_CTX_sess_get_get_cb(ctx), get_a);
    ssl = SSL_new(ctx);
    ck_assert_ptr_null(EMSGUARD_get_info_callback(ssl));
    SSL_set_info_callback(ssl, info_b);
    ck_assert_ptr_eq(EMSGUARD_get_info_callback(ssl), info_b);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    ck_assert_ptr_null(EMSGUARD_CTX_get_info_callback(NULL));
    ck_assert_ptr_null(EMSGUARD_CTX_sess_get_new_cb(NULL));
    ck_assert_ptr_null(EMSGUARD_CTX_sess_get_get_cb(NULL));
    ck_assert_ptr_null(EMSGUARD_get_info_callback(NULL));
    ERR_clear_error();
}
END_TEST

/*
 * The chain, done twice per callback with the EMSGUARD_* getters and
 * setters, over a full handshake and a resumption through the harness's
 * external cache (chained behind outer_new/outer_get).
 */
START_TEST(test_chain_twice)
{
    SSL_CTX *sctx = hs_server_ctx(HS_MECH_EXT_CACHE, 0);
    SSL_CTX *cctx = hs_client_ctx(0);
    SSL *c, *s;
    hs_result r1, r2;

    hs_ext_cache_reset();
    reset_chain();
    enable_quiet(sctx);
    enable_quiet(cctx);

    info_prev_inner[CH_SRV_INFO] = EMSGUARD_CTX_get_info_callback(sctx);
    ck_assert_int_eq(EMSGUARD_CTX_set_info_callback(sctx, inner_CH_SRV_INFO), 1);
    info_prev_outer[CH_SRV_INFO] = EMSGUARD_CTX_get_info_callback(sctx);
    ck_assert_int_eq(EMSGUARD_CTX_set_info_callback(sctx, outer_CH_SRV_INFO), 1);
    ck_assert_ptr_eq(info_prev_outer[CH_SRV_INFO], inner_CH_SRV_INFO);

    info_prev_inner[CH_CLI_INFO] = EMSGUARD_CTX_get_info_callback(cctx);
    ck_assert_int_eq(EMSGUARD_CTX_set_info_callback(cctx, inner_CH_CLI_INFO), 1);
    info_prev_outer[CH_CLI_INFO] = EMSGUARD_CTX_get_info_callback(cctx);
    ck_assert_int_eq(EMSGUARD_CTX_set_info_callback(cctx, outer_CH_CLI_INFO), 1);

    new_prev_outer = EMSGUARD_CTX_sess_get_new_cb(sctx);
    ck_assert_int_eq(EMSGUARD_CTX_sess_set_new_cb(sctx, outer_new), 1);
    get_prev_outer = EMSGUARD_CTX_sess_get_get_cb(sctx);
    ck_assert_int_eq(EMSGUARD_CTX_sess_set_get_cb(sctx, outer_get), 1);

    ck_assert_int_eq(hs_handshake(sctx, cctx, NULL, &r1), 1);
    ck_assert_int_eq(r1.ems, 1);
    ck_assert_int_eq(hs_ext_cache_new_calls(), 1); /* reached through outer_new */
    ck_assert_int_eq(ch[CH_NEW].outer, 1);
    ck_assert_int_eq(hs_handshake(sctx, cctx, r1.session, &r2), 1);
    ck_assert_int_eq(r2.reused, 1); /* the cache answered through outer_get */
    ck_assert_int_eq(hs_ext_cache_get_calls(), 1);
    ck_assert_int_eq(ch[CH_GET].outer, 1);
    assert_chain(CH_SRV_INFO, 10);
    assert_chain(CH_CLI_INFO, 10);
    ck_assert_int_eq(ch[CH_SRV_INFO].outer_starts, 2);
    ck_assert_int_eq(ch[CH_CLI_INFO].outer_starts, 2);
    hs_result_clear(&r1);
    hs_result_clear(&r2);

    /* Per SSL: the server SSL's chain replaces the ctx's for it. */
    c = SSL_new(cctx);
    s = SSL_new(sctx);
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_nonnull(s);
    info_prev_inner[CH_SSL_INFO] = EMSGUARD_get_info_callback(s);
    ck_assert_ptr_null(info_prev_inner[CH_SSL_INFO]);
    ck_assert_int_eq(EMSGUARD_set_info_callback(s, inner_CH_SSL_INFO), 1);
    info_prev_outer[CH_SSL_INFO] = EMSGUARD_get_info_callback(s);
    ck_assert_ptr_eq(info_prev_outer[CH_SSL_INFO], inner_CH_SSL_INFO);
    ck_assert_int_eq(EMSGUARD_set_info_callback(s, outer_CH_SSL_INFO), 1);
    ch[CH_SRV_INFO].outer = ch[CH_SRV_INFO].inner = 0;
    ck_assert_int_eq(hs_connect(c, s), 1);
    assert_chain(CH_SSL_INFO, 10);
    ck_assert_int_eq(ch[CH_SSL_INFO].outer_starts, 1);
    ck_assert_int_eq(ch[CH_SRV_INFO].outer, 0);
    ck_assert_int_eq(recursion, 0);
    ck_assert_int_eq(unchained, 0);
    SSL_free(c);
    SSL_free(s);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    hs_ext_cache_reset();
}
END_TEST

static Suite *getters_suite(void)
{
    Suite *s = suite_create("getters");
    TCase *tc = tcase_create("getters");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_enabled_nothing_set);
    tcase_add_test(tc, test_enabled_set_before);
    tcase_add_test(tc, test_enabled_set_after);
    tcase_add_test(tc, test_enabled_replaced_by_plain_setter);
    tcase_add_test(tc, test_not_enabled_and_null);
    tcase_add_test(tc, test_chain_twice);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return hs_run_suite(getters_suite);
}
