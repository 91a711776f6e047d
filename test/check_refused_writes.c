/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A connection emsguard refuses at the end of its handshake sends no
 * application data, whichever call drove the handshake (issue 15, round 2:
 * R1), in-memory client/server pairs.
 *
 * refuse_completed() is emsguard's last resort: a handshake the policy
 * forbids reached its end through a path no earlier callback could stop.
 * Setting the shutdown flags there stops later SSL_write() calls, but not
 * the one that is running: ssl_write_internal() checks SSL_SENT_SHUTDOWN
 * before ssl3_write_bytes() runs the handshake, so the application's first
 * record (a server banner, a client request) used to go out encrypted.
 *
 * Refusal kinds (which side is refused):
 *   sni-resume      server: SNI switch from a ctx without the policy into an
 *                   enabled one, a non-EMS session resumed by the initial ctx
 *   sni-require     server: the same switch into a Require=1 ctx, a full
 *                   handshake without EMS
 *   add-session     server: a non-EMS session put in the cache with
 *                   SSL_CTX_add_session() and resumed
 *   require-bypass  server: Require=1, emsguard's ClientHello callback
 *                   replaced with the plain setter, a legacy client
 *   late-offer      client: the application's chained info callback offers
 *                   a non-EMS session after emsguard's offer filter ran
 * Drivers (what the refused side calls first):
 *   write, write_ex, bio (BIO_write on BIO_f_ssl), handshake (SSL_accept /
 *   SSL_connect, then SSL_write), read (the peer writes first; SSL_read,
 *   then SSL_write).
 * For each pair: the handshake completed and was refused (counter), the
 * refused side's write failed with SSL_ERROR_SSL and emsguard's reason was
 * queued, and the peer read nothing.  Also: a refused SSL reused after
 * SSL_clear() on the same BIOs works for an allowed connection, and the
 * application's BIOs stay valid and are freed exactly once (ASan).
 *
 *   BUILD=build build/test/check_refused_writes
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/socket.h>
#include <check.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include "emsguard.h"
#include "harness.h"
#include "harness_check.h"

/* ---- helpers ---------------------------------------------------------------- */

static int switch_to_arg(SSL *ssl, int *al, void *arg)
{
    (void)al;
    if (arg != NULL && SSL_set_SSL_CTX(ssl, arg) == NULL)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    return SSL_TLSEXT_ERR_OK;
}

static int accept_any_hello(SSL *ssl, int *al, void *arg)
{
    (void)ssl;
    (void)al;
    (void)arg;
    return SSL_CLIENT_HELLO_SUCCESS;
}

/* A full handshake of |cctx| against |sctx| (SNI "host"); the client's session. */
static SSL_SESSION *session_from(SSL_CTX *sctx, SSL_CTX *cctx)
{
    SSL *c = SSL_new(cctx), *s = SSL_new(sctx);
    SSL_SESSION *sess;

    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(SSL_set_tlsext_host_name(c, "host"), 1);
    ck_assert_msg(hs_connect(c, s), "the setup handshake failed");
    ck_assert_ptr_nonnull(sess = SSL_get1_session(c));
    SSL_shutdown(c);
    SSL_shutdown(s);
    SSL_free(c);
    SSL_free(s);
    ERR_clear_error();
    return sess;
}

/* ---- refusal kinds ---------------------------------------------------------- */

enum kind { K_SNI_RESUME, K_SNI_REQUIRE, K_ADD_SESSION, K_REQUIRE_BYPASS, K_LATE_OFFER, K_COUNT };
static const char *const kind_names[K_COUNT] = { "sni-resume", "sni-require", "add-session",
    "require-bypass", "late-offer" };

enum driver { D_WRITE, D_WRITE_EX, D_BIO, D_HANDSHAKE, D_READ, D_COUNT };
static const char *const driver_names[D_COUNT] = { "write", "write_ex", "bio", "handshake",
    "read" };

struct setup {
    SSL_CTX *sctx, *cctx; /* the connection's */
    SSL_CTX *counted; /* the enabled ctx that counts the refusal */
    EMSGUARD_COUNTER which;
    int refused_is_server;
    int expect_reused;
    SSL_SESSION *offer; /* the client offers this (a copy) */
    SSL_CTX *extra[3]; /* freed at the end */
};

/* late-offer: the session the application's info callback offers. */
static SSL_SESSION *late_session;

static void offer_late(const SSL *ssl, int where, int ret)
{
    (void)ret;
    if ((where & SSL_CB_HANDSHAKE_START) && SSL_in_before(ssl) && late_session != NULL)
        SSL_set_session((SSL *)ssl, late_session);
}

static void setup_kind(enum kind k, struct setup *su)
{
    memset(su, 0, sizeof(*su));
    su->refused_is_server = 1;
    switch (k) {
    case K_SNI_RESUME: {
        SSL_CTX *initial = hs_server(HS_MECH_SESSION_ID, 0);
        SSL_CTX *host = hs_server(HS_MECH_SESSION_ID, 0);

        hs_enable_with(host, NULL);
        SSL_CTX_set_tlsext_servername_callback(initial, switch_to_arg);
        SSL_CTX_set_tlsext_servername_arg(initial, host);
        su->sctx = initial;
        su->cctx = hs_client(HS_NO_EMS);
        su->offer = session_from(initial, su->cctx); /* allowed: a full handshake */
        su->counted = host;
        su->which = EMSGUARD_CNT_REFUSED_SNI_SWITCH;
        su->expect_reused = 1;
        su->extra[0] = host;
        break;
    }
    case K_SNI_REQUIRE: {
        SSL_CTX *initial = hs_server(HS_MECH_SESSION_ID, 0);
        SSL_CTX *host = hs_server(HS_MECH_SESSION_ID, 0);

        hs_enable_with(host, EMSGUARD_REQUIRE_EMS, "1", NULL);
        SSL_CTX_set_tlsext_servername_callback(initial, switch_to_arg);
        SSL_CTX_set_tlsext_servername_arg(initial, host);
        su->sctx = initial;
        su->cctx = hs_client(HS_NO_EMS);
        su->counted = host;
        su->which = EMSGUARD_CNT_REFUSED_SNI_SWITCH;
        su->extra[0] = host;
        break;
    }
    case K_ADD_SESSION: {
        SSL_CTX *stock = hs_server(HS_MECH_SESSION_ID, 0);
        SSL_SESSION *copy;

        su->sctx = hs_server(HS_MECH_SESSION_ID, 0);
        hs_enable_with(su->sctx, NULL);
        su->cctx = hs_client(HS_NO_EMS);
        su->offer = session_from(stock, su->cctx);
        ck_assert_ptr_nonnull(copy = hs_session_copy(su->offer));
        ck_assert_int_eq(SSL_SESSION_set1_id_context(copy, (const unsigned char *)"eg", 2), 1);
        ck_assert_int_eq(SSL_CTX_add_session(su->sctx, copy), 1);
        SSL_SESSION_free(copy);
        su->counted = su->sctx;
        su->which = EMSGUARD_CNT_POLICY_BYPASSED;
        su->expect_reused = 1;
        su->extra[0] = stock;
        break;
    }
    case K_REQUIRE_BYPASS:
        su->sctx = hs_server(HS_MECH_SESSION_ID, 0);
        hs_enable_with(su->sctx, EMSGUARD_REQUIRE_EMS, "1", NULL);
        SSL_CTX_set_client_hello_cb(su->sctx, accept_any_hello, NULL);
        su->cctx = hs_client(HS_NO_EMS);
        su->counted = su->sctx;
        su->which = EMSGUARD_CNT_POLICY_BYPASSED;
        break;
    case K_LATE_OFFER: {
        SSL_CTX *plain = hs_client(0);

        su->sctx = hs_server(HS_MECH_SESSION_ID, HS_NO_EMS); /* a legacy server */
        su->cctx = hs_client(0);
        hs_enable_with(su->cctx, NULL);
        ck_assert_int_eq(EMSGUARD_CTX_set_info_callback(su->cctx, offer_late), 1);
        late_session = session_from(su->sctx, plain); /* without EMS */
        su->counted = su->cctx;
        su->which = EMSGUARD_CNT_POLICY_BYPASSED;
        su->refused_is_server = 0;
        su->expect_reused = 1;
        su->extra[0] = plain;
        break;
    }
    default:
        ck_abort();
    }
}

static void teardown_kind(struct setup *su)
{
    size_t i;

    SSL_SESSION_free(su->offer);
    SSL_SESSION_free(late_session);
    late_session = NULL;
    SSL_CTX_free(su->sctx);
    SSL_CTX_free(su->cctx);
    for (i = 0; i < sizeof(su->extra) / sizeof(su->extra[0]); i++)
        SSL_CTX_free(su->extra[i]);
}

/* ---- driving both ends ------------------------------------------------------ */

/* Empties the thread's error queue; 1 if emsguard's EMS_REQUIRED was on it. */
static int take_reason(void)
{
    unsigned long e;
    int found = 0;

    while ((e = ERR_get_error()) != 0)
        if (ERR_GET_LIB(e) == EMSGUARD_get_error_lib()
            && ERR_GET_REASON(e) == EMSGUARD_R_EMS_REQUIRED)
            found = 1;
    return found;
}

static int wants_more(SSL *ssl, int r)
{
    int e = SSL_get_error(ssl, r);

    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

/* What the refused side did. */
struct outcome {
    int handshake_done; /* both ends finished the handshake */
    int reused;
    int write_ret; /* its (first failing or last) write */
    int write_sslerr; /* SSL_get_error() for it */
    int reason_queued; /* emsguard's reason on the queue after a call of it */
    int peer_got; /* bytes of application data the peer read */
};

/* One handshake step of the peer; 1 done, 0 more, -1 failed. */
static int peer_step(SSL *p)
{
    int r = SSL_do_handshake(p);

    if (r == 1)
        return 1;
    return wants_more(p, r) ? 0 : -1;
}

/* The peer reads whatever arrived; returns the bytes of application data. */
static int peer_reads(SSL *p)
{
    unsigned char buf[64];
    int i, got = 0, r;

    for (i = 0; i < 4; i++) {
        r = SSL_read(p, buf, sizeof(buf));
        if (r > 0)
            got += r;
        else if (!wants_more(p, r))
            break;
    }
    ERR_clear_error();
    return got;
}

static const char payload[] = "220 banner";
#define PAYLOAD_LEN ((int)sizeof(payload) - 1)

/* The refused side's first call, once: <0 more, 0 failed, 1 succeeded. */
static int refused_call(enum driver d, SSL *r, BIO *rbio_ssl, struct outcome *out)
{
    size_t written = 0;
    unsigned char buf[64];
    int ret;

    switch (d) {
    case D_WRITE:
        ret = SSL_write(r, payload, PAYLOAD_LEN);
        break;
    case D_WRITE_EX:
        ret = SSL_write_ex(r, payload, PAYLOAD_LEN, &written);
        ret = ret == 1 ? (int)written : (wants_more(r, 0) ? -1 : 0);
        break;
    case D_BIO:
        ret = BIO_write(rbio_ssl, payload, PAYLOAD_LEN);
        if (ret <= 0 && BIO_should_retry(rbio_ssl)) {
            out->reason_queued |= take_reason();
            return -1;
        }
        out->write_sslerr = SSL_get_error(r, ret);
        out->write_ret = ret;
        out->reason_queued |= take_reason();
        return ret > 0;
    case D_HANDSHAKE:
        ret = SSL_is_server(r) ? SSL_accept(r) : SSL_connect(r);
        if (ret != 1 && wants_more(r, ret)) {
            out->reason_queued |= take_reason();
            return -1;
        }
        out->reason_queued |= take_reason();
        if (ret != 1)
            return 0;
        ret = SSL_write(r, payload, PAYLOAD_LEN);
        break;
    case D_READ:
        ret = SSL_read(r, buf, sizeof(buf));
        if (ret <= 0 && wants_more(r, ret)) {
            out->reason_queued |= take_reason();
            return -1;
        }
        out->reason_queued |= take_reason();
        ret = SSL_write(r, payload, PAYLOAD_LEN);
        break;
    default:
        ck_abort();
        return 0;
    }
    if (ret <= 0 && wants_more(r, ret)) {
        out->reason_queued |= take_reason();
        return -1;
    }
    out->write_ret = ret;
    out->write_sslerr = SSL_get_error(r, ret);
    out->reason_queued |= take_reason();
    return ret > 0;
}

static void run_pair(const struct setup *su, enum driver d, struct outcome *out)
{
    SSL *c = SSL_new(su->cctx), *s = SSL_new(su->sctx);
    SSL *r, *p;
    BIO *cb = NULL, *sb = NULL, *rbio_ssl = NULL;
    SSL_SESSION *copy = NULL;
    int i, rdone = 0, pdone = 0, peer_wrote = 0;

    memset(out, 0, sizeof(*out));
    out->write_ret = -99;
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(SSL_set_tlsext_host_name(c, "host"), 1);
    if (su->offer != NULL) {
        ck_assert_ptr_nonnull(copy = hs_session_copy(su->offer));
        ck_assert_int_eq(SSL_set_session(c, copy), 1);
    }
    ck_assert_int_eq(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
    SSL_set_bio(c, cb, cb);
    SSL_set_bio(s, sb, sb);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    r = su->refused_is_server ? s : c;
    p = su->refused_is_server ? c : s;
    if (d == D_BIO) {
        ck_assert_ptr_nonnull(rbio_ssl = BIO_new(BIO_f_ssl()));
        BIO_set_ssl(rbio_ssl, r, BIO_NOCLOSE);
    }
    for (i = 0; i < 100 && !(rdone && pdone); i++) {
        if (!pdone) {
            if (d == D_READ && !peer_wrote) {
                int w = SSL_write(p, "GET", 3);

                if (w == 3)
                    peer_wrote = pdone = 1;
                else if (!wants_more(p, w))
                    pdone = -1;
            } else {
                pdone = peer_step(p);
            }
            ERR_clear_error();
            if (pdone < 0)
                break;
        }
        if (!rdone) {
            int rr = refused_call(d, r, rbio_ssl, out);

            if (rr >= 0)
                rdone = 1;
        }
    }
    out->handshake_done = SSL_is_init_finished(r) && SSL_is_init_finished(p);
    out->reused = SSL_session_reused(r);
    out->peer_got = peer_reads(p);
    BIO_free_all(rbio_ssl); /* BIO_set_ssl() took a reference on the SSL's rbio */
    SSL_free(c);
    SSL_free(s);
    SSL_SESSION_free(copy);
    ERR_clear_error();
}

/* ---- the matrix ------------------------------------------------------------- */

START_TEST(test_refused_connection_sends_nothing)
{
    enum kind k = (enum kind)(_i / D_COUNT);
    enum driver d = (enum driver)(_i % D_COUNT);
    struct setup su;
    struct outcome out;

    setup_kind(k, &su);
    run_pair(&su, d, &out);
    ck_assert_msg(out.handshake_done, "%s/%s: the handshake did not finish: the scenario "
                                      "is gone", kind_names[k], driver_names[d]);
    ck_assert_msg(out.reused == su.expect_reused, "%s/%s: reused=%d, expected %d",
        kind_names[k], driver_names[d], out.reused, su.expect_reused);
    ck_assert_msg(hs_counter(su.counted, su.which) == 1, "%s/%s: no refusal counted",
        kind_names[k], driver_names[d]);
    ck_assert_msg(out.peer_got == 0,
        "%s/%s: the peer read %d bytes of application data over a refused connection",
        kind_names[k], driver_names[d], out.peer_got);
    ck_assert_msg(out.write_ret <= 0, "%s/%s: the refused side's write returned %d",
        kind_names[k], driver_names[d], out.write_ret);
    ck_assert_msg(out.write_sslerr == SSL_ERROR_SSL,
        "%s/%s: SSL_get_error() %d for the failed write (SSL_ERROR_SSL expected: an "
        "application must not retry)", kind_names[k], driver_names[d], out.write_sslerr);
    ck_assert_msg(out.reason_queued, "%s/%s: emsguard's reason never reached the error queue",
        kind_names[k], driver_names[d]);
    teardown_kind(&su);
}
END_TEST

/*
 * Ownership: the application's BIOs (separate read and write BIOs, kept by
 * the application as memory-BIO users do) stay valid while the SSL lives,
 * what the handshake wrote can still be drained from the application's own
 * pointer, SSL_get_wfd() still finds the descriptor of an SSL_set_fd() SSL, and
 * everything is freed exactly once (ASan).
 */
START_TEST(test_refusal_keeps_application_bios)
{
    struct setup su;
    SSL *c, *s;
    BIO *s_in = BIO_new(BIO_s_mem()), *s_out = BIO_new(BIO_s_mem());
    BIO *c_in = BIO_new(BIO_s_mem()), *c_out = BIO_new(BIO_s_mem());
    char buf[16384];
    int i, n, cdone = 0, sret = -1, sv[2];
    SSL *fds;

    setup_kind(K_REQUIRE_BYPASS, &su);
    ck_assert_ptr_nonnull(c = SSL_new(su.cctx));
    ck_assert_ptr_nonnull(s = SSL_new(su.sctx));
    /* The SSLs own these; this test keeps its pointers, as memory-BIO users do. */
    SSL_set_bio(c, c_in, c_out);
    SSL_set_bio(s, s_in, s_out);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    for (i = 0; i < 50 && !(cdone && sret != -1); i++) {
        if (!cdone)
            cdone = SSL_do_handshake(c) == 1;
        while ((n = BIO_read(c_out, buf, sizeof(buf))) > 0)
            BIO_write(s_in, buf, n);
        if (sret == -1) {
            int w = SSL_write(s, payload, PAYLOAD_LEN);

            if (w > 0 || !wants_more(s, w))
                sret = w > 0 ? w : 0;
        }
        /* Drained through the application's own pointer. */
        while ((n = BIO_read(s_out, buf, sizeof(buf))) > 0)
            BIO_write(c_in, buf, n);
        ERR_clear_error();
    }
    ck_assert_msg(cdone && SSL_is_init_finished(s), "handshake did not finish");
    ck_assert_int_eq(sret, 0);
    ck_assert_int_eq(peer_reads(c), 0);
    ck_assert_int_eq(BIO_ctrl_pending(s_out), 0);
    SSL_free(c);
    SSL_free(s);
    /* An fd-based SSL (SSL_set_fd: one socket BIO as rbio and wbio). */
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
    ck_assert_int_eq(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
    ck_assert_ptr_nonnull(fds = SSL_new(su.sctx));
    ck_assert_ptr_nonnull(c = SSL_new(su.cctx));
    ck_assert_int_eq(SSL_set_fd(c, sv[0]), 1);
    ck_assert_int_eq(SSL_set_fd(fds, sv[1]), 1);
    SSL_set_connect_state(c);
    SSL_set_accept_state(fds);
    cdone = 0;
    sret = -1;
    for (i = 0; i < 50 && !(cdone && sret != -1); i++) {
        if (!cdone)
            cdone = SSL_do_handshake(c) == 1;
        ERR_clear_error();
        if (sret == -1) {
            int w = SSL_write(fds, payload, PAYLOAD_LEN);

            if (w > 0 || !wants_more(fds, w))
                sret = w > 0 ? w : 0;
        }
        ERR_clear_error();
    }
    ck_assert_msg(cdone && SSL_is_init_finished(fds), "handshake did not finish");
    ck_assert_int_eq(sret, 0);
    ck_assert_int_eq(peer_reads(c), 0);
    ck_assert_int_eq(SSL_get_wfd(fds), sv[1]);
    ck_assert_int_eq(SSL_get_rfd(fds), sv[1]);
    SSL_free(c);
    SSL_free(fds);
    close(sv[0]);
    close(sv[1]);
    teardown_kind(&su);
}
END_TEST

/*
 * A refused SSL reused after SSL_clear() on the same BIOs (the application
 * starts a new connection over its transport): the new connection is
 * policed on its own, and an allowed one carries data both ways.
 */
START_TEST(test_refused_ssl_reused_after_clear)
{
    struct setup su;
    SSL_CTX *ems_client;
    SSL *c, *s, *c2;
    BIO *cb = NULL, *sb = NULL;
    unsigned char b = 0;

    setup_kind(K_REQUIRE_BYPASS, &su);
    ems_client = hs_client(0);
    ck_assert_ptr_nonnull(c = SSL_new(su.cctx));
    ck_assert_ptr_nonnull(s = SSL_new(su.sctx));
    ck_assert_int_eq(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
    SSL_set_bio(c, cb, cb);
    SSL_set_bio(s, sb, sb);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    {
        int i, cdone = 0, sdone = 0;

        for (i = 0; i < 50 && !(cdone && sdone); i++) {
            if (!cdone)
                cdone = SSL_do_handshake(c) == 1;
            if (!sdone)
                sdone = SSL_do_handshake(s) == 1;
        }
        ck_assert(cdone && sdone);
    }
    ERR_clear_error();
    ck_assert_int_le(SSL_write(s, "x", 1), 0);
    ERR_clear_error();
    /* The client side of the pair is handed to a new client SSL. */
    ck_assert_int_eq(BIO_up_ref(cb), 1);
    SSL_free(c);
    ck_assert_int_eq(SSL_clear(s), 1);
    ck_assert_ptr_nonnull(c2 = SSL_new(ems_client));
    SSL_set_bio(c2, cb, cb);
    {
        int i, cdone = 0, sdone = 0;

        SSL_set_connect_state(c2);
        SSL_set_accept_state(s);
        for (i = 0; i < 50 && !(cdone && sdone); i++) {
            if (!cdone)
                cdone = SSL_do_handshake(c2) == 1;
            if (!sdone)
                sdone = SSL_do_handshake(s) == 1;
        }
        ck_assert_msg(cdone && sdone, "the new connection's handshake failed");
    }
    ck_assert_int_eq(SSL_write(s, "s", 1), 1);
    ck_assert_int_eq(SSL_read(c2, &b, 1), 1);
    ck_assert_int_eq(b, 's');
    ck_assert_int_eq(SSL_write(c2, "c", 1), 1);
    ck_assert_int_eq(SSL_read(s, &b, 1), 1);
    ck_assert_int_eq(b, 'c');
    ck_assert_uint_eq(hs_counter(su.counted, su.which), 1);
    SSL_free(c2);
    SSL_free(s);
    SSL_CTX_free(ems_client);
    ERR_clear_error();
    teardown_kind(&su);
}
END_TEST

static Suite *refused_writes_suite(void)
{
    Suite *s = suite_create("refused_writes");
    TCase *tc = tcase_create("refused-at-handshake-end");

    tcase_add_loop_test(tc, test_refused_connection_sends_nothing, 0, K_COUNT * D_COUNT);
    tcase_add_test(tc, test_refusal_keeps_application_bios);
    tcase_add_test(tc, test_refused_ssl_reused_after_clear);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return hs_run_suite(refused_writes_suite);
}
