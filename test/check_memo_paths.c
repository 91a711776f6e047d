/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The EMS memo and callback chaining (issue 15, attack round), in memory.
 *
 *  N2  emsguard remembers, per master secret, whether it was derived with
 *      Extended Master Secret (session_flags.c), so that a session it has
 *      seen need not be DER-encoded again.  A session whose own EMS flag
 *      says otherwise -- a copy of a genuine EMS session with the flag
 *      cleared, written into a shared external cache, issued as a ticket by
 *      a fleet member sharing the ticket keys, or loaded by a client from its
 *      session store -- must be judged by its own flag, which is what libssl
 *      acts on: no non-EMS resumption.  Resuming such a copy where the policy
 *      allows it must not make emsguard refuse the genuine session later,
 *      and EMSGUARD_SESSION_has_ems() must describe the object it is given.
 *  N3  An application that chains its callback the usual way,
 *          prev = SSL_CTX_get_info_callback(ctx);
 *          EMSGUARD_CTX_set_info_callback(ctx, mine);   mine() calls prev
 *      gets emsguard's own callback as |prev|.  That must not recurse, and
 *      |mine| still sees every event once.  Likewise for the new-session and
 *      get-session callbacks, the per-SSL info callback, and the security
 *      and verify callbacks when a ctx is enabled with an application
 *      callback that chains to emsguard's callback of another ctx.
 *
 * Every test of a refusal has a stock-OpenSSL control next to it that shows
 * the session was there to be resumed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/tls1.h>
#include "emsguard.h"
#include "harness.h"
#include "harness_check.h"

#define MAX_STEPS 200

/* ---- contexts ------------------------------------------------------------- */

/* libssl's own account of the flag (SSL_SESSION_print), independent of emsguard. */
static int printed_ems(const SSL_SESSION *sess)
{
    static const char yes[] = "Extended master secret: yes";
    BIO *b = BIO_new(BIO_s_mem());
    char *text = NULL;
    long n;
    int ems;

    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(SSL_SESSION_print(b, sess), 1);
    n = BIO_get_mem_data(b, &text);
    ems = n > 0 && memmem(text, (size_t)n, yes, sizeof(yes) - 1) != NULL;
    BIO_free(b);
    return ems;
}

/* ---- forged sessions ------------------------------------------------------ */

static const unsigned char forged_id[32] = "attacker-chosen session ID.....";
static const unsigned char server_sid_ctx[] = "eg"; /* the harness's servers */

/*
 * A copy of |sess| with the EMS flag cleared in its encoding, as a writer of
 * a shared cache or session store makes it: the session flags are field [13]
 * EXPLICIT INTEGER, AD 03 02 01 01 for EMS.  Same master secret, same
 * everything else.
 */
static SSL_SESSION *without_ems_flag(const SSL_SESSION *sess)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    int len = i2d_SSL_SESSION((SSL_SESSION *)sess, &der), j, cleared = 0;
    SSL_SESSION *copy;

    ck_assert_int_gt(len, 0);
    for (j = 0; j + 5 <= len && !cleared; j++)
        if (der[j] == 0xad && der[j + 1] == 0x03 && der[j + 2] == 0x02
            && der[j + 3] == 0x01 && der[j + 4] == 0x01) {
            der[j + 4] = 0x00;
            cleared = 1;
        }
    ck_assert_msg(cleared, "the session has no EMS flag to clear");
    p = der;
    copy = d2i_SSL_SESSION(NULL, &p, len);
    OPENSSL_free(der);
    ck_assert_ptr_nonnull(copy);
    ck_assert_int_eq(printed_ems(copy), 0);
    return copy;
}

/* The same, under |id|, and for a server's cache when |server_side|. */
static SSL_SESSION *forged_copy(const SSL_SESSION *genuine, const unsigned char *id,
    unsigned int id_len, int server_side)
{
    SSL_SESSION *f = without_ems_flag(genuine);

    ck_assert_int_eq(SSL_SESSION_set1_id(f, id, id_len), 1);
    if (server_side)
        ck_assert_int_eq(SSL_SESSION_set1_id_context(f, server_sid_ctx, 2), 1);
    return f;
}

/*
 * A session assembled from |genuine|'s master secret and cipher under a new
 * ID: no flags, no ticket (a client offering it sends only the ID).
 */
static SSL_SESSION *rebuilt_without_ems(const SSL_SESSION *genuine, int server_side)
{
    unsigned char key[SSL_MAX_MASTER_KEY_LENGTH];
    size_t key_len = SSL_SESSION_get_master_key(genuine, key, sizeof(key));
    SSL_SESSION *f = SSL_SESSION_new();

    ck_assert_ptr_nonnull(f);
    ck_assert(key_len > 0 && SSL_SESSION_set1_master_key(f, key, key_len)
        && SSL_SESSION_set_cipher(f, SSL_SESSION_get0_cipher(genuine))
        && SSL_SESSION_set_protocol_version(f, TLS1_2_VERSION)
        && SSL_SESSION_set1_id(f, forged_id, sizeof(forged_id)));
    if (server_side)
        ck_assert_int_eq(SSL_SESSION_set1_id_context(f, server_sid_ctx, 2), 1);
    OPENSSL_cleanse(key, sizeof(key));
    ck_assert_int_eq(printed_ems(f), 0);
    return f;
}

/* ---- N2, server: external cache ------------------------------------------- */

/*
 * A writer of the fleet's external cache copies a genuine EMS session,
 * clears its EMS flag, and stores it under a new session ID (_i == 0) or in
 * place of the genuine entry (_i == 1); a client without EMS offers it.
 */
START_TEST(test_forged_external_cache_entry)
{
    int in_place = _i;
    SSL_CTX *srv = hs_policy_server(HS_MECH_EXT_CACHE, 0), *stock = hs_server(HS_MECH_EXT_CACHE, 0);
    SSL_CTX *good = hs_client(0), *legacy = hs_client(HS_NO_EMS);
    SSL_SESSION *fs, *fc;
    const unsigned char *id;
    unsigned int id_len;
    hs_result r1, rc, r2, r3;

    ck_assert_msg(hs_handshake(srv, good, NULL, &r1) && r1.ems, "genuine EMS handshake failed");
    ck_assert_uint_eq(hs_ext_cache_size(), 1);
    ck_assert_int_eq(hs_session_ems(r1.session), 1);
    if (in_place) {
        id = SSL_SESSION_get_id(r1.session, &id_len);
    } else {
        id = forged_id;
        id_len = sizeof(forged_id);
    }
    fs = forged_copy(r1.session, id, id_len, 1);
    fc = forged_copy(r1.session, id, id_len, 0);
    ck_assert_int_eq(hs_ext_cache_put(fs), 1);
    ck_assert_uint_eq(hs_ext_cache_size(), in_place ? 1 : 2);

    /* Control: a stock member of the fleet resumes it, without EMS. */
    ck_assert(hs_handshake(stock, legacy, fc, &rc));
    ck_assert_msg(rc.reused && !rc.ems, "control: the stock server did not resume the copy");

    ck_assert(hs_handshake(srv, legacy, fc, &r2));
    ck_assert_msg(!r2.reused && !r2.server_reused,
        "the policy server resumed a session whose flag says no EMS (ems=%d)", r2.ems);
    ck_assert_uint_eq(hs_counter(srv, EMSGUARD_CNT_REFUSED_NO_EMS), 1);
    ck_assert_uint_eq(hs_counter(srv, EMSGUARD_CNT_POLICY_BYPASSED), 0);
    if (!in_place) {
        /* The genuine entry is untouched and must still resume. */
        ck_assert(hs_handshake(srv, good, r1.session, &r3));
        ck_assert_msg(r3.reused && r3.ems,
            "the genuine EMS session was refused after the forged copy was offered");
        ck_assert_uint_eq(hs_counter(srv, EMSGUARD_CNT_REFUSED_NO_EMS), 1);
        hs_result_clear(&r3);
    }
    ck_assert_uint_eq(hs_counter(srv, EMSGUARD_CNT_POLICY_BYPASSED), 0);
    ck_assert_msg(hs_session_ems(fc) == 0,
        "EMSGUARD_SESSION_has_ems says EMS for a session whose flag says no EMS");
    SSL_SESSION_free(fs);
    SSL_SESSION_free(fc);
    hs_result_clear(&r1);
    hs_result_clear(&rc);
    hs_result_clear(&r2);
    SSL_CTX_free(legacy);
    SSL_CTX_free(good);
    SSL_CTX_free(stock);
    SSL_CTX_free(srv);
}
END_TEST

/*
 * With EMS in the ClientHello libssl itself refuses the flag-0 copy (a full
 * handshake, ssl_sess.c ssl_get_prev_session), and the genuine session keeps
 * resuming.  Holds before and after the fix; here as the other half of the
 * picture: the memo's "EMS" is harmless exactly there.
 */
START_TEST(test_forged_entry_with_ems_hello)
{
    SSL_CTX *srv = hs_policy_server(HS_MECH_EXT_CACHE, 0), *good = hs_client(0);
    SSL_SESSION *fs, *fc;
    hs_result r1, r2, r3;

    ck_assert(hs_handshake(srv, good, NULL, &r1) && r1.ems);
    fs = forged_copy(r1.session, forged_id, sizeof(forged_id), 1);
    fc = forged_copy(r1.session, forged_id, sizeof(forged_id), 0);
    ck_assert_int_eq(hs_ext_cache_put(fs), 1);
    ck_assert(hs_handshake(srv, good, fc, &r2));
    ck_assert_msg(!r2.reused && r2.ems, "a flag-0 session resumed in an EMS handshake");
    ck_assert(hs_handshake(srv, good, r1.session, &r3));
    ck_assert_msg(r3.reused && r3.ems, "the genuine EMS session was refused");
    ck_assert_uint_eq(hs_counter(srv, EMSGUARD_CNT_POLICY_BYPASSED), 0);
    SSL_SESSION_free(fs);
    SSL_SESSION_free(fc);
    hs_result_clear(&r1);
    hs_result_clear(&r2);
    hs_result_clear(&r3);
    SSL_CTX_free(good);
    SSL_CTX_free(srv);
}
END_TEST

/* ---- N2, server: tickets -------------------------------------------------- */

/*
 * A stock member of the fleet shares the ticket keys.  It is handed a
 * session with a genuine EMS session's secret and no EMS flag, resumes it
 * for a client without EMS and issues a ticket for it; that ticket is then
 * offered to the policy server.
 */
START_TEST(test_forged_ticket_from_fleet_member)
{
    SSL_CTX *srv = hs_policy_server(HS_MECH_TICKET, 0), *member = hs_server(HS_MECH_TICKET, 0);
    SSL_CTX *good = hs_client(0), *legacy = hs_client(HS_NO_EMS);
    SSL_SESSION *fs, *fc;
    hs_result r1, r2, r3, r4;

    SSL_CTX_set_session_cache_mode(member, SSL_SESS_CACHE_SERVER);
    ck_assert(hs_handshake(srv, good, NULL, &r1) && r1.ems && r1.server_sent_ticket);
    fs = rebuilt_without_ems(r1.session, 1);
    fc = rebuilt_without_ems(r1.session, 0);
    ck_assert_int_eq(SSL_CTX_add_session(member, fs), 1);
    ck_assert(hs_handshake(member, legacy, fc, &r2));
    ck_assert_msg(r2.reused && !r2.ems && r2.server_sent_ticket,
        "control: the stock member did not resume the session and issue a ticket "
        "(reused=%d ems=%d ticket=%d)", r2.reused, r2.ems, r2.server_sent_ticket);
    ck_assert_int_eq(printed_ems(r2.session), 0);

    ck_assert(hs_handshake(srv, legacy, r2.session, &r3));
    ck_assert_msg(r3.hello_offered, "the forged ticket was not offered");
    ck_assert_msg(!r3.reused && !r3.server_reused,
        "the policy server resumed a ticket whose session has no EMS flag");
    ck_assert_uint_eq(hs_counter(srv, EMSGUARD_CNT_REFUSED_NO_EMS), 1);

    ck_assert(hs_handshake(srv, good, r1.session, &r4));
    ck_assert_msg(r4.reused && r4.ems,
        "the genuine EMS ticket was refused after the forged ticket was offered");
    ck_assert_uint_eq(hs_counter(srv, EMSGUARD_CNT_POLICY_BYPASSED), 0);
    SSL_SESSION_free(fs);
    SSL_SESSION_free(fc);
    hs_result_clear(&r1);
    hs_result_clear(&r2);
    hs_result_clear(&r3);
    hs_result_clear(&r4);
    SSL_CTX_free(legacy);
    SSL_CTX_free(good);
    SSL_CTX_free(member);
    SSL_CTX_free(srv);
}
END_TEST

/*
 * AllowLegacyResumption=1 on one server resumes the flag-0 copy, as it
 * should; that resumption must not make a default-policy server that shares
 * the cache (and the process) refuse the genuine EMS session.
 */
START_TEST(test_legacy_resumption_does_not_poison_server)
{
    SSL_CTX *strict = hs_policy_server(HS_MECH_EXT_CACHE, 0);
    SSL_CTX *lenient = hs_server(HS_MECH_EXT_CACHE, 0);
    SSL_CTX *good = hs_client(0), *legacy = hs_client(HS_NO_EMS);
    SSL_SESSION *fs, *fc;
    hs_result r1, r2, r3;

    hs_enable_with(lenient, EMSGUARD_ALLOW_LEGACY_RESUMPTION, "1", NULL);
    ck_assert(hs_handshake(strict, good, NULL, &r1) && r1.ems);
    fs = forged_copy(r1.session, forged_id, sizeof(forged_id), 1);
    fc = forged_copy(r1.session, forged_id, sizeof(forged_id), 0);
    ck_assert_int_eq(hs_ext_cache_put(fs), 1);
    ck_assert(hs_handshake(lenient, legacy, fc, &r2));
    ck_assert_msg(r2.reused && !r2.ems, "AllowLegacyResumption=1 did not resume the copy");
    ck_assert(hs_handshake(strict, good, r1.session, &r3));
    ck_assert_msg(r3.reused && r3.ems,
        "a legacy resumption of a forged copy made the genuine EMS session refused");
    ck_assert_uint_eq(hs_counter(strict, EMSGUARD_CNT_REFUSED_NO_EMS), 0);
    SSL_SESSION_free(fs);
    SSL_SESSION_free(fc);
    hs_result_clear(&r1);
    hs_result_clear(&r2);
    hs_result_clear(&r3);
    SSL_CTX_free(legacy);
    SSL_CTX_free(good);
    SSL_CTX_free(lenient);
    SSL_CTX_free(strict);
}
END_TEST

/* ---- N2, client ----------------------------------------------------------- */

/*
 * The client side of the same copy: the client gets a genuine EMS session
 * from an EMS server, and later loads a copy with the flag cleared from its
 * session store (which an attacker can write).  A legacy server that holds
 * the same copy would resume it without EMS; the policy client must not
 * offer it.
 */
START_TEST(test_client_forged_session_not_offered)
{
    SSL_CTX *srv = hs_server(HS_MECH_SESSION_ID, 0);
    SSL_CTX *lsrv = hs_server(HS_MECH_SESSION_ID, HS_NO_EMS);
    SSL_CTX *cctx = hs_policy_client(0), *stock = hs_client(0);
    SSL_SESSION *fs, *fc;
    const unsigned char *id;
    unsigned int id_len;
    hs_result r1, rc, r2, r3;

    ck_assert(hs_handshake(srv, cctx, NULL, &r1) && r1.ems);
    id = SSL_SESSION_get_id(r1.session, &id_len);
    fs = forged_copy(r1.session, id, id_len, 1);
    fc = forged_copy(r1.session, id, id_len, 0);
    ck_assert_int_eq(SSL_CTX_add_session(lsrv, fs), 1);

    ck_assert(hs_handshake(lsrv, stock, fc, &rc));
    ck_assert_msg(rc.reused && !rc.ems, "control: a stock client did not resume the copy");

    ck_assert(hs_handshake(lsrv, cctx, fc, &r2));
    ck_assert_msg(!r2.hello_offered && !r2.reused,
        "the policy client offered a session whose flag says no EMS (reused=%d)", r2.reused);
    ck_assert_uint_eq(hs_counter(cctx, EMSGUARD_CNT_REFUSED_NO_EMS), 1);

    ck_assert(hs_handshake(srv, cctx, r1.session, &r3));
    ck_assert_msg(r3.reused && r3.ems, "the genuine EMS session was not resumed");
    ck_assert_uint_eq(hs_counter(cctx, EMSGUARD_CNT_POLICY_BYPASSED), 0);
    ck_assert_int_eq(hs_session_ems(fc), 0);
    SSL_SESSION_free(fs);
    SSL_SESSION_free(fc);
    hs_result_clear(&r1);
    hs_result_clear(&rc);
    hs_result_clear(&r2);
    hs_result_clear(&r3);
    SSL_CTX_free(stock);
    SSL_CTX_free(cctx);
    SSL_CTX_free(lsrv);
    SSL_CTX_free(srv);
}
END_TEST

static void count_client_hellos(int write_p, int version, int content_type,
    const void *buf, size_t len, SSL *ssl, void *arg)
{
    (void)version;
    (void)ssl;
    if (write_p && content_type == SSL3_RT_HANDSHAKE && len > 0
        && ((const unsigned char *)buf)[0] == SSL3_MT_CLIENT_HELLO)
        ++*(int *)arg;
}

/* The server sends HelloRequest; 1 when both ends completed the new handshake. */
static int renegotiate_by_server(SSL *c, SSL *s)
{
    int i, cr = 0, sr = 0, r;

    ck_assert_int_eq(SSL_renegotiate(s), 1);
    r = SSL_do_handshake(s);
    ck_assert(r == 1 || SSL_get_error(s, r) == SSL_ERROR_WANT_READ);
    for (i = 0; i < MAX_STEPS; i++) {
        cr = hs_io_step(c);
        sr = hs_io_step(s);
        if (cr < 0 || sr < 0)
            break;
        if (!SSL_in_init(c) && !SSL_in_init(s) && !SSL_renegotiate_pending(s)
            && !SSL_renegotiate_pending(c) && BIO_ctrl_pending(SSL_get_rbio(c)) == 0
            && BIO_ctrl_pending(SSL_get_rbio(s)) == 0)
            return 1;
    }
    ERR_clear_error();
    return 0;
}

/*
 * The renegotiation path (withhold_session_at_renegotiation): a connection
 * holds the flag-0 copy as its session (it resumed it before the policy was
 * enabled on its SSL_CTX); the legacy server's HelloRequest must not get
 * the copy offered again.
 */
START_TEST(test_client_forged_session_at_renegotiation)
{
    SSL_CTX *srv = hs_server(HS_MECH_SESSION_ID, 0);
    SSL_CTX *lsrv = hs_server(HS_MECH_SESSION_ID, HS_NO_EMS);
    SSL_CTX *cctx = hs_policy_client(0), *late = hs_client(0);
    SSL_SESSION *fs, *fc;
    const unsigned char *id;
    unsigned int id_len;
    hs_result r1;
    SSL *c, *s;
    int hellos = 0;

    ck_assert(hs_handshake(srv, cctx, NULL, &r1) && r1.ems);
    id = SSL_SESSION_get_id(r1.session, &id_len);
    fs = forged_copy(r1.session, id, id_len, 1);
    fc = forged_copy(r1.session, id, id_len, 0);
    ck_assert_int_eq(SSL_CTX_add_session(lsrv, fs), 1);

    ck_assert_ptr_nonnull(c = SSL_new(late));
    ck_assert_ptr_nonnull(s = SSL_new(lsrv));
    SSL_set_msg_callback(c, count_client_hellos);
    SSL_set_msg_callback_arg(c, &hellos);
    ck_assert_int_eq(SSL_set_session(c, fc), 1);
    ck_assert_msg(hs_connect(c, s) == 1, "first handshake failed");
    ck_assert_msg(SSL_session_reused(c) && SSL_get_extms_support(c) == 0,
        "control: the stock connection did not resume the copy");
    hs_enable_with(late, NULL);

    ck_assert_msg(renegotiate_by_server(c, s) == 1, "renegotiation did not complete");
    ck_assert_int_eq(hellos, 2);
    ck_assert_msg(!SSL_session_reused(c) && !SSL_session_reused(s),
        "the renegotiation resumed a session whose flag says no EMS");
    ck_assert_uint_eq(hs_counter(late, EMSGUARD_CNT_REFUSED_NO_EMS), 1);
    ck_assert_uint_eq(hs_counter(late, EMSGUARD_CNT_POLICY_BYPASSED), 0);
    SSL_shutdown(c);
    SSL_shutdown(s);
    SSL_free(c);
    SSL_free(s);
    ERR_clear_error();
    SSL_SESSION_free(fs);
    SSL_SESSION_free(fc);
    hs_result_clear(&r1);
    SSL_CTX_free(late);
    SSL_CTX_free(cctx);
    SSL_CTX_free(lsrv);
    SSL_CTX_free(srv);
}
END_TEST

/*
 * AllowLegacyResumption=1 on one client resumes the flag-0 copy with a
 * legacy server; the default-policy client of the same process must still
 * offer the genuine EMS session.  (Held before the fix too: the client
 * noted the answer it had offered on, not what the handshake showed.  Kept
 * so that no later change to the notes at handshake end breaks it.)
 */
START_TEST(test_legacy_resumption_does_not_poison_client)
{
    SSL_CTX *srv = hs_server(HS_MECH_SESSION_ID, 0);
    SSL_CTX *lsrv = hs_server(HS_MECH_SESSION_ID, HS_NO_EMS);
    SSL_CTX *strict = hs_policy_client(0), *lenient = hs_client(0);
    SSL_SESSION *fs, *fc;
    const unsigned char *id;
    unsigned int id_len;
    hs_result r1, r2, r3;

    hs_enable_with(lenient, EMSGUARD_ALLOW_LEGACY_RESUMPTION, "1", NULL);
    ck_assert(hs_handshake(srv, strict, NULL, &r1) && r1.ems);
    id = SSL_SESSION_get_id(r1.session, &id_len);
    fs = forged_copy(r1.session, id, id_len, 1);
    fc = forged_copy(r1.session, id, id_len, 0);
    ck_assert_int_eq(SSL_CTX_add_session(lsrv, fs), 1);
    ck_assert(hs_handshake(lsrv, lenient, fc, &r2));
    ck_assert_msg(r2.reused && !r2.ems, "AllowLegacyResumption=1 did not resume the copy");
    ck_assert(hs_handshake(srv, strict, r1.session, &r3));
    ck_assert_msg(r3.hello_offered && r3.reused && r3.ems,
        "a legacy resumption of a forged copy kept the genuine EMS session from being offered");
    ck_assert_uint_eq(hs_counter(strict, EMSGUARD_CNT_REFUSED_NO_EMS), 0);
    SSL_SESSION_free(fs);
    SSL_SESSION_free(fc);
    hs_result_clear(&r1);
    hs_result_clear(&r2);
    hs_result_clear(&r3);
    SSL_CTX_free(lenient);
    SSL_CTX_free(strict);
    SSL_CTX_free(lsrv);
    SSL_CTX_free(srv);
}
END_TEST

/* EMSGUARD_SESSION_has_ems() answers for the object, as libssl reads it. */
START_TEST(test_has_ems_describes_the_object)
{
    SSL_CTX *srv = hs_policy_server(HS_MECH_SESSION_ID, 0), *cctx = hs_policy_client(0);
    SSL_CTX *legacy = hs_client(HS_NO_EMS);
    SSL_SESSION *copy, *rebuilt;
    hs_result r1, r2;

    ck_assert(hs_handshake(srv, cctx, NULL, &r1) && r1.ems);
    ck_assert(hs_handshake(srv, legacy, NULL, &r2) && !r2.ems);
    ck_assert_int_eq(hs_session_ems(r1.session), 1);
    ck_assert_int_eq(hs_session_ems(r2.session), 0);
    copy = without_ems_flag(r1.session);
    rebuilt = rebuilt_without_ems(r1.session, 0);
    ck_assert_int_eq(hs_session_ems(copy), 0);
    ck_assert_int_eq(hs_session_ems(rebuilt), 0);
    /* Asked again (an answer remembered for the object must be its own). */
    ck_assert_int_eq(hs_session_ems(copy), 0);
    ck_assert_int_eq(hs_session_ems(r1.session), 1);
    SSL_SESSION_free(copy);
    SSL_SESSION_free(rebuilt);
    hs_result_clear(&r1);
    hs_result_clear(&r2);
    SSL_CTX_free(legacy);
    SSL_CTX_free(cctx);
    SSL_CTX_free(srv);
}
END_TEST

/* ---- N3: chaining to emsguard's own callbacks ------------------------------ */

/* The test's own stop, so that an unbounded recursion fails instead of crashing. */
#define DEPTH_LIMIT 40

static int depth, max_depth, calls, starts, dones;

static void reset_chain_counts(void)
{
    depth = max_depth = calls = starts = dones = 0;
}

static int enter(void)
{
    calls++;
    if (++depth > max_depth)
        max_depth = depth;
    return depth < DEPTH_LIMIT;
}

static void (*prev_info)(const SSL *, int, int);

static void chained_info(const SSL *ssl, int where, int ret)
{
    if (where & SSL_CB_HANDSHAKE_START)
        starts++;
    if (where & SSL_CB_HANDSHAKE_DONE)
        dones++;
    if (enter() && prev_info != NULL)
        prev_info(ssl, where, ret);
    depth--;
}

/* How many info events a stock server's callback sees for one full handshake. */
static int stock_info_events(void)
{
    SSL_CTX *srv = hs_server(HS_MECH_SESSION_ID, 0), *cctx = hs_client(0);
    hs_result r;
    int n;

    prev_info = NULL;
    SSL_CTX_set_info_callback(srv, chained_info);
    reset_chain_counts();
    ck_assert(hs_handshake(srv, cctx, NULL, &r));
    n = calls;
    ck_assert_int_eq(max_depth, 1);
    hs_result_clear(&r);
    SSL_CTX_free(cctx);
    SSL_CTX_free(srv);
    return n;
}

START_TEST(test_chain_ctx_info_callback)
{
    int stock_events = stock_info_events();
    SSL_CTX *srv = hs_policy_server(HS_MECH_SESSION_ID, 0), *cctx = hs_client(0);
    hs_result r;

    prev_info = SSL_CTX_get_info_callback(srv);
    ck_assert_ptr_nonnull(prev_info); /* emsguard's */
    ck_assert_int_eq(EMSGUARD_CTX_set_info_callback(srv, chained_info), 1);
    reset_chain_counts();
    ck_assert(hs_handshake(srv, cctx, NULL, &r));
    ck_assert_msg(max_depth == 1, "the chained info callback recursed (depth %d)", max_depth);
    ck_assert_int_eq(starts, 1);
    ck_assert_int_eq(dones, 1);
    ck_assert_int_eq(calls, stock_events);
    ck_assert_uint_eq(hs_counter(srv, EMSGUARD_CNT_FULL_HANDSHAKES), 1);
    hs_result_clear(&r);
    SSL_CTX_free(cctx);
    SSL_CTX_free(srv);
}
END_TEST

/* Client role, per-SSL: a second library chains onto the first one's callback. */
static int first_calls;

static void first_info(const SSL *ssl, int where, int ret)
{
    (void)ssl;
    (void)where;
    (void)ret;
    first_calls++;
}

START_TEST(test_chain_ssl_info_callback)
{
    SSL_CTX *srv = hs_server(HS_MECH_SESSION_ID, 0), *cctx = hs_policy_client(0);
    SSL *c, *s;

    ck_assert_ptr_nonnull(c = SSL_new(cctx));
    ck_assert_ptr_nonnull(s = SSL_new(srv));
    ck_assert_int_eq(EMSGUARD_set_info_callback(c, first_info), 1);
    prev_info = SSL_get_info_callback(c);
    ck_assert_ptr_nonnull(prev_info); /* emsguard's */
    ck_assert_int_eq(EMSGUARD_set_info_callback(c, chained_info), 1);
    reset_chain_counts();
    ck_assert(hs_connect(c, s) == 1);
    ck_assert_msg(max_depth == 1, "the chained info callback recursed (depth %d)", max_depth);
    ck_assert_int_eq(starts, 1);
    ck_assert_int_eq(dones, 1);
    ck_assert_uint_eq(hs_counter(cctx, EMSGUARD_CNT_FULL_HANDSHAKES), 1);
    SSL_shutdown(c);
    SSL_shutdown(s);
    SSL_free(c);
    SSL_free(s);
    ERR_clear_error();
    SSL_CTX_free(cctx);
    SSL_CTX_free(srv);
}
END_TEST

static int (*prev_new)(SSL *, SSL_SESSION *);

static int chained_new(SSL *ssl, SSL_SESSION *sess)
{
    int r = 0;

    if (enter() && prev_new != NULL)
        r = prev_new(ssl, sess);
    depth--;
    return r;
}

START_TEST(test_chain_new_session_callback)
{
    SSL_CTX *srv = hs_policy_server(HS_MECH_SESSION_ID, 0), *cctx = hs_client(0);
    hs_result r1, r2;

    prev_new = SSL_CTX_sess_get_new_cb(srv);
    ck_assert_ptr_nonnull(prev_new); /* emsguard's */
    ck_assert_int_eq(EMSGUARD_CTX_sess_set_new_cb(srv, chained_new), 1);
    reset_chain_counts();
    ck_assert(hs_handshake(srv, cctx, NULL, &r1) && r1.ems);
    ck_assert_msg(max_depth == 1, "the chained new-session callback recursed (depth %d)",
        max_depth);
    ck_assert_int_eq(calls, 1);
    ck_assert(hs_handshake(srv, cctx, r1.session, &r2));
    ck_assert_msg(r2.reused, "the EMS session did not resume");
    ck_assert_int_eq(calls, 1);
    hs_result_clear(&r1);
    hs_result_clear(&r2);
    SSL_CTX_free(cctx);
    SSL_CTX_free(srv);
}
END_TEST

/* The application's own one-entry store, asked after the previous callback. */
static SSL_SESSION *stored;
static SSL_SESSION *(*prev_get)(SSL *, const unsigned char *, int, int *);

static int store_new(SSL *ssl, SSL_SESSION *sess)
{
    (void)ssl;
    SSL_SESSION_free(stored);
    stored = sess;
    return 1; /* keeps libssl's reference */
}

static SSL_SESSION *chained_get(SSL *ssl, const unsigned char *id, int id_len, int *copy)
{
    SSL_SESSION *sess = NULL;
    unsigned int stored_len;
    const unsigned char *stored_id;

    if (enter() && prev_get != NULL)
        sess = prev_get(ssl, id, id_len, copy);
    depth--;
    if (sess != NULL || stored == NULL)
        return sess;
    stored_id = SSL_SESSION_get_id(stored, &stored_len);
    if (stored_len != (unsigned int)id_len || memcmp(stored_id, id, stored_len) != 0)
        return NULL;
    *copy = 1; /* libssl takes its own reference */
    return stored;
}

START_TEST(test_chain_get_session_callback)
{
    SSL_CTX *srv = hs_server(HS_MECH_SESSION_ID, 0), *cctx = hs_client(0);
    hs_result r1, r2;

    SSL_CTX_set_session_cache_mode(srv, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
    hs_enable_with(srv, NULL);
    ck_assert_int_eq(EMSGUARD_CTX_sess_set_new_cb(srv, store_new), 1);
    prev_get = SSL_CTX_sess_get_get_cb(srv);
    ck_assert_ptr_nonnull(prev_get); /* emsguard's */
    ck_assert_int_eq(EMSGUARD_CTX_sess_set_get_cb(srv, chained_get), 1);
    ck_assert(hs_handshake(srv, cctx, NULL, &r1) && r1.ems);
    ck_assert_ptr_nonnull(stored);
    reset_chain_counts();
    ck_assert(hs_handshake(srv, cctx, r1.session, &r2));
    ck_assert_msg(max_depth == 1, "the chained get-session callback recursed (depth %d)",
        max_depth);
    ck_assert_int_eq(calls, 1);
    ck_assert_msg(r2.reused, "the EMS session did not resume from the application's store");
    hs_result_clear(&r1);
    hs_result_clear(&r2);
    SSL_SESSION_free(stored);
    stored = NULL;
    SSL_CTX_free(cctx);
    SSL_CTX_free(srv);
}
END_TEST

#define DH_CLIENT_MIN "KeyExchangeAlgorithms\\Diffie-Hellman\\ClientMinKeyBitLength"
#define PKCS_CLIENT_MIN "KeyExchangeAlgorithms\\PKCS\\ClientMinKeyBitLength"

typedef int (*security_fn)(const SSL *, const SSL_CTX *, int, int, int, void *, void *);
static security_fn prev_security;

static int chained_security(const SSL *ssl, const SSL_CTX *ctx, int op, int bits,
    int nid, void *other, void *ex)
{
    int r = 1;

    if (enter() && prev_security != NULL)
        r = prev_security(ssl, ctx, op, bits, nid, other, ex);
    depth--;
    return r;
}

/*
 * A ctx set up like an enabled one: its callback chains to the security
 * callback emsguard installed on the first ctx, and then it is enabled too.
 */
START_TEST(test_chain_security_callback)
{
    SSL_CTX *srv = hs_server(HS_MECH_SESSION_ID, 0), *first = hs_client(0), *second = hs_client(0);
    hs_result r;

    hs_enable_with(first, DH_CLIENT_MIN, "2048", NULL);
    prev_security = SSL_CTX_get_security_callback(first);
    ck_assert_ptr_nonnull(prev_security);
    SSL_CTX_set_security_callback(second, chained_security);
    hs_enable_with(second, DH_CLIENT_MIN, "2048", NULL);
    /*
     * emsguard's own in place of the application's (which it now calls); not
     * the same function as on |first|, whose application callback is libssl's.
     */
    ck_assert(SSL_CTX_get_security_callback(second) != chained_security);
    ck_assert(hs_same_object(SSL_CTX_get_security_callback(second), prev_security));
    reset_chain_counts();
    ck_assert(hs_handshake(srv, second, NULL, &r));
    ck_assert_int_gt(calls, 0);
    ck_assert_msg(max_depth == 1, "the chained security callback recursed (depth %d)",
        max_depth);
    hs_result_clear(&r);
    SSL_CTX_free(second);
    SSL_CTX_free(first);
    SSL_CTX_free(srv);
}
END_TEST

static SSL_verify_cb prev_verify;

static int chained_verify(int ok, X509_STORE_CTX *store)
{
    if (enter() && prev_verify != NULL)
        ok = prev_verify(ok, store);
    depth--;
    return 1; /* the harness's certificate is self-signed */
}

START_TEST(test_chain_verify_callback)
{
    SSL_CTX *srv = hs_server(HS_MECH_SESSION_ID, 0), *first = hs_client(0), *second = hs_client(0);
    hs_result r;

    hs_enable_with(first, PKCS_CLIENT_MIN, "2048", NULL);
    prev_verify = SSL_CTX_get_verify_callback(first);
    ck_assert_ptr_nonnull(prev_verify);
    SSL_CTX_set_verify(second, SSL_VERIFY_PEER, chained_verify);
    hs_enable_with(second, PKCS_CLIENT_MIN, "2048", NULL);
    ck_assert(SSL_CTX_get_verify_callback(second) == prev_verify); /* emsguard's */
    reset_chain_counts();
    ck_assert(hs_handshake(srv, second, NULL, &r));
    ck_assert_int_gt(calls, 0);
    ck_assert_msg(max_depth == 1, "the chained verify callback recursed (depth %d)",
        max_depth);
    hs_result_clear(&r);
    SSL_CTX_free(second);
    SSL_CTX_free(first);
    SSL_CTX_free(srv);
}
END_TEST

/* ---- suite ---------------------------------------------------------------- */

static void setup(void)
{
    hs_ext_cache_reset();
    hs_set_sni(NULL);
    reset_chain_counts();
}

static Suite *memo_paths_suite(void)
{
    Suite *s = suite_create("emsguard-memo-paths");
    TCase *tc;

    tc = tcase_create("memo");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_loop_test(tc, test_forged_external_cache_entry, 0, 2);
    tcase_add_test(tc, test_forged_entry_with_ems_hello);
    tcase_add_test(tc, test_forged_ticket_from_fleet_member);
    tcase_add_test(tc, test_legacy_resumption_does_not_poison_server);
    tcase_add_test(tc, test_client_forged_session_not_offered);
    tcase_add_test(tc, test_client_forged_session_at_renegotiation);
    tcase_add_test(tc, test_legacy_resumption_does_not_poison_client);
    tcase_add_test(tc, test_has_ems_describes_the_object);
    suite_add_tcase(s, tc);

    tc = tcase_create("chain");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_chain_ctx_info_callback);
    tcase_add_test(tc, test_chain_ssl_info_callback);
    tcase_add_test(tc, test_chain_new_session_callback);
    tcase_add_test(tc, test_chain_get_session_callback);
    tcase_add_test(tc, test_chain_security_callback);
    tcase_add_test(tc, test_chain_verify_callback);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return hs_run_suite(memo_paths_suite);
}
