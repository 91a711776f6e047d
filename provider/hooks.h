/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the libssl hooks (provider/hooks_*.c) share, and nothing else does:
 * the policy state of an SSL_CTX (struct eg_ctx_state), the per-connection
 * CONN_* flags and the table of who sets, reads and clears each, the small
 * helpers every hook needs inline, and the functions one hooks file offers
 * another.  The storage of both records is records.c, which knows neither
 * struct nor flag.
 *
 * The files, each calling only files below it (never one that calls it):
 *   hooks_enable.c, hooks_chain.c    the public API: install, chain
 *   hooks_handshake.c                the info callback: start, done, alerts
 *   hooks_hello.c                    the ClientHello callback, TLS 1.3 pin
 *   hooks_client.c                   what a client offers, Require at start
 *   hooks_server.c                   sessions, tickets, SNI switch
 *   hooks_schannel.c                 Schannel values held per connection
 *   hooks_security.c                 security and verify callbacks
 *   hooks_refused.c, hooks_dhe.c     refusing a completed handshake; DHE
 *   hooks_log.c, hooks_state.c       log lines; per-SSL_CTX state, counters
 *   records.c, peer_text.c, ...      storage, peer text (internal.h)
 */
#ifndef EMSGUARD_HOOKS_H
#define EMSGUARD_HOOKS_H

#include <stdatomic.h>
#include <stdint.h>
#include <openssl/ssl.h>
#include <openssl/tls1.h>
#include "internal.h"

/* Internal to libemsguard: direct calls between the hooks files. */
#pragma GCC visibility push(hidden)

typedef int (*new_session_fn)(SSL *, SSL_SESSION *);
typedef SSL_SESSION *(*get_session_fn)(SSL *, const unsigned char *, int, int *);
typedef emsguard_info_fn info_fn;
typedef int (*security_fn)(const SSL *, const SSL_CTX *, int, int, int, void *, void *);

struct eg_ctx_state {
    EMSGUARD_POLICY policy;
    SSL_CTX *ctx;
    /* The application may replace these while handshakes run. */
    _Atomic(new_session_fn) app_new_cb;
    _Atomic(get_session_fn) app_get_cb;
    _Atomic(info_fn) app_info_cb;
    SSL_CTX_generate_session_ticket_fn app_gen_cb;
    SSL_CTX_decrypt_session_ticket_fn app_dec_cb;
    void *app_ticket_arg;
    SSL_client_hello_cb_fn app_hello_cb;
    void *app_hello_arg;
    /* A both-roles ctx whose roles get different Schannel settings. */
    int schannel_per_ssl;
    int (*app_security_cb)(const SSL *, const SSL_CTX *, int, int, int, void *, void *);
    /* app_security_cb is libssl's own (the security level): it never calls back. */
    _Atomic int app_security_is_libssl;
    SSL_verify_cb app_verify_cb;
    /* The application's SSL_CTX_set_cert_verify_callback(), behind ours. */
    int (*app_cert_verify_cb)(X509_STORE_CTX *, void *);
    void *app_cert_verify_arg;
    _Atomic uint64_t counters[EMSGUARD_CNT_MAX];
    /* What the Schannel values hold on each connection (schannel_hold.c). */
    struct eg_schannel_hold hold;
    _Atomic unsigned hold_warned; /* EG_HELD_* bits already logged for this ctx */
};

/*
 * Per-SSL flags, in the connection's record (struct eg_conn, records.c):
 * the state of one connection across the callbacks of its handshakes, in
 * one place.  "start" below is on_handshake_start (hooks_handshake.c): it
 * sets the flags to CONN_IN_HANDSHAKE plus the bits kept across the
 * handshakes of one connection (CONN_KEPT, CONN_PREV_HELLO_EMS), those
 * only if the SSL is not new or SSL_clear()ed (SSL_in_before).  Every
 * other flag lives for one handshake.  Only the thread driving the SSL
 * touches them.
 *
 * CONN_IN_HANDSHAKE     a handshake started and has not ended
 *   set      start
 *   read     on_handshake_done (a "done" without a start is ignored),
 *            eg_server_session_at_done and check_handshake_from_other_ctx
 *            (hooks_server.c: did this ctx see the handshake start?)
 *   cleared  on_handshake_done
 * CONN_VIA_TICKET, CONN_VIA_EXTERNAL   the session offered to the server
 *            came from a ticket / the application's cache and was allowed
 *   set      server_may_resume (hooks_server.c)
 *   read     note_session_ems (memo note of a resumption), on_alert_sent
 *            (the via= of an RFC 7627 abort)
 *   cleared  start
 * CONN_ABORT_REPORTED   this handshake's abort was counted and logged
 *   set      eg_client_hello_cb (hooks_hello.c: inconsistent renegotiation,
 *            Require=1 rejection), on_alert_sent
 *   read     on_alert_sent, so an abort is counted once
 *   cleared  start
 * CONN_WITHHELD         client: a non-EMS session was not offered
 *   set      eg_filter_offered_session (hooks_client.c)
 *   read     on_handshake_done (-> emsguard_reuse_watch, the FTPS diagnosis)
 *   cleared  start
 * CONN_ESTABLISHED (KEPT)   a TLS <= 1.2 handshake completed on this connection
 *   set      on_handshake_done (recomputed at each "done")
 *   read     eg_client_hello_cb (a renegotiation: compare with the previous
 *            hello, never pin), on_handshake_done (same Finished: a refused
 *            renegotiation, not a new handshake)
 *   cleared  start of a new connection; on_handshake_done of a TLS 1.3 one
 * CONN_HELLO_SEEN, CONN_HELLO_EMS   server: this handshake's ClientHello,
 *            and whether it offered EMS
 *   set      eg_client_hello_cb (every ClientHello; HELLO_EMS rewritten)
 *   read     session_ems_at_end (no DER encoding at handshake end),
 *            check_handshake_from_other_ctx (hooks_server.c), on_alert_sent,
 *            hello_ems_of (server_may_resume: no second scan of the hello)
 *   cleared  start
 * CONN_OFFER_READ, CONN_OFFER_EMS   client: the EMS bit of the session it
 *            offers was read, and is set
 *   set      eg_filter_offered_session, eg_withhold_session_at_renegotiation
 *            (hooks_client.c)
 *   read     session_ems_at_end
 *   cleared  start; eg_require_ems_at_handshake_start when it withholds
 * CONN_SKE_READ, CONN_SKE_EMS   client, Require=1: the EMS bit of the
 *            session this full handshake is building was read at the
 *            ServerKeyExchange (server_hello_ems_once), and is set; |fp_sess|
 *            is that session
 *   set      eg_client_require_security_cb (hooks_security.c)
 *   read     the same (libssl may ask twice), session_ems_at_end
 *   cleared  start
 * CONN_PINNED_TLS13     server: this handshake's minimum version was raised
 *            to TLS 1.3 (pin_tls13, hooks_hello.c)
 *   set      eg_client_hello_cb
 *   read     eg_client_hello_cb (a second ClientHello after a
 *            HelloRetryRequest is the same handshake), on_handshake_done and
 *            on_alert_sent (-> eg_unpin_tls13 gives the minimum back)
 *   cleared  start
 * CONN_PREV_HELLO_EMS (kept)   server: the connection's last ClientHello
 *            offered EMS
 *   set      eg_client_hello_cb (also cleared there, by a hello without EMS)
 *   read     eg_client_hello_cb of the next hello (renegotiation check)
 *   cleared  start of a new connection
 * CONN_ISOLATE_NEW      server: this handshake's new session lacks EMS and
 *            the policy refuses it
 *   set      eg_isolate_refused_new_session (hooks_server.c, from
 *            eg_client_hello_cb)
 *   read     refuse_new_session_cb (libssl's not-resumable question),
 *            eg_server_session_at_done
 *   cleared  start; eg_isolate_refused_new_session (session allowed);
 *            count_isolated_session at handshake done
 * CONN_EMS_AT_EXIT      client: this full handshake's EMS bit is still to be
 *            read, noted and counted
 *   set      on_handshake_done (hooks_handshake.c)
 *   read     settle_ems_at_exit, at the SSL_CB_CONNECT_EXIT that ends the
 *            handshake call, or at the next start if that never came;
 *            settle_ems_at_free (hooks_state.c) when the SSL goes first
 *   cleared  the same
 *
 * The record's other fields: |st| is set once (keep_state, at start) and
 * released with the record (release_state, hooks_state.c); |fp_sess|/|fp|
 * are set by server_may_resume, read by note_session_ems (a client's
 * |fp_sess|: see CONN_SKE_READ and CONN_EMS_AT_EXIT), |fp_sess| cleared at
 * start; |finished_tag| is on_handshake_done's; |app_info_cb| is
 * EMSGUARD_set_info_callback()'s (hooks_chain.c), read by info_event.
 */
#define CONN_IN_HANDSHAKE 0x1
#define CONN_VIA_TICKET 0x2 /* the offered session came from a ticket */
#define CONN_VIA_EXTERNAL 0x4 /* ... from the application's cache */
#define CONN_ABORT_REPORTED 0x8
#define CONN_WITHHELD 0x10 /* client: a non-EMS session was not offered */
/* Kept across handshakes of one connection, for renegotiation checks: */
#define CONN_ESTABLISHED 0x40 /* a TLS <= 1.2 handshake completed before */
#define CONN_KEPT CONN_ESTABLISHED
/*
 * What this handshake already knows about its session's EMS bit, so that
 * handshake end need not DER-encode the session again:
 *   server: the ClientHello's EMS extension, seen by the ClientHello callback.
 *     libssl gives a new session EMS exactly when the hello had it (and EMS
 *     is not switched off), and resumes only a session that agrees with the
 *     hello, so at handshake end the two are the same.
 *   client: the EMS bit of the session it offered, which is the session of
 *     a resumed handshake.
 */
#define CONN_HELLO_SEEN 0x100
#define CONN_HELLO_EMS 0x200
#define CONN_OFFER_READ 0x400
#define CONN_OFFER_EMS 0x800
/*
 * Client, Require=1: the ServerKeyExchange check read the EMS bit of the new
 * session (from its encoding), so handshake end need not encode it again.
 * That session object keeps the bit libssl gave it from the ServerHello.
 */
#define CONN_SKE_READ 0x1000
#define CONN_SKE_EMS 0x2000
/*
 * Server, RequireExtendedMasterSecret=1: this handshake's ClientHello had
 * no usable EMS but listed TLS 1.3, so the SSL's minimum version was raised
 * to TLS 1.3 for it (pin_tls13): version negotiation gives TLS 1.3, or fails
 * and on_alert_sent reports the rejection.
 */
#define CONN_PINNED_TLS13 0x8000
/*
 * Server: the connection's last ClientHello offered EMS.  Kept across the
 * handshakes of one connection (on_handshake_start), so that a
 * renegotiation is compared with the previous ClientHello: the established
 * state says whether the server used EMS, not whether the client offered it.
 */
#define CONN_PREV_HELLO_EMS 0x10000
/* Server: this handshake's new session lacks EMS and the policy refuses it. */
#define CONN_ISOLATE_NEW 0x20000
/*
 * Client, a full handshake whose role does not require EMS: its new
 * session's EMS bit is read when the handshake call returns (the
 * SSL_CB_CONNECT_EXIT that follows "done"), where SSL_get_extms_support()
 * answers, instead of from the session's DER encoding at "done", where it
 * says -1 (libssl is still in its state machine).
 */
#define CONN_EMS_AT_EXIT 0x40000

/* ---- hooks_state.c: the state of each SSL_CTX, counters ------------------- */
/*
 * Client handshakes with CONN_EMS_AT_EXIT set, process-wide: while there
 * are none, the SSL_CB_CONNECT_EXIT of every client handshake call (each
 * resumption among them) returns at the info callback's filter.
 */
extern _Atomic unsigned eg_ems_exits_pending;
/* SSL_CTX ex_data index of struct eg_ctx_state; -1 until eg_indices_ready(). */
extern int eg_ctx_state_idx;
/* Registers the ex_data indices (ctx state, connection records) once; 1 or 0. */
int eg_indices_ready(void);
/* The connection's record, made on first use; NULL only out of memory. */
struct eg_conn *eg_conn_need(SSL *ssl);

/* No state is published before the indices exist: this needs no check. */
static inline struct eg_ctx_state *state_of_ctx(const SSL_CTX *ctx)
{
    return ctx != NULL ? emsguard_ctx_state_find(ctx) : NULL;
}

/*
 * The connection's record, NULL if it has none (yet).  No record exists
 * before the indices are, so this needs no check of its own.
 */
static inline struct eg_conn *conn_of(const SSL *ssl)
{
    return emsguard_conn_find(ssl);
}

/*
 * The state whose callbacks libssl is calling.  Session callbacks come from
 * the SSL's session context, which SNI switching (SSL_set_SSL_CTX) does not
 * change, so prefer the state recorded at handshake start over SSL_get_SSL_CTX.
 * The record holds a reference on that state's SSL_CTX (keep_state), so it
 * outlives a switch away from it and the application freeing it.
 */
static inline struct eg_ctx_state *state_of_ssl(const SSL *ssl)
{
    struct eg_conn *conn = conn_of(ssl);

    if (conn != NULL && conn->st != NULL)
        return conn->st;
    return state_of_ctx(SSL_get_SSL_CTX(ssl));
}

/*
 * Records |st| as the state the connection started with.  The SSL holds a
 * reference only on its current ctx and its initial (session) ctx: after
 * SSL_set_SSL_CTX() before the handshake and a switch away from that ctx
 * during it, the application may free the ctx whose state this is, while
 * the session callbacks still ask for it.  So the record takes its own
 * reference, dropped by release_state() (hooks_state.c) when the SSL is freed.
 * One atomic increment per connection, no allocation.
 */
static inline void keep_state(struct eg_conn *conn, struct eg_ctx_state *st)
{
    if (SSL_CTX_up_ref(st->ctx))
        conn->st = st;
}

static inline void count(struct eg_ctx_state *st, EMSGUARD_COUNTER which)
{
    atomic_fetch_add_explicit(&st->counters[which], 1, memory_order_relaxed);
    /* The process's live total for `emsguard stats`: mapped memory, no syscall. */
    atomic_fetch_add_explicit(&atomic_load_explicit(&eg_stats_hooks, memory_order_acquire)[which],
        1, memory_order_relaxed);
}

/*
 * CONN_EMS_AT_EXIT: |conn|'s handshake leaves its session's EMS bit for
 * later (hooks_handshake.c), and the one place that takes it back, so that
 * the flag and eg_ems_exits_pending always agree.
 */
static inline void ems_exit_wait(struct eg_conn *conn, const SSL_SESSION *sess)
{
    conn->flags |= CONN_EMS_AT_EXIT;
    conn->fp_sess = sess;
    atomic_fetch_add_explicit(&eg_ems_exits_pending, 1, memory_order_relaxed);
}

/* Ends the wait; the session to settle, or NULL if |ssl| no longer holds it. */
static inline const SSL_SESSION *ems_exit_take(struct eg_conn *conn, const SSL *ssl)
{
    const SSL_SESSION *sess = ssl != NULL ? SSL_get_session(ssl) : NULL;

    conn->flags &= ~(uintptr_t)CONN_EMS_AT_EXIT;
    atomic_fetch_sub_explicit(&eg_ems_exits_pending, 1, memory_order_relaxed);
    return sess != NULL && sess == conn->fp_sess ? sess : NULL;
}

static inline int is_tls13_session(const SSL_SESSION *sess)
{
    return SSL_SESSION_get_protocol_version(sess) == TLS1_3_VERSION;
}

static inline int hello_has_ems(SSL *ssl)
{
    return SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_extended_master_secret,
        NULL, NULL);
}

/*
 * hello_has_ems() as the ClientHello callback saw it for this handshake
 * (CONN_HELLO_SEEN): the same ClientHello, without scanning its extensions
 * again.  Without that note (no record, or the callback did not run), asks.
 */
static inline int hello_ems_of(SSL *ssl, const struct eg_conn *conn)
{
    if (conn != NULL && (conn->flags & CONN_HELLO_SEEN))
        return (conn->flags & CONN_HELLO_EMS) != 0;
    return hello_has_ems(ssl);
}

static inline void count_refusal(struct eg_ctx_state *st, eg_verdict v)
{
    count(st, v == EG_REFUSE_NO_EMS ? EMSGUARD_CNT_REFUSED_NO_EMS
            : v == EG_REFUSE_EMS_DISABLED ? EMSGUARD_CNT_REFUSED_EMS_DISABLED
                                          : EMSGUARD_CNT_REFUSED_UNREADABLE);
}

/* Which roles an SSL_CTX can play, from its method. */
static inline int ctx_roles(const SSL_CTX *ctx, int *server, int *client)
{
    const SSL_METHOD *m = SSL_CTX_get_ssl_method(ctx);

    *server = !(m == TLS_client_method() || m == DTLS_client_method());
    *client = !(m == TLS_server_method() || m == DTLS_server_method());
    return 1;
}

/*
 * Require=1 binds the client role when that role does EMS: with
 * DisableClientExtendedMasterSecret=1 it does none and Require=1 does not
 * apply to it, as for the server role (eg_client_hello_cb).
 */
static inline int client_role_requires_ems(const EMSGUARD_POLICY *policy)
{
    return emsguard_policy_requires_ems(policy, EG_ROLE_CLIENT);
}

/* ---- hooks_log.c: what the hooks print ------------------------------------ */
const char *eg_reason_text(eg_verdict v);
/* One event line: role, event, detail, via, peer address and SNI. */
void eg_log_event(struct eg_ctx_state *st, SSL *ssl, eg_level level,
    const char *event, const char *detail, const char *via) __attribute__((cold));
/* Says once per ctx, for each EG_HELD_* bit in |what|, what had to be held. */
void eg_warn_held(struct eg_ctx_state *st, unsigned what, const char *detail)
    __attribute__((cold));

/* ---- chaining: the application calling emsguard back ---------------------- */

/*
 * An application chains its callback the usual way:
 *     prev = SSL_CTX_get_info_callback(ctx);
 *     EMSGUARD_CTX_set_info_callback(ctx, mine);    (or the preload's setter)
 *     mine() { ...; prev(ssl, where, ret); }
 * |prev| is then emsguard's own callback, which calls |mine|, which calls
 * |prev| ... until the stack overflows.  The same with the session
 * callbacks, and with a security or verify callback that chains to
 * emsguard's callback of another ctx and is then enabled in turn.
 *
 * So each of emsguard's chaining callbacks notes, per thread, the call it
 * is making into the application's callback.  The same call coming back
 * into emsguard is the application calling |prev|: emsguard has done its
 * part in the outer call already, so it does nothing and gives the answer
 * OpenSSL gives when no callback is set (the application's callback then
 * behaves as if |prev| were OpenSSL's default).  Calls are compared by their
 * arguments, not only the SSL, so that an event libssl raises from inside
 * the application's callback (an alert the callback caused) is still
 * handled.  The getters themselves cannot be changed from here.
 * Each file with chaining callbacks keeps its own thread-local in_app_cb,
 * with a field per callback of that file.
 */
struct app_call {
    const void *obj; /* the SSL, or the SSL_CTX of a ctx-level security check */
    const void *arg; /* the session, session ID, X509_STORE_CTX, "other" */
    long a, b, c; /* where/ret; ID length; op/bits/nid */
};

static inline int is_call_back(const struct app_call *outer, const void *obj,
    const void *arg, long a, long b, long c)
{
    return outer != NULL && outer->obj == obj && outer->arg == arg && outer->a == a
        && outer->b == b && outer->c == c;
}

/* ---- hooks_security.c: the security and verify callbacks ------------------ */
int eg_security_cb(const SSL *ssl, const SSL_CTX *ctx, int op, int bits,
    int nid, void *other, void *ex);
int eg_client_require_security_cb(const SSL *ssl, const SSL_CTX *ctx, int op,
    int bits, int nid, void *other, void *ex);
/* The same, for a ctx with libssl's own callback behind and no Schannel filter. */
int eg_security_cb_plain(const SSL *ssl, const SSL_CTX *ctx, int op, int bits,
    int nid, void *other, void *ex);
int eg_client_require_security_cb_plain(const SSL *ssl, const SSL_CTX *ctx, int op,
    int bits, int nid, void *other, void *ex);
/*
 * Which of the four a ctx with state |st| gets; a ctx with a Schannel filter
 * also turns the plain ones' shortcut off for the whole process.
 */
security_fn eg_security_cb_for(const struct eg_ctx_state *st, int client_requires_ems);
/* Whether |cb| is one of the four (the ctx's client role requires EMS: *requires). */
int eg_is_our_security_cb(security_fn cb, int *requires);
int eg_verify_cb(int ok, X509_STORE_CTX *store);
int eg_cert_verify_cb(X509_STORE_CTX *store, void *arg);
void eg_set_app_security_cb(struct eg_ctx_state *st, security_fn cb);
security_fn eg_app_security_cb_of(const SSL *ssl, const struct eg_ctx_state *st);
SSL_verify_cb eg_app_verify_cb_of(const SSL *ssl, const struct eg_ctx_state *st);

/*
 * The application's per-SSL verify and security callbacks, set with
 * EMSGUARD_set_verify() and EMSGUARD_set_security_callback() on an SSL that
 * keeps emsguard's callback.  Few SSLs ever get one, and struct eg_conn has
 * no room left (records.c keeps a record and its owner to one cache line),
 * so they live in an ex_data record of their own, which SSL_dup() copies,
 * as libssl copies the SSL's own callbacks.  Until the first is stored, the
 * callbacks skip the lookup.
 */
struct eg_app_ssl_cbs {
    SSL_verify_cb verify; /* NULL: the ctx's (SSL_set_verify() keeps it) */
    security_fn security;
    int has_security; /* |security| was set, NULL included */
};

/* |ssl|'s record, made (zeroed) if it has none; NULL with the reason raised. */
struct eg_app_ssl_cbs *eg_app_ssl_cbs_need(SSL *ssl, const char *func);

/* ---- hooks_schannel.c: the Schannel values held on each connection -------- */
void eg_hold_session_lifetime(struct eg_ctx_state *st, SSL_SESSION *sess);
void eg_hold_schannel_settings(struct eg_ctx_state *st, SSL *ssl, eg_role role);

/* ---- hooks_refused.c: no data on a refused connection --------------------- */
void eg_unblock_writes_of_new_connection(SSL *ssl);
void eg_refuse_completed(struct eg_ctx_state *st, SSL *ssl, EMSGUARD_COUNTER counter,
    const char *why, const char *via, const char *error) __attribute__((cold));

/* ---- hooks_server.c: sessions, tickets, SNI switch (server) --------------- */
int eg_new_session_cb(SSL *ssl, SSL_SESSION *sess);
SSL_SESSION *eg_get_session_cb(SSL *ssl, const unsigned char *id, int idlen, int *copy);
SSL_TICKET_RETURN eg_decrypt_ticket_cb(SSL *ssl, SSL_SESSION *sess,
    const unsigned char *keyname, size_t keyname_len, SSL_TICKET_STATUS status,
    void *arg);
int eg_generate_ticket_cb(SSL *ssl, void *arg);
void eg_isolate_refused_new_session(struct eg_ctx_state *st, SSL *ssl,
    struct eg_conn *conn, int hello_ems);
void eg_server_session_at_done(struct eg_ctx_state *st, SSL *ssl);

/* ---- hooks_dhe.c: DHE without EMS ----------------------------------------- */
int eg_drop_dhe(SSL *ssl);
void eg_avoid_dhe_for_hello(struct eg_ctx_state *st, SSL *ssl);

/* ---- hooks_hello.c: the ClientHello callback, TLS 1.3 pin ---------------- */
int eg_client_hello_cb(SSL *ssl, int *al, void *arg);
void eg_unpin_tls13(SSL *ssl);
void eg_report_ems_required(struct eg_ctx_state *st, SSL *ssl, int hello_ems,
    int no_tls13) __attribute__((cold));

/* ---- hooks_client.c: what a client offers --------------------------------- */
void eg_filter_offered_session(struct eg_ctx_state *st, SSL *ssl, struct eg_conn *conn);
void eg_withhold_session_at_renegotiation(struct eg_ctx_state *st, SSL *ssl,
    struct eg_conn *conn);
void eg_keep_client_sessions_from_server_role(struct eg_ctx_state *st, SSL *ssl);
void eg_require_ems_at_handshake_start(struct eg_ctx_state *st, SSL *ssl,
    struct eg_conn *conn);

/* ---- hooks_handshake.c: the info callback --------------------------------- */
void eg_info_cb(const SSL *cssl, int where, int ret);
/* Notes that an application info callback is chained (|cb| not NULL). */
void eg_note_app_info_cb(info_fn cb);

#pragma GCC visibility pop

#endif /* EMSGUARD_HOOKS_H */
