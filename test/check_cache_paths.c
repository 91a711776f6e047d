/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The server-side session cache and the lifetime of the policy state
 * (issue 15: F7, F8, F10, F11), in-memory client/server pairs:
 *
 *  - F7: SSL_set_SSL_CTX() before the handshake, then an SNI switch that
 *    drops the SSL's last reference to the ctx whose state the connection
 *    recorded at handshake start.  The record must keep that state alive.
 *  - F8: an SNI switch from an SSL_CTX without the policy to one with it.
 *    libssl looks the session up (cache, tickets) in the initial context, so
 *    a non-EMS session resumes there; the enabled context must refuse the
 *    connection (no application data, an error, a log line, a counter).  The
 *    reverse (only the initial context enabled) and two enabled contexts
 *    with different policies are pinned too.
 *  - F10: the new session of a handshake that will lack EMS never becomes
 *    findable by another connection (test/race_cache.c races it; here the
 *    lever itself: its own session ID context, and not resumable).
 *  - F11: EMSGUARD_enable() on a context that already served: no earlier
 *    session the policy refuses resumes afterwards, whatever its timeout
 *    and whatever the cache mode says at that moment.
 *
 * Freed memory is overwritten (allocation hooks installed before OpenSSL
 * allocates anything), so a use after free also fails outside ASan.
 *
 *   BUILD=build build/test/check_cache_paths
 */
#include <limits.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <check.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include "emsguard.h"
#include "harness.h"
#include "harness_check.h"

/* ---- freed memory is poisoned and not reused soon ------------------------ */

/*
 * A freed block is overwritten with a pattern that is no valid pointer and
 * kept out of the allocator for the next QUARANTINE frees, so a use after
 * free reads the pattern and crashes instead of reading a reused block.
 * Under ASan the block goes straight to ASan, which reports the use itself.
 */
#define QUARANTINE 4096

static void *quarantine[QUARANTINE];
static size_t quarantine_next;

static void *poison_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return malloc(n);
}

static void *poison_realloc(void *p, size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return realloc(p, n);
}

static void poison_free(void *p, const char *file, int line)
{
    void *oldest;

    (void)file;
    (void)line;
    if (p == NULL)
        return;
#ifdef __SANITIZE_ADDRESS__
    free(p); /* ASan's own quarantine and shadow report the use after free */
    return;
#endif
    memset(p, 0xa5, malloc_usable_size(p));
    /* Single-threaded suite: no lock needed. */
    oldest = quarantine[quarantine_next];
    quarantine[quarantine_next] = p;
    quarantine_next = (quarantine_next + 1) % QUARANTINE;
    free(oldest);
}

/* ---- helpers ---------------------------------------------------------------- */

static void assert_full(const hs_result *r)
{
    ck_assert_msg(r->ok, "handshake failed (server alert %d, client alert %d)",
        r->server_alert, r->client_alert);
    ck_assert_msg(!r->reused && !r->server_reused, "expected a full handshake, got a resumption");
}

/* ---- SNI switching ---------------------------------------------------------- */

/* Servername callback: moves the connection to the SSL_CTX in |arg|. */
static int switch_to_arg(SSL *ssl, int *al, void *arg)
{
    (void)al;
    if (arg != NULL && SSL_set_SSL_CTX(ssl, arg) == NULL)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    return SSL_TLSEXT_ERR_OK;
}

static void switch_on_sni(SSL_CTX *from, SSL_CTX *to)
{
    SSL_CTX_set_tlsext_servername_callback(from, switch_to_arg);
    SSL_CTX_set_tlsext_servername_arg(from, to);
}

/* What a connection through an SNI-switching server did, end to end. */
struct sni_run {
    int handshake_ok; /* both ends finished the handshake */
    int client_reused, server_reused;
    int data_ok; /* one byte each way afterwards */
    unsigned long handshake_err; /* first error the server's handshake queued */
    int server_write; /* SSL_write() of the server, after the handshake */
    unsigned long server_write_err;
    int server_read; /* SSL_read() of the server, after the client wrote */
    int server_read_sslerr; /* SSL_get_error() for it */
    SSL_SESSION *session; /* the client's session (owned), or NULL */
};

/*
 * hs_connect(), keeping the first error the server's steps leave queued:
 * every SSL_do_handshake() empties the thread's queue when it starts, and
 * here one thread drives both ends.
 */
static int connect_pair(SSL *c, SSL *s, unsigned long *server_err)
{
    BIO *cbio = NULL, *sbio = NULL;
    int cs = 0, ss = 0, i;

    *server_err = 0;
    if (!BIO_new_bio_pair(&cbio, 0, &sbio, 0))
        return 0;
    SSL_set_bio(c, cbio, cbio);
    SSL_set_bio(s, sbio, sbio);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    for (i = 0; i < 100 && (cs == 0 || ss == 0); i++) {
        if (cs == 0)
            cs = hs_step(c);
        if (ss == 0) {
            ss = hs_step(s);
            if (*server_err == 0)
                *server_err = ERR_peek_error();
        }
        if (cs < 0 || ss < 0)
            break;
    }
    ERR_clear_error();
    return cs == 1 && ss == 1;
}

/*
 * A connection of a |cctx| client, sending SNI "host", offering a copy of
 * |offer| if not NULL, to a server SSL of |sctx| (first moved to |pre| with
 * SSL_set_SSL_CTX() if not NULL).
 */
static void sni_connect(SSL_CTX *sctx, SSL_CTX *pre, SSL_CTX *cctx,
    const SSL_SESSION *offer, struct sni_run *run)
{
    SSL *c = SSL_new(cctx), *s = SSL_new(sctx);
    SSL_SESSION *copy = NULL;
    unsigned char b = 0;

    memset(run, 0, sizeof(*run));
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(SSL_set_tlsext_host_name(c, "host"), 1);
    if (offer != NULL) {
        ck_assert_ptr_nonnull(copy = hs_session_copy(offer));
        ck_assert_int_eq(SSL_set_session(c, copy), 1);
    }
    if (pre != NULL)
        ck_assert_ptr_eq(SSL_set_SSL_CTX(s, pre), pre);
    run->handshake_ok = connect_pair(c, s, &run->handshake_err);
    run->client_reused = SSL_session_reused(c);
    run->server_reused = SSL_session_reused(s);
    if (run->handshake_ok) {
        run->server_write = SSL_write(s, "s", 1);
        run->server_write_err = ERR_peek_error();
        ERR_clear_error();
        run->data_ok = run->server_write == 1 && SSL_read(c, &b, 1) == 1 && b == 's';
        if (SSL_write(c, "c", 1) == 1) {
            run->server_read = SSL_read(s, &b, 1);
            run->server_read_sslerr = SSL_get_error(s, run->server_read);
            run->data_ok = run->data_ok && run->server_read == 1 && b == 'c';
        }
        run->session = SSL_get1_session(c);
        SSL_shutdown(c);
        SSL_shutdown(s);
    }
    ERR_clear_error();
    SSL_SESSION_free(copy);
    SSL_free(c);
    SSL_free(s);
}

static void assert_refused_after_handshake(const struct sni_run *run)
{
    ck_assert_msg(run->handshake_ok, "the handshake itself is expected to finish");
    ck_assert_msg(!run->data_ok, "application data flowed over a refused connection");
    ck_assert_int_le(run->server_write, 0);
    ck_assert_int_eq(ERR_GET_REASON(run->server_write_err), SSL_R_PROTOCOL_IS_SHUTDOWN);
    /* Nothing read; with the error queue cleared libssl calls it a close. */
    ck_assert_int_le(run->server_read, 0);
    ck_assert_int_ne(run->server_read_sslerr, SSL_ERROR_NONE);
    ck_assert_int_eq(ERR_GET_LIB(run->handshake_err), EMSGUARD_get_error_lib());
    ck_assert_int_eq(ERR_GET_REASON(run->handshake_err), EMSGUARD_R_EMS_REQUIRED);
}

static void assert_usable(const struct sni_run *run)
{
    ck_assert_msg(run->handshake_ok && run->data_ok, "connection failed (write %d, read %d)",
        run->server_write, run->server_read);
}

/*
 * F7: the connection recorded the state of the ctx it started on (set with
 * SSL_set_SSL_CTX() before the handshake); the servername callback moves it
 * back to the SSL's initial ctx, which drops the last reference to that ctx.
 * Everything after (the new session, its refusal) must not touch freed
 * memory, and the session stays unresumable.
 */
START_TEST(test_recorded_ctx_freed_by_sni_switch)
{
    SSL_CTX *initial = hs_policy_server(HS_MECH_SESSION_ID, 0);
    SSL_CTX *legacy = hs_client(HS_NO_EMS), *ems_client = hs_client(0);
    struct sni_run run;
    int i;

    for (i = 0; i < 2; i++) {
        SSL_CTX *preset = hs_policy_server(HS_MECH_SESSION_ID, 0);
        SSL_CTX *cctx = i == 0 ? legacy : ems_client;
        SSL *c = SSL_new(cctx), *s = SSL_new(initial);

        ck_assert_ptr_nonnull(c);
        ck_assert_ptr_nonnull(s);
        switch_on_sni(preset, initial);
        ck_assert_int_eq(SSL_set_tlsext_host_name(c, "host"), 1);
        ck_assert_ptr_eq(SSL_set_SSL_CTX(s, preset), preset);
        SSL_CTX_free(preset); /* |s| holds the last reference; the switch drops it */
        ck_assert_msg(hs_connect(c, s), "handshake failed");
        ck_assert_ptr_eq(SSL_get_SSL_CTX(s), initial);
        SSL_shutdown(c);
        SSL_shutdown(s);
        SSL_free(c);
        SSL_free(s);
        ERR_clear_error();
    }
    /* The ctxs the connections ended on still work. */
    sni_connect(initial, NULL, ems_client, NULL, &run);
    assert_usable(&run);
    SSL_SESSION_free(run.session);
    SSL_CTX_free(ems_client);
    SSL_CTX_free(legacy);
    SSL_CTX_free(initial);
}
END_TEST

/* F8: only the target of the SNI switch has the policy. */
static const char *f8_log;
static hs_mech f8_mech;
static uint64_t f8_refused;
static struct sni_run f8_run;

static void f8_switch_into_enabled(void)
{
    SSL_CTX *initial = hs_server(f8_mech, 0), *host = hs_server(f8_mech, 0);
    SSL_CTX *legacy = hs_client(HS_NO_EMS);
    SSL_SESSION *sess;
    struct sni_run first;

    hs_enable_with(host, EMSGUARD_EVENT_LOGGING, "1", NULL);
    switch_on_sni(initial, host);
    sni_connect(initial, NULL, legacy, NULL, &first); /* full handshake */
    assert_usable(&first);
    ck_assert_int_eq(first.client_reused, 0);
    ck_assert_ptr_nonnull(sess = first.session);
    /* The initial ctx finds the session (cache, ticket or external cache). */
    sni_connect(initial, NULL, legacy, sess, &f8_run);
    f8_refused = hs_counter(host, EMSGUARD_CNT_REFUSED_SNI_SWITCH);
    SSL_SESSION_free(f8_run.session);
    SSL_SESSION_free(sess);
    SSL_CTX_free(legacy);
    SSL_CTX_free(host);
    SSL_CTX_free(initial);
}

START_TEST(test_switch_into_enabled_ctx_refuses_nonems_resumption)
{
    f8_mech = (hs_mech)_i;
    hs_ext_cache_reset();
    f8_log = hs_capture_stderr(f8_switch_into_enabled);
    ck_assert_ptr_nonnull(f8_log);
    ck_assert_msg(f8_run.client_reused && f8_run.server_reused,
        "libssl did not resume from the initial ctx: the scenario is gone");
    assert_refused_after_handshake(&f8_run);
    ck_assert_uint_eq(f8_refused, 1);
    ck_assert_msg(strstr(f8_log, "emsguard: error: role=server refused connection:") != NULL
            && strstr(f8_log, "reason=sni-switch") != NULL,
        "no log line: %s", f8_log);
}
END_TEST

/* The same switch with an EMS client: resumes, no refusal. */
START_TEST(test_switch_into_enabled_ctx_ems_resumes)
{
    hs_mech mech = (hs_mech)_i;
    SSL_CTX *initial = hs_server(mech, 0), *host = hs_policy_server(mech, 0);
    SSL_CTX *ems_client = hs_client(0);
    SSL_SESSION *sess;
    struct sni_run run;

    hs_ext_cache_reset();
    switch_on_sni(initial, host);
    sni_connect(initial, NULL, ems_client, NULL, &run);
    assert_usable(&run);
    ck_assert_ptr_nonnull(sess = run.session);
    sni_connect(initial, NULL, ems_client, sess, &run);
    assert_usable(&run);
    ck_assert_int_eq(run.client_reused, 1);
    ck_assert_uint_eq(hs_counter(host, EMSGUARD_CNT_REFUSED_SNI_SWITCH), 0);
    SSL_SESSION_free(run.session);
    SSL_SESSION_free(sess);
    SSL_CTX_free(ems_client);
    SSL_CTX_free(host);
    SSL_CTX_free(initial);
}
END_TEST

/* F8, Require=1 on the target only: a full handshake without EMS is refused. */
START_TEST(test_switch_into_require_ems_ctx_refuses_full_handshake)
{
    SSL_CTX *initial = hs_server(HS_MECH_SESSION_ID, 0), *host = hs_server(HS_MECH_SESSION_ID, 0);
    SSL_CTX *legacy = hs_client(HS_NO_EMS), *ems_client = hs_client(0);
    struct sni_run run;

    hs_enable_with(host, EMSGUARD_REQUIRE_EMS, "1", NULL);
    switch_on_sni(initial, host);
    sni_connect(initial, NULL, legacy, NULL, &run);
    assert_refused_after_handshake(&run);
    SSL_SESSION_free(run.session);
    ck_assert_uint_eq(hs_counter(host, EMSGUARD_CNT_REFUSED_SNI_SWITCH), 1);
    sni_connect(initial, NULL, ems_client, NULL, &run);
    assert_usable(&run);
    SSL_SESSION_free(run.session);
    SSL_CTX_free(ems_client);
    SSL_CTX_free(legacy);
    SSL_CTX_free(host);
    SSL_CTX_free(initial);
}
END_TEST

/*
 * The reverse: only the initial ctx has the policy.  Its cache, tickets and
 * callbacks decide, so the policy holds (counted there).
 */
START_TEST(test_switch_out_of_enabled_ctx_policy_holds)
{
    hs_mech mech = (hs_mech)_i;
    SSL_CTX *initial = hs_policy_server(mech, 0), *host = hs_server(mech, 0);
    SSL_CTX *legacy = hs_client(HS_NO_EMS);
    SSL_SESSION *sess;
    struct sni_run run;

    hs_ext_cache_reset();
    switch_on_sni(initial, host);
    sni_connect(initial, NULL, legacy, NULL, &run);
    assert_usable(&run);
    ck_assert_ptr_nonnull(sess = run.session);
    sni_connect(initial, NULL, legacy, sess, &run);
    assert_usable(&run);
    ck_assert_int_eq(run.client_reused, 0);
    ck_assert_int_eq(run.server_reused, 0);
    SSL_SESSION_free(run.session);
    SSL_SESSION_free(sess);
    SSL_CTX_free(legacy);
    SSL_CTX_free(host);
    SSL_CTX_free(initial);
}
END_TEST

/*
 * Both enabled, the initial ctx allowing legacy resumption and the target
 * not: the target's policy refuses the connection the initial one resumed.
 */
START_TEST(test_switch_between_policies_target_refuses)
{
    hs_mech mech = (hs_mech)_i;
    SSL_CTX *initial = hs_server(mech, 0), *host = hs_policy_server(mech, 0);
    SSL_CTX *legacy = hs_client(HS_NO_EMS);
    SSL_SESSION *sess;
    struct sni_run run;

    hs_ext_cache_reset();
    hs_enable_with(initial, EMSGUARD_ALLOW_LEGACY_RESUMPTION, "1", NULL);
    switch_on_sni(initial, host);
    sni_connect(initial, NULL, legacy, NULL, &run);
    assert_usable(&run);
    ck_assert_ptr_nonnull(sess = run.session);
    sni_connect(initial, NULL, legacy, sess, &run);
    ck_assert_int_eq(run.client_reused, 1); /* the initial ctx's policy allowed it */
    assert_refused_after_handshake(&run);
    ck_assert_uint_eq(hs_counter(host, EMSGUARD_CNT_REFUSED_SNI_SWITCH), 1);
    SSL_SESSION_free(run.session);
    SSL_SESSION_free(sess);
    SSL_CTX_free(legacy);
    SSL_CTX_free(host);
    SSL_CTX_free(initial);
}
END_TEST

/*
 * Both enabled with the same policy (every ctx under the preload): EMS
 * sessions resume through the switch, legacy ones do not, nothing refused.
 */
START_TEST(test_switch_between_equal_policies)
{
    hs_mech mech = (hs_mech)_i;
    SSL_CTX *initial = hs_policy_server(mech, 0), *host = hs_policy_server(mech, 0);
    SSL_CTX *ems_client = hs_client(0), *legacy = hs_client(HS_NO_EMS);
    SSL_SESSION *sess;
    struct sni_run run;
    int i;

    hs_ext_cache_reset();
    switch_on_sni(initial, host);
    for (i = 0; i < 2; i++) {
        SSL_CTX *cctx = i == 0 ? ems_client : legacy;

        sni_connect(initial, NULL, cctx, NULL, &run);
        assert_usable(&run);
        ck_assert_ptr_nonnull(sess = run.session);
        sni_connect(initial, NULL, cctx, sess, &run);
        assert_usable(&run);
        ck_assert_int_eq(run.client_reused, i == 0);
        SSL_SESSION_free(run.session);
        SSL_SESSION_free(sess);
    }
    ck_assert_uint_eq(hs_counter(host, EMSGUARD_CNT_REFUSED_SNI_SWITCH), 0);
    SSL_CTX_free(legacy);
    SSL_CTX_free(ems_client);
    SSL_CTX_free(host);
    SSL_CTX_free(initial);
}
END_TEST

/* ---- F10: the new session of a non-EMS handshake is unreachable ----------- */

/*
 * The server's own session object after a legacy full handshake has a
 * session ID context no connection has, and is not resumable: even an
 * application that puts it into the cache cannot get it resumed.
 */
START_TEST(test_refused_new_session_is_isolated)
{
    SSL_CTX *pctx = hs_policy_server(HS_MECH_SESSION_ID, 0), *legacy = hs_client(HS_NO_EMS);
    SSL *c = SSL_new(legacy), *s = SSL_new(pctx);
    SSL_SESSION *server_sess, *client_sess;
    const unsigned char *sid_ctx;
    unsigned int sid_ctx_len;
    hs_result r;

    ck_assert_msg(hs_connect(c, s), "handshake failed");
    ck_assert_ptr_nonnull(server_sess = SSL_get1_session(s));
    ck_assert_ptr_nonnull(client_sess = SSL_get1_session(c));
    sid_ctx = SSL_SESSION_get0_id_context(server_sess, &sid_ctx_len);
    ck_assert_msg(!(sid_ctx_len == 2 && memcmp(sid_ctx, "eg", 2) == 0),
        "the refused session kept the ctx's session ID context");
    ck_assert_int_eq(SSL_SESSION_is_resumable(server_sess), 0);
    ck_assert_int_eq(SSL_CTX_sess_number(pctx), 0);
    SSL_shutdown(c);
    SSL_shutdown(s);
    SSL_free(c);
    SSL_free(s);
    /* An application adds it anyway: it still is not found. */
    ck_assert_int_eq(SSL_CTX_add_session(pctx, server_sess), 1);
    hs_handshake(pctx, legacy, client_sess, &r);
    assert_full(&r);
    hs_result_clear(&r);
    ck_assert_uint_eq(hs_counter(pctx, EMSGUARD_CNT_POLICY_BYPASSED), 0);
    ck_assert_uint_eq(hs_counter(pctx, EMSGUARD_CNT_SESSIONS_NOT_CACHED), 2);
    SSL_SESSION_free(client_sess);
    SSL_SESSION_free(server_sess);
    SSL_CTX_free(legacy);
    SSL_CTX_free(pctx);
}
END_TEST

/*
 * SSL_set_SSL_CTX() before the handshake: the session goes into the SSL's
 * initial ctx's cache, while the handshake started on the other one.  The
 * session must not be findable in the initial ctx afterwards.
 */
START_TEST(test_refused_new_session_not_cached_in_session_ctx)
{
    SSL_CTX *initial = hs_policy_server(HS_MECH_SESSION_ID, 0);
    SSL_CTX *preset = hs_policy_server(HS_MECH_SESSION_ID, 0);
    SSL_CTX *legacy = hs_client(HS_NO_EMS);
    SSL_SESSION *sess;
    struct sni_run run;
    hs_result r;

    sni_connect(initial, preset, legacy, NULL, &run);
    assert_usable(&run);
    ck_assert_ptr_nonnull(sess = run.session);
    ck_assert_int_eq(SSL_CTX_sess_number(initial), 0);
    hs_handshake(initial, legacy, sess, &r);
    assert_full(&r);
    hs_result_clear(&r);
    ck_assert_uint_eq(hs_counter(initial, EMSGUARD_CNT_POLICY_BYPASSED), 0);
    SSL_SESSION_free(sess);
    SSL_CTX_free(legacy);
    SSL_CTX_free(preset);
    SSL_CTX_free(initial);
}
END_TEST

/* ---- F11: sessions cached before EMSGUARD_enable() ------------------------- */

/* A stock ctx serves a legacy client, which then resumes: the control. */
static SSL_SESSION *cached_legacy_session(SSL_CTX *ctx, SSL_CTX *legacy)
{
    SSL_SESSION *sess = hs_new_session(ctx, legacy);
    hs_result r;

    hs_handshake(ctx, legacy, sess, &r);
    hs_assert_resumed(&r);
    hs_result_clear(&r);
    ck_assert_int_eq(SSL_CTX_sess_number(ctx), 1);
    return sess;
}

/* A "never expire" timeout: the session's expiry overflows. */
START_TEST(test_enable_drops_never_expiring_sessions)
{
    static const long timeouts[] = { LONG_MAX, LONG_MAX / 2, 0x7fffffffL };
    long timeout = timeouts[_i];
    SSL_CTX *ctx = hs_server(HS_MECH_SESSION_ID, 0), *legacy = hs_client(HS_NO_EMS);
    SSL_SESSION *sess;
    hs_result r;

    SSL_CTX_set_timeout(ctx, timeout);
    sess = cached_legacy_session(ctx, legacy);
    hs_enable_with(ctx, NULL);
    ck_assert_int_eq(SSL_CTX_sess_number(ctx), 0);
    hs_handshake(ctx, legacy, sess, &r);
    assert_full(&r);
    hs_result_clear(&r);
    ck_assert_uint_eq(hs_counter(ctx, EMSGUARD_CNT_POLICY_BYPASSED), 0);
    SSL_SESSION_free(sess);
    SSL_CTX_free(legacy);
    SSL_CTX_free(ctx);
}
END_TEST

/*
 * The cache mode no longer stores server sessions when the policy is
 * enabled, but libssl still looks up what the cache holds.
 */
START_TEST(test_enable_drops_sessions_whatever_the_cache_mode)
{
    static const long modes[] = {
        SSL_SESS_CACHE_OFF,
        SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL_STORE,
        SSL_SESS_CACHE_CLIENT,
    };
    SSL_CTX *ctx = hs_server(HS_MECH_SESSION_ID, 0), *legacy = hs_client(HS_NO_EMS);
    SSL_SESSION *sess = cached_legacy_session(ctx, legacy);
    hs_result r;

    SSL_CTX_set_session_cache_mode(ctx, modes[_i]);
    hs_enable_with(ctx, NULL);
    ck_assert_int_eq(SSL_CTX_sess_number(ctx), 0);
    hs_handshake(ctx, legacy, sess, &r);
    assert_full(&r);
    hs_result_clear(&r);
    ck_assert_uint_eq(hs_counter(ctx, EMSGUARD_CNT_POLICY_BYPASSED), 0);
    SSL_SESSION_free(sess);
    SSL_CTX_free(legacy);
    SSL_CTX_free(ctx);
}
END_TEST

/* ---- suite ---------------------------------------------------------------- */

static Suite *cache_paths_suite(void)
{
    Suite *s = suite_create("emsguard-cache-paths");
    TCase *tc;

    tc = tcase_create("ctx-lifetime");
    tcase_add_test(tc, test_recorded_ctx_freed_by_sni_switch);
    suite_add_tcase(s, tc);

    tc = tcase_create("sni-switch");
    tcase_add_loop_test(tc, test_switch_into_enabled_ctx_refuses_nonems_resumption, 0,
        HS_MECH_COUNT);
    tcase_add_loop_test(tc, test_switch_into_enabled_ctx_ems_resumes, 0, HS_MECH_COUNT);
    tcase_add_test(tc, test_switch_into_require_ems_ctx_refuses_full_handshake);
    tcase_add_loop_test(tc, test_switch_out_of_enabled_ctx_policy_holds, 0, HS_MECH_COUNT);
    tcase_add_loop_test(tc, test_switch_between_policies_target_refuses, 0, HS_MECH_COUNT);
    tcase_add_loop_test(tc, test_switch_between_equal_policies, 0, HS_MECH_COUNT);
    suite_add_tcase(s, tc);

    tc = tcase_create("new-session");
    tcase_add_test(tc, test_refused_new_session_is_isolated);
    tcase_add_test(tc, test_refused_new_session_not_cached_in_session_ctx);
    suite_add_tcase(s, tc);

    tc = tcase_create("enable-flush");
    tcase_add_loop_test(tc, test_enable_drops_never_expiring_sessions, 0, 3);
    tcase_add_loop_test(tc, test_enable_drops_sessions_whatever_the_cache_mode, 0, 3);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    /* Before OpenSSL allocates anything. */
    if (!CRYPTO_set_mem_functions(poison_malloc, poison_realloc, poison_free)) {
        fprintf(stderr, "check_cache_paths: cannot install the allocation hooks\n");
        return 2;
    }
    /* CK_NOFORK has no per-test timeout: a hang (a lock in freed memory) fails here. */
    alarm(300);
    return hs_run_suite(cache_paths_suite);
}
