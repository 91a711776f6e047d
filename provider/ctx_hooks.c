/*
 * Applying the policy to an SSL_CTX through OpenSSL 3.0's public callbacks.
 * docs/enforcement.md lists every path into a handshake, the lever here
 * that guards it and its test; in short:
 *
 * Server role:
 *  - get-session callback (external cache) and ticket decrypt callback see
 *    the session before libssl decides; a refused session becomes a cache
 *    miss, i.e. a full handshake without an alert.
 *  - the internal cache is never given a session that may not be resumed:
 *    libssl marks it not resumable, with a session ID context of its own,
 *    before it could cache it (isolate_refused_new_session), and the
 *    new-session callback removes any that still arrives, so internal
 *    lookups only ever find sessions the policy allows.
 *  - the ticket decrypt callback also withholds tickets from a handshake
 *    whose new session will lack EMS.
 *  - the ClientHello callback keeps renegotiations consistent with the
 *    previous ClientHello and applies RequireExtendedMasterSecret=1 (a
 *    rejection, or TLS 1.3 only: pin_tls13).
 * Client role:
 *  - the info callback at handshake start drops a session that may not be
 *    offered, before the ClientHello is written, also at a renegotiation
 *    (withhold_session_at_renegotiation); client connections of a ctx that
 *    can also serve get a session ID context of their own.
 *  - with RequireExtendedMasterSecret=1 the security callback refuses a
 *    ServerKeyExchange after a ServerHello without EMS.
 * Both: the info callback applies the Disable toggles and the held
 * Schannel values per connection and counts completed handshakes; a
 * handshake that got past these hooks is refused when it completes
 * (refuse_completed).
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/tls1.h>
#include <openssl/x509.h>
#include "internal.h"

typedef int (*new_session_fn)(SSL *, SSL_SESSION *);
typedef SSL_SESSION *(*get_session_fn)(SSL *, const unsigned char *, int, int *);
typedef emsguard_info_fn info_fn;

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
    /* What the Schannel values hold on each connection (schannel.c). */
    struct eg_schannel_hold hold;
    _Atomic unsigned hold_warned; /* EG_HELD_* bits already logged for this ctx */
};

/* Per-SSL flags, in the connection's record (records.c). */
#define CONN_IN_HANDSHAKE 0x1
#define CONN_VIA_TICKET 0x2 /* the offered session came from a ticket */
#define CONN_VIA_EXTERNAL 0x4 /* ... from the application's cache */
#define CONN_ABORT_REPORTED 0x8
#define CONN_WITHHELD 0x10 /* client: a non-EMS session was not offered */
#define CONN_DONE 0x20 /* a handshake completed */
/* Kept across handshakes of one connection, for renegotiation checks: */
#define CONN_ESTABLISHED 0x40 /* a TLS <= 1.2 handshake completed before */
#define CONN_ESTABLISHED_EMS 0x80 /* ... and it used EMS */
#define CONN_KEPT (CONN_ESTABLISHED | CONN_ESTABLISHED_EMS)
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

static CRYPTO_ONCE index_once = CRYPTO_ONCE_STATIC_INIT;
static int ctx_state_idx = -1; /* SSL_CTX -> struct eg_ctx_state */
static int conn_registered; /* records.c's SSL ex_data index */

static void free_ctx_state(void *parent, void *ptr, CRYPTO_EX_DATA *ad,
    int idx, long argl, void *argp)
{
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (ptr != NULL) {
        emsguard_ctx_state_withdraw(parent);
        emsguard_schannel_hold_clear(&((struct eg_ctx_state *)ptr)->hold);
    }
    OPENSSL_free(ptr);
}

static void release_state(struct eg_conn *conn);

static void init_indices(void)
{
    ctx_state_idx = SSL_CTX_get_ex_new_index(0, "emsguard state", NULL, NULL,
        free_ctx_state);
    conn_registered = emsguard_conn_register(release_state);
}

static int indices_ready(void)
{
    /* Asked several times per callback: skip the once-lock after success. */
    static _Atomic int ready;

    if (atomic_load_explicit(&ready, memory_order_acquire))
        return 1;
    if (!CRYPTO_THREAD_run_once(&index_once, init_indices)
        || ctx_state_idx < 0 || !conn_registered)
        return 0;
    atomic_store_explicit(&ready, 1, memory_order_release);
    return 1;
}

/* No state is published before the indices exist: this needs no check. */
static struct eg_ctx_state *state_of_ctx(const SSL_CTX *ctx)
{
    return ctx != NULL ? emsguard_ctx_state_find(ctx) : NULL;
}

/*
 * The connection's record, NULL if it has none (yet).  No record exists
 * before the indices are, so this needs no check of its own.
 */
static struct eg_conn *conn_of(const SSL *ssl)
{
    return emsguard_conn_find(ssl);
}

/* The connection's record, made on first use; NULL only out of memory. */
static struct eg_conn *conn_need(SSL *ssl)
{
    /* The free callback must be registered before a record can exist. */
    if (!indices_ready())
        return NULL;
    return emsguard_conn_get(ssl);
}

/*
 * The state whose callbacks libssl is calling.  Session callbacks come from
 * the SSL's session context, which SNI switching (SSL_set_SSL_CTX) does not
 * change, so prefer the state recorded at handshake start over SSL_get_SSL_CTX.
 * The record holds a reference on that state's SSL_CTX (keep_state), so it
 * outlives a switch away from it and the application freeing it.
 */
static struct eg_ctx_state *state_of_ssl(const SSL *ssl)
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
 * reference, dropped by release_state() when the SSL is freed.
 * One atomic increment per connection, no allocation.
 */
static void keep_state(struct eg_conn *conn, struct eg_ctx_state *st)
{
    if (SSL_CTX_up_ref(st->ctx))
        conn->st = st;
}

/*
 * A connection's record goes (its SSL is freed): drops the reference
 * keep_state() took on its state's ctx.  records.c calls this; it knows
 * the state only as an opaque pointer.
 */
static void release_state(struct eg_conn *conn)
{
    struct eg_ctx_state *st = conn->st;

    conn->st = NULL;
    if (st != NULL)
        SSL_CTX_free(st->ctx); /* may free |st| with it */
}

static void count(struct eg_ctx_state *st, EMSGUARD_COUNTER which)
{
    atomic_fetch_add_explicit(&st->counters[which], 1, memory_order_relaxed);
}

static int is_tls13_session(const SSL_SESSION *sess)
{
    return SSL_SESSION_get_protocol_version(sess) == TLS1_3_VERSION;
}

static const char *reason_text(eg_verdict v)
{
    switch (v) {
    case EG_REFUSE_NO_EMS:
        return "reason=no-ems (session was established without Extended Master Secret)";
    case EG_REFUSE_EMS_DISABLED:
        return "reason=ems-disabled (session has Extended Master Secret, this role has it disabled)";
    case EG_REFUSE_UNREADABLE:
        return "reason=unreadable (session flags could not be read)";
    default:
        return "reason=none";
    }
}

/*
 * Cold and out of line: handshakes that log nothing keep their code dense.
 * The peer's address costs a system call, so only when the line is printed.
 */
static __attribute__((cold, noinline)) void log_event(struct eg_ctx_state *st, SSL *ssl,
    eg_level level, const char *event, const char *detail, const char *via)
{
    char peer[80], sni[256];

    if (!emsguard_log_wanted(&st->policy, level))
        return;
    emsguard_peer_address(SSL_get_rbio(ssl), peer, sizeof(peer));
    emsguard_sni_name(ssl, sni, sizeof(sni));
    emsguard_log(&st->policy, level, "role=%s %s %s via=%s peer=%s sni=%s",
        SSL_is_server(ssl) ? "server" : "client", event, detail, via, peer, sni);
}

/* ---- the decision, shared by every server-side path --------------------- */

static int hello_has_ems(SSL *ssl)
{
    return SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_extended_master_secret,
        NULL, NULL);
}

/*
 * Whether the session this handshake creates, if it does not resume, may be
 * resumed later: it gets EMS when this role uses it and the ClientHello
 * offered it.
 */
static int new_session_allowed(struct eg_ctx_state *st, SSL *ssl)
{
    int ems = emsguard_role_uses_ems(&st->policy, EG_ROLE_SERVER)
        && (SSL_get_options(ssl) & SSL_OP_NO_EXTENDED_MASTER_SECRET) == 0
        && hello_has_ems(ssl);

    return emsguard_resumption_verdict(&st->policy, EG_ROLE_SERVER, ems) == EG_ALLOW;
}

static void count_refusal(struct eg_ctx_state *st, eg_verdict v)
{
    count(st, v == EG_REFUSE_NO_EMS ? EMSGUARD_CNT_REFUSED_NO_EMS
            : v == EG_REFUSE_EMS_DISABLED ? EMSGUARD_CNT_REFUSED_EMS_DISABLED
                                          : EMSGUARD_CNT_REFUSED_UNREADABLE);
}

/*
 * Server: may a remembered "EMS" for a session's master secret stand in for
 * the session's own flag?  Only where acting on it cannot resume a session
 * whose flag lacks EMS: when libssl itself refuses such a session because
 * the ClientHello has EMS and this server did not switch it off
 * (extensions_srvr.c tls_parse_ctos_ems sets TLS1_FLAGS_RECEIVED_EXTMS, then
 * ssl_sess.c ssl_get_prev_session gives a flag-0 session a full handshake),
 * or when the policy refuses EMS sessions anyway.  A ClientHello without EMS
 * and a copy with its flag cleared would resume without EMS: its flag is
 * read instead (the legacy client's path, which is refused anyway).
 */
static int memo_ems_answer_safe(struct eg_ctx_state *st, SSL *ssl)
{
    return (hello_has_ems(ssl)
               && (SSL_get_options(ssl) & SSL_OP_NO_EXTENDED_MASTER_SECRET) == 0)
        || emsguard_resumption_verdict(&st->policy, EG_ROLE_SERVER, 1) != EG_ALLOW;
}

/*
 * A ticket or external-cache session may come from another fleet member
 * (shared ticket keys, a shared cache) or from before a policy change:
 * libssl resumes a TLS <= 1.2 one with its own suite and version and its
 * own timeout, which the Schannel values (Ciphers, Protocols,
 * ServerCacheTime) never saw.  The internal cache only holds sessions this
 * server made under the hold.  Only for policies with Schannel values.
 */
static int schannel_session_fits(struct eg_ctx_state *st, SSL *ssl,
    const SSL_SESSION *sess, const char *via)
{
    if (is_tls13_session(sess) ? emsguard_schannel_hold_session_fresh(&st->hold, sess)
                               : emsguard_schannel_hold_session_ok(&st->hold, ssl, sess))
        return 1;
    count(st, EMSGUARD_CNT_REFUSED_SCHANNEL);
    log_event(st, ssl, EG_LEVEL_WARNING, "refused resumption, full handshake instead:",
        "reason=schannel (cipher/protocol/age outside the policy)", via);
    return 0;
}

/* Returns 1 if the server may try to resume |sess|, 0 if it must not. */
static int server_may_resume(struct eg_ctx_state *st, SSL *ssl,
    const SSL_SESSION *sess, const char *via)
{
    int ems;
    eg_verdict v;
    uint64_t fp;
    struct eg_conn *conn;

    if (is_tls13_session(sess))
        return 1;
    ems = emsguard_session_ems_lookup(sess, memo_ems_answer_safe(st, ssl), &fp);
    v = emsguard_resumption_verdict(&st->policy, EG_ROLE_SERVER, ems);
    if (v != EG_ALLOW) {
        count_refusal(st, v);
        log_event(st, ssl, EG_LEVEL_WARNING,
            "refused resumption, full handshake instead:", reason_text(v), via);
        return 0;
    }
    if (st->hold.active && !schannel_session_fits(st, ssl, sess, via))
        return 0;
    /*
     * An EMS session in a ClientHello without EMS: libssl aborts with
     * handshake_failure, as RFC 7627 requires.  It is counted when the alert
     * goes out (on_alert_sent), which also covers the internal cache, where
     * no callback sees the session; here we only note where it came from.
     */
    if ((conn = conn_need(ssl)) != NULL) {
        conn->flags |= strcmp(via, "ticket") == 0 ? CONN_VIA_TICKET : CONN_VIA_EXTERNAL;
        /* Handshake end notes the session's EMS bit with this fingerprint. */
        conn->fp_sess = sess;
        conn->fp = fp;
    }
    return 1;
}

/* ---- chaining: the application calling emsguard back --------------------- */

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
 */
struct app_call {
    const void *obj; /* the SSL, or the SSL_CTX of a ctx-level security check */
    const void *arg; /* the session, session ID, X509_STORE_CTX, "other" */
    long a, b, c; /* where/ret; ID length; op/bits/nid */
};

static _Thread_local struct {
    const struct app_call *info, *new_session, *get_session, *security, *verify;
} in_app_cb;

static int is_call_back(const struct app_call *outer, const void *obj,
    const void *arg, long a, long b, long c)
{
    return outer != NULL && outer->obj == obj && outer->arg == arg && outer->a == a
        && outer->b == b && outer->c == c;
}

/* ---- Schannel values held on every connection ---------------------------- */

/*
 * The policy put its Schannel values on the SSL_CTX at enable; an
 * application that configures its ctx afterwards (nginx: ssl_protocols,
 * ssl_ciphers, ssl_session_timeout, ssl_session_cache; s_server:
 * SSL_CTX_set_dh_auto) replaces them.  Touching the ctx again while
 * connections run would race with libssl's readers, so the values are held
 * per connection instead (struct eg_schannel_hold, schannel.c), and the
 * first time a setting had to be held this says so, once per ctx.
 */
static int security_cb(const SSL *ssl, const SSL_CTX *ctx, int op, int bits,
    int nid, void *other, void *ex);
static int client_require_security_cb(const SSL *ssl, const SSL_CTX *ctx, int op,
    int bits, int nid, void *other, void *ex);
static int verify_cb(int ok, X509_STORE_CTX *store);

static __attribute__((cold, noinline)) void warn_held(struct eg_ctx_state *st,
    unsigned what, const char *detail)
{
    unsigned before = atomic_fetch_or_explicit(&st->hold_warned, what, memory_order_relaxed);
    unsigned bit;

    for (bit = 1; bit <= EG_HELD_LAST; bit <<= 1) {
        const char *text;

        if ((what & bit) == 0 || (before & bit) != 0)
            continue;
        switch (bit) {
        case EG_HELD_VERSIONS:
            text = "the protocol range was widened after EMSGUARD_enable() beyond the "
                   "policy's Protocols; the policy's range is applied to every connection "
                   "(a narrower range of the application is kept)";
            break;
        case EG_HELD_OPTIONS:
            text = "options the policy sets were changed after EMSGUARD_enable() "
                   "(renegotiation, server cipher preference, tickets); the policy's are "
                   "applied to every connection";
            break;
        case EG_HELD_SUITES:
            text = "the cipher suites were changed after EMSGUARD_enable() to include "
                   "suites the policy disables; they are never negotiated (the rest of "
                   "the application's list, in its order, is used)";
            break;
        case EG_HELD_GROUPS:
            text = "the groups were changed after EMSGUARD_enable() to include curves "
                   "outside the policy's EccCurves; they are never used";
            break;
        case EG_HELD_LATE_VERSION:
            text = "a protocol version outside the policy's Protocols was enabled on a "
                   "connection during its handshake; it is not negotiated";
            break;
        case EG_HELD_DH:
            text = "the server's DH group is below the policy's ServerMinKeyBitLength "
                   "(changed during the handshake); the handshake is refused";
            break;
        case EG_HELD_LIFETIME:
            text = "the session lifetime was raised after EMSGUARD_enable() above the "
                   "policy's ServerCacheTime; new sessions and tickets get the policy's";
            break;
        case EG_HELD_CACHE:
            text = "the server session cache was turned on after EMSGUARD_enable(), but "
                   "the policy has none (ServerCacheTime=0 or MaximumCacheSize=0); new "
                   "sessions are not cached (tickets only where the policy allows them)";
            break;
        case EG_HELD_CACHE_SIZE:
            text = "the server session cache was made larger than the policy's "
                   "MaximumCacheSize after EMSGUARD_enable(); its size cannot be changed "
                   "while connections run, so new sessions are not cached (tickets still "
                   "work)";
            break;
        case EG_HELD_VERIFY:
            text = "the verify callback was replaced after EMSGUARD_enable(); emsguard's "
                   "is put back on each connection and calls the SSL_CTX's first "
                   "(KeyExchangeAlgorithms\\PKCS MinKeyBitLength)";
            break;
        default: /* EG_HELD_NO_CALLBACK */
            text = "the security callback was replaced after EMSGUARD_enable() (or the "
                   "SSL was made before it); each connection's suites are set to its own "
                   "minus those the policy disables, and its groups to the policy's";
            break;
        }
        emsguard_log(&st->policy, EG_LEVEL_WARNING, "SSL_CTX setting overridden: %s%s%s%s",
            text, detail != NULL ? " (" : "", detail != NULL ? detail : "",
            detail != NULL ? ")" : "");
    }
}

/* Security-callback part: refuses what the policy leaves out, says so once. */
static int hold_allows(struct eg_ctx_state *st, const SSL *ssl, int op, int nid, void *other)
{
    unsigned what = 0;
    char detail[96];

    if (emsguard_schannel_hold_allows(&st->hold, ssl, op, nid, other, &what))
        return 1;
    if ((atomic_load_explicit(&st->hold_warned, memory_order_relaxed) & what) == 0) {
        switch (what) {
        case EG_HELD_SUITES:
            snprintf(detail, sizeof(detail), "first: %s", SSL_CIPHER_get_name(other));
            break;
        case EG_HELD_GROUPS:
            snprintf(detail, sizeof(detail), "first: %s", OBJ_nid2sn(nid));
            break;
        case EG_HELD_LATE_VERSION:
            snprintf(detail, sizeof(detail), "version 0x%04x", (unsigned)nid);
            break;
        case EG_HELD_DH:
            snprintf(detail, sizeof(detail), "%d bits", EVP_PKEY_get_bits(other));
            break;
        default:
            detail[0] = '\0';
        }
        warn_held(st, what, detail[0] != '\0' ? detail : NULL);
    }
    return 0;
}

/* ServerCacheTime > 0: a session's lifetime is at most the policy's. */
static void hold_session_lifetime(struct eg_ctx_state *st, SSL_SESSION *sess)
{
    long t = SSL_SESSION_get_timeout(sess);

    if (t <= st->hold.server_lifetime)
        return;
    /* libssl takes the cache lock itself when the session is in one. */
    SSL_SESSION_set_timeout(sess, st->hold.server_lifetime);
    if ((atomic_load_explicit(&st->hold_warned, memory_order_relaxed) & EG_HELD_LIFETIME) == 0) {
        char detail[64];

        snprintf(detail, sizeof(detail), "%ld s instead of %ld s", st->hold.server_lifetime, t);
        warn_held(st, EG_HELD_LIFETIME, detail);
    }
}

/*
 * libssl's per-SSL "not resumable" callback, asked once the cipher of a new
 * session is chosen, before the ServerHello, any ticket and ssl_update_cache
 * (statem_srvr.c tls_post_process_client_hello), for a server whose session
 * cache the policy forbids while the application turned one on.
 *  - SSL_OP_NO_TICKET (held for ServerCacheTime=0; in TLS 1.3 it means
 *    stateful tickets, which are cache entries): not resumable, no ticket.
 *  - Tickets allowed (MaximumCacheSize=0 only), TLS <= 1.2: the session
 *    loses its ID, as libssl does when the cache is off
 *    (tls_construct_server_hello); it is then never cached
 *    (ssl_update_cache needs an ID) and the ticket still carries it.
 *  - Tickets allowed, TLS 1.3: stateless tickets, resumed by decrypting,
 *    never from the cache, and "not resumable" would stop the tickets
 *    themselves.  Unless early data with anti-replay makes them stateful
 *    (statem_srvr.c tls_construct_new_session_ticket, extensions_srvr.c
 *    tls_parse_ctos_psk): then not resumable.
 * It replaces a not-resumable callback of the application for this SSL
 * (OpenSSL has no getter to chain it).
 */
static int uncached_session_cb(SSL *ssl, int is_forward_secure)
{
    SSL_SESSION *sess = SSL_get_session(ssl);
    static const unsigned char no_id[1];
    uint64_t opts = SSL_get_options(ssl);

    (void)is_forward_secure;
    if ((opts & SSL_OP_NO_TICKET) != 0 || sess == NULL)
        return 1;
    if (SSL_version(ssl) != TLS1_3_VERSION) {
        SSL_SESSION_set1_id(sess, no_id, 0);
        return 0;
    }
    return SSL_get_max_early_data(ssl) > 0 && (opts & SSL_OP_NO_ANTI_REPLAY) == 0;
}

/*
 * Server: does the session cache the SSL's ctx has now keep sessions
 * beyond what the policy allows?  Only a cache that stores anything counts
 * (nginx's "ssl_session_cache none" is SSL_SESS_CACHE_SERVER with
 * NO_INTERNAL_STORE and no callback).  Plain reads of values the
 * application sets before it serves.
 */
static unsigned server_cache_held(struct eg_ctx_state *st, SSL *ssl)
{
    SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);
    long mode = SSL_CTX_get_session_cache_mode(ctx), size;

    if ((mode & SSL_SESS_CACHE_SERVER) == 0
        || ((mode & SSL_SESS_CACHE_NO_INTERNAL_STORE) != 0
            && atomic_load(&st->app_new_cb) == NULL))
        return 0;
    if (st->hold.server_cache_off)
        return EG_HELD_CACHE;
    /* A size limit cannot be set per connection: cache nothing rather than more. */
    if (st->hold.server_cache_max > 0 && (mode & SSL_SESS_CACHE_NO_INTERNAL_STORE) == 0
        && ((size = SSL_CTX_sess_get_cache_size(ctx)) == 0 || size > st->hold.server_cache_max))
        return EG_HELD_CACHE_SIZE;
    return 0;
}

/*
 * PKCS MinKeyBitLength is checked in emsguard's verify callback, which
 * SSL_CTX_set_verify() after enable replaces (curl does, with NULL).  It is
 * put back on the SSL and calls the ctx's callback first (verify_cb), so
 * the application's choice still runs.  A per-SSL callback other than the
 * ctx's has nowhere to be kept for chaining (the connection's record is
 * one cache line): that connection is refused, loudly.
 */
static unsigned hold_verify_callback(struct eg_ctx_state *st, SSL *ssl)
{
    SSL_verify_cb cur = SSL_get_verify_callback(ssl);
    SSL_verify_cb ctx_cb = SSL_CTX_get_verify_callback(SSL_get_SSL_CTX(ssl));

    if (cur == verify_cb)
        return 0;
    /* What verify_cb chains: the ctx's, or (an SSL made before enable) the one before. */
    if (cur != ctx_cb && !(ctx_cb == verify_cb && cur == st->app_verify_cb)) {
        emsguard_schannel_no_version(ssl);
        log_event(st, ssl, EG_LEVEL_ERROR, "connection refused:",
            "reason=policy (SSL_set_verify() replaced the verify callback that checks "
            "KeyExchangeAlgorithms\\PKCS MinKeyBitLength on this connection; set the "
            "callback on the SSL_CTX instead, emsguard chains that one)", "verify-callback");
        return 0;
    }
    SSL_set_verify(ssl, SSL_get_verify_mode(ssl), verify_cb);
    return EG_HELD_VERIFY;
}

/*
 * At handshake start, for a policy with Schannel values: the SSL's settings
 * intersected with the policy's (schannel.c emsguard_schannel_hold_ssl),
 * checks that emsguard's security callback (which filters suites, groups
 * and late version changes) is the SSL's, and keeps new sessions out of a
 * cache the policy does not have.  Per SSL only: no other thread reads it.
 * Costs a few getters when the application changed nothing.
 */
static __attribute__((noinline)) void hold_schannel_settings(struct eg_ctx_state *st,
    SSL *ssl, eg_role role)
{
    unsigned fixed = emsguard_schannel_hold_ssl(&st->hold, role, ssl);
    int (*cb)(const SSL *, const SSL_CTX *, int, int, int, void *, void *);

    /* A both-roles ctx has no role's range or options on it: nothing was overridden. */
    if (st->schannel_per_ssl)
        fixed &= ~(unsigned)(EG_HELD_VERSIONS | EG_HELD_OPTIONS);
    if (st->hold.filter
        && (cb = SSL_get_security_callback(ssl)) != security_cb
        && cb != client_require_security_cb) {
        if (!emsguard_schannel_hold_suites(&st->hold, &st->policy, ssl)) {
            emsguard_schannel_no_version(ssl);
            log_event(st, ssl, EG_LEVEL_ERROR, "connection refused:",
                "reason=policy (the policy's cipher suites or groups cannot be set on "
                "this connection, whose security callback is not emsguard's)",
                "security-callback");
        }
        fixed |= EG_HELD_NO_CALLBACK;
    }
    if (role == EG_ROLE_SERVER
        && (st->hold.server_cache_off || st->hold.server_cache_max > 0)) {
        unsigned cache = server_cache_held(st, ssl);

        if (cache != 0) {
            SSL_set_not_resumable_session_callback(ssl, uncached_session_cb);
            fixed |= cache;
        }
    }
    if (emsguard_schannel_min_bits(&st->policy, role == EG_ROLE_CLIENT
                ? EG_KEY_K_PKCS_CLIENT_MIN : EG_KEY_K_PKCS_SERVER_MIN) > 0)
        fixed |= hold_verify_callback(st, ssl);
    if ((fixed & ~atomic_load_explicit(&st->hold_warned, memory_order_relaxed)) != 0)
        warn_held(st, fixed, NULL);
}

/* ---- callbacks ---------------------------------------------------------- */

static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    struct eg_ctx_state *st;

    /* The application's callback calling emsguard's: as if none were set. */
    if (is_call_back(in_app_cb.new_session, ssl, sess, 0, 0, 0))
        return 0; /* libssl keeps no reference for the application */
    if ((st = state_of_ssl(ssl)) == NULL)
        return 0;
    if (SSL_is_server(ssl) && !is_tls13_session(sess)) {
        int ems = emsguard_session_ems(sess);
        eg_verdict v = emsguard_resumption_verdict(&st->policy, EG_ROLE_SERVER, ems);

        if (v != EG_ALLOW) {
            /* Also marks the session not resumable, cached or not. */
            SSL_CTX_remove_session(st->ctx, sess);
            count(st, EMSGUARD_CNT_SESSIONS_NOT_CACHED);
            log_event(st, ssl, EG_LEVEL_INFO, "session not cached:",
                reason_text(v), "session-cache");
            return 0;
        }
    }
    if (st->hold.server_lifetime > 0 && SSL_is_server(ssl))
        hold_session_lifetime(st, sess);
    {
        new_session_fn app_cb = atomic_load(&st->app_new_cb);
        struct app_call call = { ssl, sess, 0, 0, 0 };
        const struct app_call *outer = in_app_cb.new_session;
        int kept;

        if (app_cb == NULL)
            return 0;
        in_app_cb.new_session = &call;
        kept = app_cb(ssl, sess);
        in_app_cb.new_session = outer;
        return kept;
    }
}

/*
 * A session ID context no connection has: 16 random bytes per process and a
 * serial number, unique per refused session.
 */
static CRYPTO_ONCE isolation_once = CRYPTO_ONCE_STATIC_INIT;
static unsigned char isolation_prefix[16];
static _Atomic uint64_t isolation_serial;

static void init_isolation_prefix(void)
{
    /* Without randomness the serial alone still tells sessions apart. */
    if (RAND_bytes(isolation_prefix, sizeof(isolation_prefix)) != 1)
        memcpy(isolation_prefix, "emsguard-refused", sizeof(isolation_prefix));
}

static void isolate_session(SSL_SESSION *sess)
{
    unsigned char id[sizeof(isolation_prefix) + sizeof(uint64_t)];
    uint64_t n = atomic_fetch_add_explicit(&isolation_serial, 1, memory_order_relaxed);

    CRYPTO_THREAD_run_once(&isolation_once, init_isolation_prefix);
    memcpy(id, isolation_prefix, sizeof(isolation_prefix));
    memcpy(id + sizeof(isolation_prefix), &n, sizeof(n));
    SSL_SESSION_set1_id_context(sess, id, sizeof(id)); /* <= SSL_MAX_SID_CTX_LENGTH */
}

/*
 * libssl's per-SSL "not resumable" callback, installed by
 * isolate_refused_new_session() and asked in tls_post_process_client_hello
 * once the cipher of a new TLS <= 1.2 session is chosen: before the
 * ServerHello, any ticket and ssl_update_cache.  Returning 1 marks the
 * session not resumable: libssl then never caches it, calls no new-session
 * callback for it and sends no ticket.  Its own session ID context makes it
 * a miss for every other connection (ssl_get_prev_session compares it) even
 * if an application adds it to a cache itself.
 */
static int refuse_new_session_cb(SSL *ssl, int is_forward_secure)
{
    struct eg_conn *conn = conn_of(ssl);
    SSL_SESSION *sess = SSL_get_session(ssl);

    (void)is_forward_secure;
    /* A later handshake of the SSL may allow its session; no record: refuse. */
    if (sess == NULL || SSL_version(ssl) == TLS1_3_VERSION
        || (conn != NULL && (conn->flags & CONN_ISOLATE_NEW) == 0))
        return 0;
    isolate_session(sess);
    return 1; /* counted when the handshake completes: count_isolated_session */
}

/*
 * Handshake end of a session refuse_new_session_cb kept out of the cache:
 * counted and logged as new_session_cb did, on a server that caches.
 */
static void count_isolated_session(SSL *ssl, struct eg_conn *conn)
{
    struct eg_ctx_state *st = state_of_ssl(ssl);

    conn->flags &= ~(uintptr_t)CONN_ISOLATE_NEW;
    if (st == NULL || SSL_session_reused(ssl) || SSL_version(ssl) == TLS1_3_VERSION
        || (SSL_CTX_get_session_cache_mode(st->ctx) & SSL_SESS_CACHE_SERVER) == 0)
        return;
    count(st, EMSGUARD_CNT_SESSIONS_NOT_CACHED);
    log_event(st, ssl, EG_LEVEL_INFO, "session not cached:",
        reason_text(EG_REFUSE_NO_EMS), "session-cache");
}

/*
 * Server, from the ClientHello callback: the session this handshake makes
 * if it does not resume lacks EMS and the policy refuses it.  libssl would
 * put it into the internal cache before new_session_cb can take it out
 * again (ssl_update_cache: SSL_CTX_add_session, then the callback), and a
 * connection looking it up in between resumed it (F10).  So libssl is asked
 * to mark it not resumable as soon as it exists (refuse_new_session_cb).
 * The SSL's own session ID context is left alone: an EMS session offered in
 * a ClientHello without EMS must still abort (RFC 7627), not miss.
 * The callback replaces a not-resumable callback the application set, for
 * this SSL (OpenSSL has no getter to chain it); it answers "resumable" for
 * a later handshake of the SSL whose session the policy allows.
 */
static void isolate_refused_new_session(struct eg_ctx_state *st, SSL *ssl,
    struct eg_conn *conn, int hello_ems)
{
    int ems = hello_ems && emsguard_role_uses_ems(&st->policy, EG_ROLE_SERVER)
        && (SSL_get_options(ssl) & SSL_OP_NO_EXTENDED_MASTER_SECRET) == 0;

    if (emsguard_resumption_verdict(&st->policy, EG_ROLE_SERVER, ems) == EG_ALLOW) {
        if (conn != NULL)
            conn->flags &= ~(uintptr_t)CONN_ISOLATE_NEW;
        return;
    }
    if (conn != NULL)
        conn->flags |= CONN_ISOLATE_NEW;
    SSL_set_not_resumable_session_callback(ssl, refuse_new_session_cb);
}

static SSL_SESSION *get_session_cb(SSL *ssl, const unsigned char *id, int idlen,
    int *copy)
{
    struct eg_ctx_state *st;
    get_session_fn app_cb;
    SSL_SESSION *sess;
    struct app_call call = { ssl, id, idlen, 0, 0 };
    const struct app_call *outer = in_app_cb.get_session;

    /* The application's callback calling emsguard's: no cache behind it. */
    if (is_call_back(outer, ssl, id, idlen, 0, 0))
        return NULL;
    st = state_of_ssl(ssl);
    app_cb = st != NULL ? atomic_load(&st->app_get_cb) : NULL;
    /* The policy has no server cache (libssl asks this callback anyway). */
    if (app_cb == NULL || st->hold.server_cache_off)
        return NULL;
    in_app_cb.get_session = &call;
    sess = app_cb(ssl, id, idlen, copy);
    in_app_cb.get_session = outer;
    if (sess == NULL)
        return NULL;
    if (!server_may_resume(st, ssl, sess, "external-cache")) {
        if (!*copy) /* the application handed us its reference */
            SSL_SESSION_free(sess);
        return NULL;
    }
    return sess;
}

/* What libssl does with a ticket when no decrypt callback is set. */
static SSL_TICKET_RETURN default_ticket_return(SSL_TICKET_STATUS status)
{
    switch (status) {
    case SSL_TICKET_SUCCESS:
        return SSL_TICKET_RETURN_USE;
    case SSL_TICKET_SUCCESS_RENEW:
        return SSL_TICKET_RETURN_USE_RENEW;
    default:
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    }
}

static SSL_TICKET_RETURN decrypt_ticket_cb(SSL *ssl, SSL_SESSION *sess,
    const unsigned char *keyname, size_t keyname_len, SSL_TICKET_STATUS status,
    void *arg)
{
    struct eg_ctx_state *st = arg;
    SSL_TICKET_RETURN r = st->app_dec_cb != NULL
        ? st->app_dec_cb(ssl, sess, keyname, keyname_len, status, st->app_ticket_arg)
        : default_ticket_return(status);

    if (SSL_version(ssl) == TLS1_3_VERSION) {
        /* A fleet member's ticket may outlive ServerCacheTime: full handshake, new ticket. */
        if ((r == SSL_TICKET_RETURN_USE || r == SSL_TICKET_RETURN_USE_RENEW) && sess != NULL
            && st->hold.server_lifetime > 0 && !schannel_session_fits(st, ssl, sess, "ticket"))
            return SSL_TICKET_RETURN_IGNORE_RENEW;
        return r;
    }
    switch (r) {
    case SSL_TICKET_RETURN_USE:
    case SSL_TICKET_RETURN_USE_RENEW:
        if (sess == NULL || server_may_resume(st, ssl, sess, "ticket"))
            return r;
        /* Refused: full handshake; a new ticket only for a resumable session. */
        r = SSL_TICKET_RETURN_IGNORE_RENEW;
        /* fall through */
    case SSL_TICKET_RETURN_IGNORE_RENEW:
        if (!new_session_allowed(st, ssl)) {
            count(st, EMSGUARD_CNT_TICKETS_WITHHELD);
            log_event(st, ssl, EG_LEVEL_INFO, "ticket withheld:",
                "reason=no-ems (the new session will lack Extended Master Secret)",
                "ticket");
            return SSL_TICKET_RETURN_IGNORE;
        }
        return r;
    default:
        return r;
    }
}

static int generate_ticket_cb(SSL *ssl, void *arg)
{
    struct eg_ctx_state *st = arg;

    if (st->hold.server_lifetime > 0 && SSL_get0_session(ssl) != NULL)
        hold_session_lifetime(st, SSL_get0_session(ssl));
    return st->app_gen_cb != NULL ? st->app_gen_cb(ssl, st->app_ticket_arg) : 1;
}

/* What the ClientHello's supported_versions lists (TLS only). */
#define HELLO_LISTS_TLS13 0x1
#define HELLO_LISTS_TLS12_OR_LOWER 0x2 /* SSL 3.0 to TLS 1.2 */

static int hello_versions(SSL *ssl)
{
    const unsigned char *ext;
    size_t len, i;
    int lists = 0;

    if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_supported_versions, &ext, &len)
        || len < 1 || ext[0] != len - 1)
        return 0;
    for (i = 1; i + 1 < len; i += 2) {
        if (ext[i] == 0x03 && ext[i + 1] == 0x04)
            lists |= HELLO_LISTS_TLS13;
        else if (ext[i] == 0x03 && ext[i + 1] <= 0x03)
            lists |= HELLO_LISTS_TLS12_OR_LOWER;
    }
    return lists;
}

/* ---- TLS 1.3 only, for one handshake -------------------------------------- */

/*
 * The ClientHello callback runs before libssl chooses the version
 * (statem_srvr.c, tls_early_post_process_client_hello), and what it will
 * choose is not for us to predict: a ClientHello listing TLS 1.3 still ends
 * in TLS 1.2 on a method fixed to 1.2, with a certificate TLS 1.3 cannot
 * use (statem_lib.c, is_tls13_capable), or in DTLS.  So a ClientHello that
 * must not end in TLS <= 1.2 gets TLS 1.3 as its minimum version:
 * ssl_choose_server_version() then picks TLS 1.3 or fails with a
 * protocol_version alert, which on_alert_sent reports.
 *
 * The minimum the SSL had is kept in ex_data and given back as soon as the
 * pinned handshake ends: at its SSL_CB_HANDSHAKE_DONE (on_handshake_done;
 * TLS 1.3 has no renegotiation, so the lower minimum no longer matters to
 * the connection) or at the fatal alert that ends it (on_alert_sent).  Not
 * at the SSL's next ClientHello: by then the application may have set a
 * minimum of its own for the next connection (SSL_clear()), and TLS 1.3
 * set by the application cannot be told from the pin.  A pinned handshake
 * abandoned without either (the peer vanished) keeps TLS 1.3: the next
 * ClientHello only forgets the saved minimum (drop_abandoned_pin).  A
 * HelloRetryRequest's second ClientHello is the same handshake, still
 * pinned.
 */
/* SSL_version() of a QUIC connection: OSSL_QUIC1_VERSION from OpenSSL 3.2. */
#define EG_QUIC1_VERSION 0x0000001

static CRYPTO_ONCE pin_once = CRYPTO_ONCE_STATIC_INIT;
static int pin_idx = -1; /* SSL -> its minimum version before the pin, plus 1 */
static atomic_int pin_made; /* until then no SSL has a minimum to get back */

static void init_pin_index(void)
{
    pin_idx = SSL_get_ex_new_index(0, "emsguard: minimum version before a TLS 1.3 pin",
        NULL, NULL, NULL);
}

/* Gives |ssl| back the minimum version the pin of its ending handshake replaced. */
static void unpin_tls13(SSL *ssl)
{
    uintptr_t saved;

    if (!atomic_load_explicit(&pin_made, memory_order_acquire)
        || (saved = (uintptr_t)SSL_get_ex_data(ssl, pin_idx)) == 0)
        return;
    /* Unless the application has set a minimum of its own since. */
    if (SSL_get_min_proto_version(ssl) == TLS1_3_VERSION)
        SSL_set_min_proto_version(ssl, (int)(saved - 1));
    SSL_set_ex_data(ssl, pin_idx, NULL);
}

/*
 * A new handshake finds the minimum of a pinned handshake that ended
 * neither done nor with an alert of ours: keep whatever minimum the SSL
 * has now (TLS 1.3, or one the application set since), and forget the
 * saved one.  Never lowering is the safe direction.
 */
static void drop_abandoned_pin(SSL *ssl)
{
    if (atomic_load_explicit(&pin_made, memory_order_acquire)
        && SSL_get_ex_data(ssl, pin_idx) != NULL)
        SSL_set_ex_data(ssl, pin_idx, NULL);
}

/*
 * Restricts this handshake to TLS 1.3, which its ClientHello lists.
 * Returns PIN_NOT_NEEDED when it cannot end in TLS <= 1.2 anyway: a QUIC
 * connection, or a version-flexible TLS SSL and a ClientHello that lists no
 * version below TLS 1.3 (libssl then chooses from that list only; most
 * TLS 1.3-only clients send no EMS, and they cost nothing here).
 * Returns PIN_SET when the minimum version is now TLS 1.3.
 * Returns 0 when the restriction cannot be made, and the ClientHello must
 * be rejected:
 *  - DTLS: OpenSSL 3.0 to 3.5 have no DTLS 1.3, and libssl never reads
 *    supported_versions in DTLS;
 *  - a method fixed to one version (TLSv1_2_server_method(), and every
 *    renegotiation, which runs on the negotiated version's method): libssl
 *    ignores version bounds there, and SSL_version() already names that
 *    version rather than TLS 1.3;
 *  - TLS 1.3 switched off by the maximum version or SSL_OP_NO_TLSv1_3.
 * Before version negotiation a version-flexible TLS SSL reports TLS 1.3
 * (TLS_MAX_VERSION_INTERNAL), and so does a second ClientHello after a
 * HelloRetryRequest, where TLS 1.3 is already chosen.
 */
#define PIN_SET 1
#define PIN_NOT_NEEDED 2

static int pin_tls13(SSL *ssl)
{
    long before = SSL_get_min_proto_version(ssl), max = SSL_get_max_proto_version(ssl);
    int lists;

    /* A QUIC connection (OpenSSL 3.5 servers) is TLS 1.3 only (RFC 9001). */
    if (SSL_version(ssl) == EG_QUIC1_VERSION)
        return PIN_NOT_NEEDED;
    if (SSL_is_dtls(ssl) || SSL_version(ssl) != TLS1_3_VERSION
        || !((lists = hello_versions(ssl)) & HELLO_LISTS_TLS13)
        || (max != 0 && max < TLS1_3_VERSION)
        || (SSL_get_options(ssl) & SSL_OP_NO_TLSv1_3) != 0)
        return 0;
    if (!(lists & HELLO_LISTS_TLS12_OR_LOWER))
        return PIN_NOT_NEEDED;
    if (before == TLS1_3_VERSION)
        return PIN_SET;
    if (!CRYPTO_THREAD_run_once(&pin_once, init_pin_index) || pin_idx < 0)
        return 0;
    if (!SSL_set_min_proto_version(ssl, TLS1_3_VERSION)
        || SSL_get_min_proto_version(ssl) != TLS1_3_VERSION)
        return 0;
    if (!SSL_set_ex_data(ssl, pin_idx, (void *)(uintptr_t)(before + 1))) {
        SSL_set_min_proto_version(ssl, (int)before);
        return 0;
    }
    atomic_store_explicit(&pin_made, 1, memory_order_release);
    return PIN_SET;
}

/* ---- DHE without EMS ------------------------------------------------------ */

static int is_dhe(const SSL_CIPHER *c)
{
    int kx = SSL_CIPHER_get_kx_nid(c);

    return kx == NID_kx_dhe || kx == NID_kx_dhe_psk;
}

static int is_tls13_cipher(const SSL_CIPHER *c)
{
    return SSL_CIPHER_get_kx_nid(c) == NID_kx_any;
}

/* Could this server authenticate |c| with its current key? */
static int server_can_use(SSL *ssl, const SSL_CIPHER *c)
{
    EVP_PKEY *key = SSL_get_privatekey(ssl);

    switch (SSL_CIPHER_get_auth_nid(c)) {
    case NID_auth_rsa:
        return key != NULL && EVP_PKEY_is_a(key, "RSA");
    case NID_auth_ecdsa:
        return key != NULL && EVP_PKEY_is_a(key, "EC");
    case NID_auth_null:
    case NID_auth_psk:
        return 1;
    default:
        return 0; /* unsure: count it as not usable */
    }
}

/* Replaces |ssl|'s cipher list by the same list without TLS_DHE_*. */
static int drop_dhe(SSL *ssl)
{
    STACK_OF(SSL_CIPHER) *list = SSL_get_ciphers(ssl);
    char buf[4096] = "";
    size_t used = 0;
    int i, had_dhe = 0;

    for (i = 0; i < sk_SSL_CIPHER_num(list); i++) {
        const SSL_CIPHER *c = sk_SSL_CIPHER_value(list, i);
        const char *name = SSL_CIPHER_get_name(c);
        int n;

        if (is_dhe(c)) {
            had_dhe = 1;
            continue;
        }
        if (is_tls13_cipher(c))
            continue; /* kept by SSL_set_ciphersuites, not this list */
        n = snprintf(buf + used, sizeof(buf) - used, "%s%s", used > 0 ? ":" : "", name);
        if (n < 0 || (size_t)n >= sizeof(buf) - used)
            return 0;
        used += (size_t)n;
    }
    if (!had_dhe || used == 0)
        return 0;
    return SSL_set_cipher_list(ssl, buf);
}

/*
 * Server, ClientHello without EMS: steer away from TLS_DHE_* when the client
 * shares another suite we can use.  Stacks that mishandle a DH shared secret
 * with leading zero bytes fail 1 in 256 such handshakes with bad_record_mac.
 */
static void avoid_dhe_for_hello(struct eg_ctx_state *st, SSL *ssl)
{
    STACK_OF(SSL_CIPHER) *ours = SSL_get_ciphers(ssl);
    const unsigned char *ids;
    size_t len, i;
    int shared_dhe = 0, shared_other = 0;

    if ((len = SSL_client_hello_get0_ciphers(ssl, &ids)) == 0)
        return;
    for (i = 0; i + 1 < len; i += 2) {
        const SSL_CIPHER *c = SSL_CIPHER_find(ssl, ids + i);

        if (c == NULL || is_tls13_cipher(c) || sk_SSL_CIPHER_find(ours, (SSL_CIPHER *)c) < 0)
            continue;
        if (is_dhe(c))
            shared_dhe = 1;
        else if (server_can_use(ssl, c))
            shared_other = 1;
    }
    if (shared_dhe && shared_other && drop_dhe(ssl))
        emsguard_log(&st->policy, EG_LEVEL_DEBUG,
            "server: ClientHello without EMS: TLS_DHE_* suites not selected");
}

/*
 * RequireExtendedMasterSecret=1: counts, logs and queues the rejection of a
 * ClientHello that would have ended in TLS <= 1.2 without EMS.  |hello_ems|:
 * the client offered EMS, but this server has it switched off.
 * |no_tls13|: the ClientHello was restricted to TLS 1.3, which this server
 * could not negotiate with it.
 */
static __attribute__((cold, noinline)) void report_ems_required(struct eg_ctx_state *st,
    SSL *ssl, int hello_ems, int no_tls13)
{
    count(st, EMSGUARD_CNT_REJECTED_NO_EMS);
    if (hello_ems) {
        log_event(st, ssl, EG_LEVEL_ERROR, "rejected ClientHello:",
            "reason=ems-required (Extended Master Secret is switched off on this server: "
            "SSL_OP_NO_EXTENDED_MASTER_SECRET, Options -ExtendedMasterSecret; "
            "RequireExtendedMasterSecret=1)",
            "client-hello");
        ERR_raise_data(EMSGUARD_get_error_lib(), EMSGUARD_R_EMS_REQUIRED,
            "RequireExtendedMasterSecret=1, but Extended Master Secret is switched off on "
            "this server (SSL_OP_NO_EXTENDED_MASTER_SECRET on the SSL or its SSL_CTX, or "
            "'Options = -ExtendedMasterSecret' in openssl.cnf)%s",
            no_tls13 ? "; and TLS 1.3, which needs none, could not be negotiated" : "");
        return;
    }
    log_event(st, ssl, EG_LEVEL_ERROR, "rejected ClientHello:",
        no_tls13 ? "reason=ems-required (no Extended Master Secret, and TLS 1.3 could not be "
                   "negotiated; RequireExtendedMasterSecret=1)"
                 : "reason=ems-required (no Extended Master Secret, RequireExtendedMasterSecret=1)",
        "client-hello");
    ERR_raise_data(EMSGUARD_get_error_lib(), EMSGUARD_R_EMS_REQUIRED,
        "ClientHello without Extended Master Secret (RequireExtendedMasterSecret=1)%s",
        no_tls13 ? "; and TLS 1.3, which needs none, could not be negotiated with this client"
                 : "");
}

/*
 * Server, every ClientHello:
 *  - a renegotiation must offer EMS exactly when the connection's previous
 *    ClientHello did (libssl refuses only dropping EMS that was in use);
 *  - DisableDHEWithoutExtendedMasterSecret: no TLS_DHE_* without EMS;
 *  - RequireExtendedMasterSecret=1: no TLS <= 1.2 handshake without EMS.  A
 *    ClientHello without usable EMS is rejected with handshake_failure
 *    before any key exchange, or, if it lists TLS 1.3, restricted to TLS 1.3
 *    (pin_tls13): which version it ends in is decided by libssl after this
 *    callback, and only that counts.
 * None of this depends on a guess of the version: a renegotiation is always
 * TLS <= 1.2, and the other two hold whatever the version becomes.
 */
static int client_hello_cb(SSL *ssl, int *al, void *arg)
{
    struct eg_ctx_state *st = arg;
    struct eg_conn *conn = conn_need(ssl);
    uintptr_t prev = conn != NULL ? conn->flags : 0, flags;
    int hello_ems, ems_used, pin;

    /* A new handshake (not the second ClientHello after a HelloRetryRequest). */
    if ((prev & CONN_PINNED_TLS13) == 0)
        drop_abandoned_pin(ssl);
    if (st->app_hello_cb != NULL) {
        int r = st->app_hello_cb(ssl, al, st->app_hello_arg);

        if (r != SSL_CLIENT_HELLO_SUCCESS)
            return r;
    }
    hello_ems = hello_has_ems(ssl);
    flags = (prev & ~(uintptr_t)(CONN_HELLO_EMS | CONN_PREV_HELLO_EMS)) | CONN_HELLO_SEEN
        | (hello_ems ? CONN_HELLO_EMS | CONN_PREV_HELLO_EMS : 0);
    if (conn != NULL)
        conn->flags = flags;
    isolate_refused_new_session(st, ssl, conn, hello_ems);
    /*
     * A renegotiation must keep what the client offered: compared with the
     * previous ClientHello, not with the established state, which lacks EMS
     * whenever this server has it switched off.
     */
    if ((prev & CONN_ESTABLISHED) != 0
        && !hello_ems != !(prev & CONN_PREV_HELLO_EMS)) {
        count(st, EMSGUARD_CNT_ABORTED_INCONSISTENT);
        if (conn != NULL)
            conn->flags = flags | CONN_ABORT_REPORTED;
        log_event(st, ssl, EG_LEVEL_ERROR, "rejected renegotiation:",
            hello_ems ? "reason=inconsistent (ClientHello adds Extended Master Secret, "
                        "which the connection's previous ClientHello did not offer)"
                      : "reason=inconsistent (ClientHello drops Extended Master Secret, "
                        "which the connection's previous ClientHello offered)",
            "renegotiation");
        *al = SSL_AD_HANDSHAKE_FAILURE;
        ERR_raise_data(EMSGUARD_get_error_lib(), EMSGUARD_R_EMS_REQUIRED,
            "renegotiation ClientHello changes Extended Master Secret");
        return SSL_CLIENT_HELLO_ERROR;
    }
    /* What libssl will do: EMS when offered, unless switched off here. */
    ems_used = hello_ems && emsguard_role_uses_ems(&st->policy, EG_ROLE_SERVER)
        && (SSL_get_options(ssl) & SSL_OP_NO_EXTENDED_MASTER_SECRET) == 0;
    if (st->policy.values[EG_KEY_DISABLE_DHE_WITHOUT_EMS] && !ems_used)
        avoid_dhe_for_hello(st, ssl);
    if (!st->policy.values[EG_KEY_REQUIRE_EMS]
        || !emsguard_role_uses_ems(&st->policy, EG_ROLE_SERVER) || ems_used)
        return SSL_CLIENT_HELLO_SUCCESS;
    if ((prev & CONN_ESTABLISHED) == 0 && (pin = pin_tls13(ssl)) != 0) {
        if (conn != NULL && pin == PIN_SET)
            conn->flags = flags | CONN_PINNED_TLS13;
        return SSL_CLIENT_HELLO_SUCCESS;
    }
    if (conn != NULL)
        conn->flags = flags | CONN_ABORT_REPORTED;
    report_ems_required(st, ssl, hello_ems, 0);
    *al = SSL_AD_HANDSHAKE_FAILURE;
    return SSL_CLIENT_HELLO_ERROR;
}

/* ClientCacheTime: is |sess| older than the client may reuse? */
static int client_cache_expired(const struct eg_ctx_state *st, const SSL_SESSION *sess)
{
    uint32_t ms;
    time_t now, born;

    if (!st->policy.set[EG_KEY_CLIENT_CACHE_TIME])
        return 0;
    now = time(NULL);
    born = emsguard_session_time(sess);
    ms = st->policy.values[EG_KEY_CLIENT_CACHE_TIME];
    return ms == 0 || now < born || (uint64_t)(now - born) * 1000 >= ms;
}

/* Client: drop a session the policy forbids offering, before ClientHello. */
static void filter_offered_session(struct eg_ctx_state *st, SSL *ssl,
    struct eg_conn *conn)
{
    SSL_SESSION *sess = SSL_get_session(ssl);
    eg_verdict v;
    int ems;

    if (sess == NULL || !SSL_in_before(ssl) || !SSL_SESSION_is_resumable(sess))
        return;
    if (client_cache_expired(st, sess)) {
        log_event(st, ssl, EG_LEVEL_INFO, "did not offer session:",
            "reason=client-cache-time (older than ClientCacheTime)", "set-session");
        SSL_set_session(ssl, NULL);
        return;
    }
    if (is_tls13_session(sess))
        return;
    /* The session's own flag: nothing stops a flag-0 copy at a legacy server. */
    ems = emsguard_session_ems_offered(sess);
    v = emsguard_resumption_verdict(&st->policy, EG_ROLE_CLIENT, ems);
    if (v == EG_ALLOW) {
        if (conn != NULL)
            conn->flags |= CONN_OFFER_READ | (ems == 1 ? CONN_OFFER_EMS : 0);
        return;
    }
    count_refusal(st, v);
    log_event(st, ssl, EG_LEVEL_WARNING,
        "did not offer session, full handshake instead:", reason_text(v),
        "set-session");
    SSL_set_session(ssl, NULL);
    if (v == EG_REFUSE_NO_EMS && conn != NULL)
        conn->flags |= CONN_WITHHELD;
}

/*
 * Client, renegotiation of a connection: libssl offers its current session
 * again (statem_clnt.c tls_construct_client_hello keeps s->session while
 * SSL_SESSION_is_resumable()), on the application's
 * SSL_renegotiate_abbreviated() and on a HelloRequest, which a TLS client
 * answers that way (tls_process_hello_req).  This runs at
 * SSL_CB_HANDSHAKE_START, before the ClientHello is built; for a HelloRequest
 * even before it is read, which is fine: after a TLS <= 1.2 handshake a
 * server has no other handshake message to send.
 *
 * A live connection's session cannot be swapped (SSL_set_session() resets
 * the method), so it is made not resumable: SSL_CTX_remove_session() marks
 * any session with an ID, and libssl then starts a new session with neither
 * ID nor ticket.  A session with a ticket but no ID (only an application
 * makes one: libssl names every ticket session by the ticket's SHA-256)
 * stays resumable; it gets a protocol version no connection has, which also
 * makes libssl start a new session.  (Keeping only its ticket off the wire
 * would not do: libssl would then reuse the very session object for the new
 * handshake, overwriting what the application holds.)
 */
static void withhold_session_at_renegotiation(struct eg_ctx_state *st, SSL *ssl,
    struct eg_conn *conn)
{
    SSL_SESSION *sess = SSL_get_session(ssl);
    eg_verdict v;
    int ems;

    /* SSL_OP_NO_RENEGOTIATION: libssl refuses either trigger. */
    if (SSL_in_before(ssl) || sess == NULL || !SSL_SESSION_is_resumable(sess)
        || is_tls13_session(sess)
        || (SSL_get_options(ssl) & SSL_OP_NO_RENEGOTIATION) != 0)
        return;
    ems = emsguard_session_ems_offered(sess);
    v = emsguard_resumption_verdict(&st->policy, EG_ROLE_CLIENT, ems);
    if (v == EG_ALLOW) {
        if (conn != NULL)
            conn->flags |= CONN_OFFER_READ | (ems == 1 ? CONN_OFFER_EMS : 0);
        return;
    }
    SSL_CTX_remove_session(st->ctx, sess);
    if (SSL_SESSION_is_resumable(sess))
        SSL_SESSION_set_protocol_version(sess, 0);
    count_refusal(st, v);
    log_event(st, ssl, EG_LEVEL_WARNING,
        "did not offer session at renegotiation, full handshake instead:",
        reason_text(v), "renegotiation");
}

static int ctx_roles(const SSL_CTX *ctx, int *server, int *client);
static void require_ems_at_handshake_start(struct eg_ctx_state *st, SSL *ssl,
    struct eg_conn *conn);

/*
 * The session ID context of every client connection on an SSL_CTX that can
 * also be a server: 32 bytes (the maximum) no server connection is given.
 */
static const unsigned char client_role_sid_ctx[SSL_MAX_SID_CTX_LENGTH] =
    "emsguard client-role session ID";

/*
 * Client, on an SSL_CTX that can also be a server (TLS_method, as a relay
 * uses): with SSL_SESS_CACHE_BOTH the sessions this role gets from its peers
 * land in the internal cache the server role resumes from (ssl_update_cache),
 * and their IDs are on the wire (or are the SHA-256 of a ticket that is).
 * libssl resumes only a session whose session ID context is the server
 * connection's (ssl_sess.c ssl_get_prev_session: a mismatch is a cache miss),
 * so a context of their own, set before libssl creates the session, makes
 * every client-role session a miss for the server role: no window, and any
 * cache the two roles share (an application's too).
 *
 * The client in turn fails a resumption of a session whose context is not
 * the connection's (statem_clnt.c tls_process_server_hello), so a session
 * from before the policy, or from another SSL_CTX, is not offered: one full
 * handshake instead of a failed one.
 */
static void keep_client_sessions_from_server_role(struct eg_ctx_state *st, SSL *ssl)
{
    const unsigned char *sid_ctx;
    unsigned int sid_ctx_len;
    SSL_SESSION *sess;
    int server, client;

    ctx_roles(SSL_get_SSL_CTX(ssl), &server, &client);
    if (!server)
        return;
    /* Cannot fail: libssl refuses only a context longer than 32 bytes. */
    if (!SSL_set_session_id_context(ssl, client_role_sid_ctx, sizeof(client_role_sid_ctx)))
        emsguard_log(&st->policy, EG_LEVEL_ERROR,
            "client: cannot set the client-role session ID context; this "
            "connection's session may be resumable by the server role");
    if (!SSL_in_before(ssl) || (sess = SSL_get_session(ssl)) == NULL
        || !SSL_SESSION_is_resumable(sess))
        return;
    sid_ctx = SSL_SESSION_get0_id_context(sess, &sid_ctx_len);
    if (sid_ctx_len == sizeof(client_role_sid_ctx)
        && memcmp(sid_ctx, client_role_sid_ctx, sid_ctx_len) == 0)
        return;
    log_event(st, ssl, EG_LEVEL_INFO, "did not offer session, full handshake instead:",
        "reason=other-context (session from before the policy or from another "
        "SSL_CTX; this SSL_CTX's client sessions have their own session ID context)",
        "set-session");
    SSL_set_session(ssl, NULL);
}

static void unblock_writes_of_new_connection(SSL *ssl);

static void on_handshake_start(struct eg_ctx_state *st, SSL *ssl)
{
    eg_role role = SSL_is_server(ssl) ? EG_ROLE_SERVER : EG_ROLE_CLIENT;
    struct eg_conn *conn = conn_need(ssl);

    unblock_writes_of_new_connection(ssl);
    /*
     * Forget the last handshake, but not that the connection had one --
     * unless this is a new connection on an SSL that SSL_clear() reset.
     * Without a record (out of memory) the policy still applies below; only
     * counting and logging lose track of this handshake.
     */
    if (conn != NULL) {
        conn->flags = CONN_IN_HANDSHAKE
            | (SSL_in_before(ssl) ? 0 : conn->flags & (CONN_KEPT | CONN_PREV_HELLO_EMS));
        conn->fp_sess = NULL;
        if (conn->st == NULL)
            keep_state(conn, st);
    }
    if (st->hold.active)
        hold_schannel_settings(st, ssl, role);
    if (!emsguard_role_uses_ems(&st->policy, role))
        SSL_set_options(ssl, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    if (role == EG_ROLE_CLIENT) {
        if (SSL_in_before(ssl))
            emsguard_reuse_end(ssl);
        keep_client_sessions_from_server_role(st, ssl);
        filter_offered_session(st, ssl, conn);
        withhold_session_at_renegotiation(st, ssl, conn);
        /* The knowledge base's advice: a client without EMS drops DHE. */
        if ((SSL_get_options(ssl) & SSL_OP_NO_EXTENDED_MASTER_SECRET) != 0
            && st->policy.values[EG_KEY_DISABLE_DHE_WITHOUT_EMS])
            drop_dhe(ssl);
        require_ems_at_handshake_start(st, ssl, conn);
    }
}

/*
 * The EMS bit of the session a TLS <= 1.2 handshake ended with; *fp gets
 * the session's fingerprint when this had to compute it, else 0.
 */
static int session_ems_at_end(SSL *ssl, const SSL_SESSION *sess, uintptr_t flags,
    int server, int resumed, uint64_t *fp)
{
    *fp = 0;
    if (server && (flags & CONN_HELLO_SEEN))
        return (flags & CONN_HELLO_EMS)
            && (SSL_get_options(ssl) & SSL_OP_NO_EXTENDED_MASTER_SECRET) == 0;
    if (!server && (flags & CONN_OFFER_READ) && resumed)
        return (flags & CONN_OFFER_EMS) != 0;
    /* A new session, or one no callback of ours looked at: its encoding. */
    return emsguard_session_ems_fp(sess, fp);
}

/*
 * The session's later offers and tickets are then answered cheaply.  What is
 * noted is only what libssl established or checked:
 *  - a full handshake derived a new master secret, with EMS exactly when
 *    the session's flag says so: both memos;
 *  - a resumption: libssl completed it only because the session's flag
 *    matched the ClientHello (server, ssl_get_prev_session) or the server's
 *    echo (client, final_ems) -- a fact about this session object, not
 *    about how its secret was derived, which a copy with a changed flag
 *    shares.  So the client notes its session object, and the server only
 *    puts back an "EMS" its memo lost (a copy with the flag cleared never
 *    turns a genuine EMS session's secret into "non-EMS").
 */
static void note_session_ems(const struct eg_conn *conn, const SSL_SESSION *sess,
    uintptr_t flags, int server, int resumed, uint64_t fp, int ems)
{
    if (!server)
        emsguard_session_ems_note_peer(sess, ems);
    if (resumed) {
        /*
         * Server, resumed from the internal cache: no callback of ours ever
         * looks that session up (the cache only holds sessions the policy
         * allows), so there is nothing to speed up.
         */
        if (!server || (flags & (CONN_VIA_TICKET | CONN_VIA_EXTERNAL)) == 0)
            return;
        /*
         * A resumed handshake ends with the very session it looked up in the
         * ticket or application cache: libssl never swaps the session of a
         * resumption.
         */
        if (fp == 0 && conn->fp_sess == sess)
            fp = conn->fp;
        emsguard_session_ems_note_resumed(sess, fp, ems);
        return;
    }
    /* A full handshake's session is new, even if it sits where a refused one was. */
    if (fp != 0)
        emsguard_session_ems_note_fp(fp, ems);
    else
        emsguard_session_ems_note(sess, ems);
}

static void refuse_completed(struct eg_ctx_state *st, SSL *ssl,
    EMSGUARD_COUNTER counter, const char *why, const char *via, const char *error);

/*
 * RequireExtendedMasterSecret=1 covers this role, yet a TLS <= 1.2 handshake
 * without EMS got to its end: the ClientHello (server) or ServerKeyExchange
 * (client) check was bypassed, so the connection must not be used.
 */
static int require_ems_missed(const struct eg_ctx_state *st, int server)
{
    return st->policy.values[EG_KEY_REQUIRE_EMS]
        && emsguard_role_uses_ems(&st->policy, server ? EG_ROLE_SERVER : EG_ROLE_CLIENT);
}

static void on_handshake_done(struct eg_ctx_state *st, SSL *ssl)
{
    struct eg_conn *conn = conn_of(ssl);
    uintptr_t flags = conn != NULL ? conn->flags : 0;
    SSL_SESSION *sess = SSL_get_session(ssl);
    int tls13 = SSL_version(ssl) == TLS1_3_VERSION;
    int server = SSL_is_server(ssl), resumed;
    int ems;

    /*
     * TLS 1.3 post-handshake messages report "done" without a start; and
     * without a record (out of memory at the start) there is nothing to end.
     */
    if ((flags & CONN_IN_HANDSHAKE) == 0)
        return;
    if (flags & CONN_PINNED_TLS13)
        unpin_tls13(ssl);
    /*
     * A server that only wrote a HelloRequest: libssl reports it as a
     * finished handshake but clears the renegotiate flag only before a real
     * handshake's "done"; the real one is still to come.
     */
    if (server && SSL_renegotiate_pending(ssl))
        return;
    /*
     * A refused renegotiation (no_renegotiation warning) is also reported as
     * done, without a new Finished: only a new Finished is a new handshake.
     */
    {
        unsigned char fin[EVP_MAX_MD_SIZE] = { 0 };
        uintptr_t tag = 0;

        SSL_get_finished(ssl, fin, sizeof(fin));
        memcpy(&tag, fin, sizeof(tag));
        if ((flags & CONN_ESTABLISHED) && tag == conn->finished_tag) {
            conn->flags = flags & ~(uintptr_t)CONN_IN_HANDSHAKE;
            return;
        }
        conn->finished_tag = tag;
    }
    flags &= ~(uintptr_t)(CONN_IN_HANDSHAKE | CONN_KEPT);
    resumed = SSL_session_reused(ssl);
    if (flags & CONN_WITHHELD)
        emsguard_reuse_watch(ssl, st->ctx, &st->policy);
    ems = 1;
    if (sess != NULL && !tls13) {
        uint64_t fp;

        ems = session_ems_at_end(ssl, sess, flags, server, resumed, &fp);
        note_session_ems(conn, sess, flags, server, resumed, fp, ems);
    }
    conn->flags = flags | CONN_DONE
        | (tls13 ? 0 : CONN_ESTABLISHED | (ems == 1 ? CONN_ESTABLISHED_EMS : 0));
    if (!resumed) {
        count(st, EMSGUARD_CNT_FULL_HANDSHAKES);
        if (ems == 0) {
            count(st, EMSGUARD_CNT_FULL_WITHOUT_EMS);
            if (!tls13 && require_ems_missed(st, server))
                refuse_completed(st, ssl, EMSGUARD_CNT_POLICY_BYPASSED,
                    "reason=bypass (a TLS <= 1.2 handshake without Extended Master Secret "
                    "completed, RequireExtendedMasterSecret=1)", "unknown",
                    "a TLS <= 1.2 handshake without Extended Master Secret completed "
                    "although RequireExtendedMasterSecret=1 (a callback of emsguard's "
                    "replaced after EMSGUARD_enable()?)");
        }
        return;
    }
    count(st, EMSGUARD_CNT_RESUMPTIONS);
    /* Unreadable here (e.g. out of memory) is not evidence of a bypass. */
    if (!tls13 && ems >= 0
        && emsguard_resumption_verdict(&st->policy,
               server ? EG_ROLE_SERVER : EG_ROLE_CLIENT, ems)
            != EG_ALLOW) {
        /*
         * A path we do not hook (e.g. SSL_CTX_add_session by the app, or a
         * callback of ours replaced by a plain setter): fail closed.
         */
        if (server)
            SSL_CTX_remove_session(st->ctx, sess);
        refuse_completed(st, ssl, EMSGUARD_CNT_POLICY_BYPASSED,
            "reason=bypass (resumed a session the policy forbids; it reached libssl "
            "outside emsguard's hooks)", "unknown",
            "a session the emsguard policy forbids was resumed through a path emsguard "
            "does not hook (SSL_CTX_add_session(), or a callback replaced after "
            "EMSGUARD_enable())");
    }
}

/*
 * Server: libssl has just sent a fatal alert.  If it is the RFC 7627 abort of
 * an EMS session offered without EMS, count and log it.  The reason is on
 * this thread's error queue: SSLfatal() raises it right before the alert.
 */
static void on_alert_sent(struct eg_ctx_state *st, SSL *ssl, int alert)
{
    struct eg_conn *conn = conn_of(ssl);
    uintptr_t flags = conn != NULL ? conn->flags : 0;
    unsigned long err = ERR_peek_last_error();
    const char *via;

    /* The fatal alert ends a pinned handshake: its minimum version is back. */
    if (flags & CONN_PINNED_TLS13)
        unpin_tls13(ssl);
    /*
     * A ClientHello restricted to TLS 1.3 (pin_tls13) that libssl could not
     * answer in TLS 1.3: ssl_choose_server_version() failed, which is the
     * RequireExtendedMasterSecret=1 rejection of a TLS <= 1.2 handshake.
     */
    if ((flags & (CONN_PINNED_TLS13 | CONN_ABORT_REPORTED)) == CONN_PINNED_TLS13
        && (alert & 0xff) == SSL_AD_PROTOCOL_VERSION) {
        conn->flags = flags | CONN_ABORT_REPORTED;
        report_ems_required(st, ssl, (flags & CONN_HELLO_EMS) != 0, 1);
        return;
    }
    /* RFC 7627 5.3 says handshake_failure; later OpenSSL sends illegal_parameter. */
    if (!SSL_is_server(ssl)
        || ((alert & 0xff) != SSL_AD_HANDSHAKE_FAILURE
            && (alert & 0xff) != SSL_AD_ILLEGAL_PARAMETER)
        || (flags & CONN_ABORT_REPORTED) != 0
        || ERR_GET_LIB(err) != ERR_LIB_SSL
        || ERR_GET_REASON(err) != SSL_R_INCONSISTENT_EXTMS)
        return;
    if (conn != NULL)
        conn->flags = flags | CONN_ABORT_REPORTED;
    via = (flags & CONN_VIA_TICKET) ? "ticket"
        : (flags & CONN_VIA_EXTERNAL) ? "external-cache" : "session-cache";
    count(st, EMSGUARD_CNT_ABORTED_INCONSISTENT);
    log_event(st, ssl, EG_LEVEL_ERROR, "aborted resumption:",
        "reason=inconsistent (EMS session offered in a ClientHello without "
        "Extended Master Secret, RFC 7627 section 5.3)",
        via);
}

/*
 * The application's per-SSL verify and security callbacks, set with
 * EMSGUARD_set_verify() and EMSGUARD_set_security_callback() on an SSL that
 * keeps emsguard's callback.  Few SSLs ever get one, and struct eg_conn has
 * no room left (records.c keeps a record and its owner to one cache line),
 * so they live in an ex_data record of their own, which SSL_dup() copies,
 * as libssl copies the SSL's own callbacks.  Until the first is stored, the
 * callbacks skip the lookup.
 */
typedef int (*security_fn)(const SSL *, const SSL_CTX *, int, int, int, void *, void *);

struct eg_app_ssl_cbs {
    SSL_verify_cb verify; /* NULL: the ctx's (SSL_set_verify() keeps it) */
    security_fn security;
    int has_security; /* |security| was set, NULL included */
};

static CRYPTO_ONCE app_ssl_cbs_once = CRYPTO_ONCE_STATIC_INIT;
static int app_ssl_cbs_idx = -1;
static atomic_int app_ssl_cbs_used;

static int dup_app_ssl_cbs(CRYPTO_EX_DATA *to, const CRYPTO_EX_DATA *from,
    void **from_d, int idx, long argl, void *argp)
{
    (void)to;
    (void)from;
    (void)idx;
    (void)argl;
    (void)argp;
    if (*from_d == NULL)
        return 1;
    return (*from_d = OPENSSL_memdup(*from_d, sizeof(struct eg_app_ssl_cbs))) != NULL;
}

static void free_app_ssl_cbs(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
    long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    OPENSSL_free(ptr);
}

static void init_app_ssl_cbs_index(void)
{
    app_ssl_cbs_idx = SSL_get_ex_new_index(0, "emsguard application callbacks", NULL,
        dup_app_ssl_cbs, free_app_ssl_cbs);
}

static const struct eg_app_ssl_cbs *app_ssl_cbs_of(const SSL *ssl)
{
    if (!atomic_load_explicit(&app_ssl_cbs_used, memory_order_acquire))
        return NULL;
    return SSL_get_ex_data(ssl, app_ssl_cbs_idx);
}

/* |ssl|'s record, made (zeroed) if it has none; NULL with the reason raised. */
static struct eg_app_ssl_cbs *app_ssl_cbs_need(SSL *ssl, const char *func)
{
    struct eg_app_ssl_cbs *cbs;

    if (!CRYPTO_THREAD_run_once(&app_ssl_cbs_once, init_app_ssl_cbs_index)
        || app_ssl_cbs_idx < 0) {
        emsguard_raise(ERR_R_MALLOC_FAILURE, "%s: cannot allocate an ex_data index", func);
        return NULL;
    }
    atomic_store_explicit(&app_ssl_cbs_used, 1, memory_order_release);
    if ((cbs = SSL_get_ex_data(ssl, app_ssl_cbs_idx)) != NULL)
        return cbs;
    if ((cbs = OPENSSL_zalloc(sizeof(*cbs))) == NULL || !SSL_set_ex_data(ssl, app_ssl_cbs_idx, cbs)) {
        OPENSSL_free(cbs);
        emsguard_raise(ERR_R_MALLOC_FAILURE, "%s: cannot store the callback", func);
        return NULL;
    }
    return cbs;
}

/*
 * The application's verify callback for |ssl|: its own
 * (EMSGUARD_set_verify()), else its ctx's, as libssl would use: the one
 * libssl holds, unless that is emsguard's (then the one emsguard chains);
 * a plain SSL_CTX_set_verify() after enable put it there, and
 * hold_verify_callback() put emsguard's back on the SSL.
 */
static SSL_verify_cb app_verify_cb_of(const SSL *ssl, const struct eg_ctx_state *st)
{
    const struct eg_app_ssl_cbs *cbs = app_ssl_cbs_of(ssl);
    SSL_verify_cb ctx_cb;

    if (cbs != NULL && cbs->verify != NULL)
        return cbs->verify;
    if ((ctx_cb = SSL_CTX_get_verify_callback(SSL_get_SSL_CTX(ssl))) != verify_cb)
        return ctx_cb;
    return st != NULL ? st->app_verify_cb : NULL;
}

/* The same for the security callback (SSL_set_security_callback()). */
/* True if |fn| is code of libssl itself (OpenSSL's default security callback). */
static int is_libssl_code(security_fn fn)
{
    int (*libssl_fn)(const SSL *) = SSL_version; /* no one interposes it */
    void *a, *b;
    Dl_info ia, ib;

    if (fn == NULL)
        return 0;
    memcpy(&a, &fn, sizeof(a));
    memcpy(&b, &libssl_fn, sizeof(b));
    return dladdr(a, &ia) != 0 && dladdr(b, &ib) != 0 && ia.dli_fbase == ib.dli_fbase;
}

/*
 * The ctx's application security callback; whether it is libssl's own is
 * settled once here, not per call.  The flag goes down before an
 * application's callback is stored and up only after libssl's, so a
 * callback of the application is never called without the re-entry guard.
 */
static void set_app_security_cb(struct eg_ctx_state *st, security_fn cb)
{
    int plain = is_libssl_code(cb);

    if (!plain)
        atomic_store_explicit(&st->app_security_is_libssl, 0, memory_order_release);
    st->app_security_cb = cb;
    if (plain)
        atomic_store_explicit(&st->app_security_is_libssl, 1, memory_order_release);
}

static security_fn app_security_cb_of(const SSL *ssl, const struct eg_ctx_state *st)
{
    const struct eg_app_ssl_cbs *cbs = ssl != NULL ? app_ssl_cbs_of(ssl) : NULL;

    if (cbs != NULL && cbs->has_security)
        return cbs->security;
    return st != NULL ? st->app_security_cb : NULL;
}

/* Security callback: the application's (or OpenSSL's) first, then ours. */
static int security_cb(const SSL *ssl, const SSL_CTX *ctx, int op, int bits,
    int nid, void *other, void *ex)
{
    const SSL_CTX *owner = ssl != NULL ? SSL_get_SSL_CTX(ssl) : ctx;
    /*
     * The SSL's current ctx: after an SNI switch libssl asks the target's
     * callback with the target's lists, and the target's policy and
     * application callback answer (not the state recorded at handshake
     * start, which the session callbacks and counters keep).
     */
    struct eg_ctx_state *st = state_of_ctx(owner);
    const void *obj = ssl != NULL ? (const void *)ssl : (const void *)ctx;
    security_fn app;

    if (st == NULL && ssl != NULL)
        st = state_of_ssl(ssl); /* a per-SSL callback on a ctx we never saw */
    if (st == NULL) /* cannot happen on a ctx we set up: refuse, unless re-entered */
        return is_call_back(in_app_cb.security, obj, other, op, bits, nid);
    app = app_security_cb_of(ssl, st);
    /*
     * libssl's own callback (the security level) never calls back into
     * emsguard, so it needs no re-entry guard: libssl asks this callback
     * about every suite of every ClientHello, and the guard's thread-local
     * accesses would cost each of them.
     */
    if (app != NULL && app == st->app_security_cb
        && atomic_load_explicit(&st->app_security_is_libssl, memory_order_acquire)) {
        if (!app(ssl, ctx, op, bits, nid, other, ex))
            return 0;
    } else if (app != NULL) {
        const struct app_call *outer = in_app_cb.security;
        struct app_call call = { obj, other, op, bits, nid };
        int ok;

        /*
         * The application's callback calling emsguard's: this link has no
         * objection; the outer call applies emsguard's check when the
         * application's returns.  (OpenSSL's default callback, the security
         * level, is what the application's callback replaced on this ctx.)
         */
        if (is_call_back(outer, obj, other, op, bits, nid))
            return 1;
        in_app_cb.security = &call;
        ok = app(ssl, ctx, op, bits, nid, other, ex);
        in_app_cb.security = outer;
        if (!ok)
            return 0;
    }
    if (ssl == NULL) {
        /* SSL_CTX_set0_tmp_dh_pkey(): the group's size, which the per-SSL DH hold keeps. */
        if (op == SSL_SECOP_TMP_DH && other != NULL && st->hold.server_dh != NULL)
            atomic_store_explicit(&st->hold.app_dh_bits, (uint32_t)EVP_PKEY_get_bits(other),
                memory_order_relaxed);
        return 1;
    }
    if (st->hold.filter && !hold_allows(st, ssl, op, nid, other))
        return 0;
    /* Only the DH group has a check of its own here; skip the role lookup otherwise. */
    if ((op & ~SSL_SECOP_PEER) != SSL_SECOP_TMP_DH)
        return 1;
    return emsguard_schannel_security_ok(&st->policy,
        SSL_is_server((SSL *)ssl) ? EG_ROLE_SERVER : EG_ROLE_CLIENT, op, other);
}

/* Verify callback: PKCS MinKeyBitLength for the peer's RSA certificate. */
static int verify_cb(int ok, X509_STORE_CTX *store)
{
    SSL *ssl;
    struct eg_ctx_state *st;
    const struct app_call *outer = in_app_cb.verify;
    SSL_verify_cb app;

    /* The application's callback calling emsguard's: OpenSSL's default keeps |ok|. */
    if (is_call_back(outer, store, NULL, 0, 0, 0))
        return ok;
    ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    /* The SSL's current ctx's policy (after an SNI switch, the target's). */
    st = ssl != NULL ? state_of_ctx(SSL_get_SSL_CTX(ssl)) : NULL;
    if (st == NULL && ssl != NULL)
        st = state_of_ssl(ssl);
    if (st == NULL)
        return 0;
    if ((app = app_verify_cb_of(ssl, st)) != NULL) {
        struct app_call call = { store, NULL, 0, 0, 0 };

        in_app_cb.verify = &call;
        ok = app(ok, store);
        in_app_cb.verify = outer;
    }
    if (ok && X509_STORE_CTX_get_error_depth(store) == 0
        && !emsguard_schannel_peer_key_ok(&st->policy,
            SSL_is_server(ssl) ? EG_ROLE_SERVER : EG_ROLE_CLIENT,
            X509_STORE_CTX_get_current_cert(store))) {
        X509_STORE_CTX_set_error(store, X509_V_ERR_EE_KEY_TOO_SMALL);
        log_event(st, ssl, EG_LEVEL_ERROR, "peer certificate refused:",
            "reason=key-too-small (RSA key below KeyExchangeAlgorithms\\PKCS MinKeyBitLength)",
            "certificate");
        return 0;
    }
    return ok;
}

/*
 * The application's certificate verification (SSL_CTX_set_cert_verify_callback())
 * runs in place of X509_verify_cert(), and so in place of the verify
 * callback, unless it calls X509_verify_cert() itself (then verify_cb has
 * refused already).  One that does its own checking (pinning, say) would
 * skip PKCS MinKeyBitLength: the peer's certificate is checked after it.
 */
static int cert_verify_cb(X509_STORE_CTX *store, void *arg)
{
    struct eg_ctx_state *st = arg;
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    int ok;

    if (st == NULL || ssl == NULL || st->app_cert_verify_cb == NULL)
        return 0; /* not set up by us; refuse, not allow */
    ok = st->app_cert_verify_cb(store, st->app_cert_verify_arg);
    if (ok > 0
        && !emsguard_schannel_peer_key_ok(&st->policy,
            SSL_is_server(ssl) ? EG_ROLE_SERVER : EG_ROLE_CLIENT,
            X509_STORE_CTX_get0_cert(store))) {
        X509_STORE_CTX_set_error(store, X509_V_ERR_EE_KEY_TOO_SMALL);
        log_event(st, ssl, EG_LEVEL_ERROR, "peer certificate refused:",
            "reason=key-too-small (RSA key below KeyExchangeAlgorithms\\PKCS MinKeyBitLength)",
            "cert-verify-callback");
        return 0;
    }
    return ok;
}

/* ---- RequireExtendedMasterSecret=1, client role ------------------------------ */

/*
 * Require=1 binds the client role when that role does EMS: with
 * DisableClientExtendedMasterSecret=1 it does none and Require=1 does not
 * apply to it, as for the server role (client_hello_cb).
 */
static int client_role_requires_ems(const EMSGUARD_POLICY *policy)
{
    return policy->values[EG_KEY_REQUIRE_EMS]
        && emsguard_role_uses_ems(policy, EG_ROLE_CLIENT);
}

/* ... and |ctx| can be a client. */
static int client_requires_ems(const EMSGUARD_POLICY *policy, const SSL_CTX *ctx)
{
    int server, client;

    ctx_roles(ctx, &server, &client);
    return client && client_role_requires_ems(policy);
}

/*
 * TLS <= 1.2 suites after whose ServerHello a client asks the security
 * callback something, with the ServerHello's extensions parsed and before
 * it writes anything: the ServerKeyExchange of (EC)DHE (statem_clnt.c
 * tls_process_ske_ecdhe: tls1_check_group_id -> SSL_SECOP_CURVE_CHECK;
 * tls_process_ske_dhe: SSL_SECOP_TMP_DH), also in their PSK forms.
 * RSA key exchange, plain PSK, RSA-PSK and SRP have no ServerKeyExchange
 * to ask about (the CIPHER_CHECK in set_client_ciphersuite() comes before
 * the extensions are parsed), and no other callback that can stop the
 * handshake runs for them after the ServerHello whatever the verify mode:
 * the verify callback counts only under SSL_VERIFY_PEER, and the
 * servername callback (final_server_name, which libssl also runs on a
 * client) cannot be read back to chain an application's, such as an SNI
 * server's on a TLS_method SSL_CTX.  So the client would have no point at
 * which to refuse their ServerHello.  TLS 1.3 suites (NID_kx_any) have EMS
 * in their key schedule.
 */
static int suite_lets_client_check_ems(const SSL_CIPHER *c)
{
    switch (SSL_CIPHER_get_kx_nid(c)) {
    case NID_kx_ecdhe:
    case NID_kx_dhe:
    case NID_kx_ecdhe_psk:
    case NID_kx_dhe_psk:
    case NID_kx_any:
        return 1;
    default:
        return 0;
    }
}

/*
 * Client, after the ServerHello of a full handshake: did the server agree to
 * EMS?  SSL_get_extms_support() says -1 until the handshake ends, so read
 * the flags of the session libssl is building, which got its EMS bit from
 * the ServerHello.  It has no cipher yet (libssl sets it when the client
 * writes ChangeCipherSpec), and i2d_SSL_SESSION() encodes no session
 * without one: lend it the negotiated suite for the encoding.  The session
 * is this connection's alone until the handshake ends.  It has no master
 * secret yet either, so emsguard_session_ems() finds no memo entry and
 * encodes it: one DER encoding, once per handshake.
 */
static int server_hello_ems(const SSL *ssl)
{
    SSL_SESSION *sess = SSL_get_session(ssl);
    const SSL_CIPHER *pending = SSL_get_pending_cipher(ssl);
    int ems;

    if (sess == NULL || pending == NULL)
        return -1;
    if (SSL_SESSION_get0_cipher(sess) != NULL)
        return emsguard_session_ems(sess);
    if (!SSL_SESSION_set_cipher(sess, pending))
        return -1;
    ems = emsguard_session_ems(sess);
    SSL_SESSION_set_cipher(sess, NULL);
    return ems;
}

static __attribute__((cold, noinline)) int refuse_server_hello(struct eg_ctx_state *st,
    SSL *ssl, int ems)
{
    int option_off = (SSL_get_options(ssl) & SSL_OP_NO_EXTENDED_MASTER_SECRET) != 0;

    count(st, EMSGUARD_CNT_REJECTED_NO_EMS);
    if (ems < 0) {
        log_event(st, ssl, EG_LEVEL_ERROR, "rejected ServerHello:",
            "reason=ems-required (cannot read whether the server agreed to Extended "
            "Master Secret, RequireExtendedMasterSecret=1)",
            "server-hello");
        emsguard_raise(EMSGUARD_R_EMS_REQUIRED, "cannot read whether the ServerHello "
                                                "agreed to Extended Master Secret "
                                                "(RequireExtendedMasterSecret=1)");
    } else if (option_off) {
        log_event(st, ssl, EG_LEVEL_ERROR, "rejected ServerHello:",
            "reason=ems-required (this connection has SSL_OP_NO_EXTENDED_MASTER_SECRET "
            "set and cannot get Extended Master Secret, RequireExtendedMasterSecret=1)",
            "server-hello");
        emsguard_raise(EMSGUARD_R_EMS_REQUIRED,
            "TLS <= 1.2 without Extended Master Secret: the connection has "
            "SSL_OP_NO_EXTENDED_MASTER_SECRET set (RequireExtendedMasterSecret=1)");
    } else {
        log_event(st, ssl, EG_LEVEL_ERROR, "rejected ServerHello:",
            "reason=ems-required (no Extended Master Secret, RequireExtendedMasterSecret=1)",
            "server-hello");
        emsguard_raise(EMSGUARD_R_EMS_REQUIRED,
            "ServerHello without Extended Master Secret (RequireExtendedMasterSecret=1)");
    }
    return 0;
}

/*
 * The security callback of an SSL_CTX whose client role has Require=1: the
 * application's (or OpenSSL's default) and the Schannel checks first
 * (security_cb), then, client role only:
 *  - TLS <= 1.2 suites that give the client no later check are not offered
 *    (SSL_SECOP_CIPHER_SUPPORTED builds the ClientHello's list) nor accepted
 *    (SSL_SECOP_CIPHER_CHECK, the ServerHello's);
 *  - at the ServerKeyExchange, its first question (the group or the DH
 *    key) decides: the session libssl is building got its EMS bit from the
 *    ServerHello
 *    (extensions_clnt.c tls_parse_stoc_ems); without it the callback says
 *    no, and libssl sends a fatal alert (illegal_parameter for ECDHE,
 *    handshake_failure for DHE) whatever the verify mode, before the client
 *    writes its key exchange or Finished.
 * A resumption has no ServerKeyExchange: libssl itself fails a ServerHello
 * whose EMS differs from the resumed session's (extensions.c final_ems), and
 * require_ems_at_handshake_start() offers only sessions with EMS.
 */
static int client_require_security_cb(const SSL *ssl, const SSL_CTX *ctx, int op,
    int bits, int nid, void *other, void *ex)
{
    struct eg_ctx_state *st;
    int ems;

    if (!security_cb(ssl, ctx, op, bits, nid, other, ex))
        return 0;
    /* Most questions (every suite, group and signature of each hello) stop here. */
    switch (op) {
    case SSL_SECOP_CIPHER_SUPPORTED:
    case SSL_SECOP_CIPHER_CHECK:
        return ssl == NULL || other == NULL || SSL_is_server(ssl)
            || suite_lets_client_check_ems(other);
    case SSL_SECOP_CURVE_CHECK: /* ECDHE: asked once, first, in every ServerKeyExchange */
    case SSL_SECOP_TMP_DH: /* DHE: the same */
        break;
    default:
        return 1;
    }
    if (ssl == NULL || SSL_is_server(ssl))
        return 1;
    /* Both are asked elsewhere too (ClientHello, TLS 1.3 key share). */
    if (SSL_get_state(ssl) != TLS_ST_CR_KEY_EXCH)
        return 1;
    /* Not NULL: security_cb() said yes. */
    st = state_of_ssl(ssl);
    if (!client_role_requires_ems(&st->policy))
        return 1;
    ems = server_hello_ems(ssl);
    return ems == 1 ? 1 : refuse_server_hello(st, (SSL *)ssl, ems);
}

/*
 * Client, Require=1, at handshake start: what the check at the
 * ServerKeyExchange cannot see.
 *  - The check lives in the SSL's security callback.  One replaced after
 *    EMSGUARD_enable() (SSL_CTX_set_security_callback(),
 *    SSL_set_security_callback()), or an SSL made before it, never runs the
 *    check: the connection is held to TLS 1.3 (EMS in its key schedule),
 *    with an error line, rather than let TLS <= 1.2 through unchecked.
 *    (A renegotiation keeps its version: its first handshake was held.)
 *  - A resumption has no ServerKeyExchange, and libssl resumes a session
 *    without EMS without EMS.  The offer filters already keep such a
 *    session back unless AllowLegacyResumption=1; with Require=1 it is kept
 *    back anyway, as the server role rejects any ClientHello without EMS.
 */
static void require_ems_at_handshake_start(struct eg_ctx_state *st, SSL *ssl,
    struct eg_conn *conn)
{
    SSL_SESSION *sess;
    int ems;

    if (!client_role_requires_ems(&st->policy))
        return;
    if (SSL_get_security_callback(ssl) != client_require_security_cb) {
        SSL_set_options(ssl, SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1
                | SSL_OP_NO_TLSv1_2 | SSL_OP_NO_DTLSv1 | SSL_OP_NO_DTLSv1_2);
        log_event(st, ssl, EG_LEVEL_ERROR, "TLS 1.3 only for this connection:",
            "reason=ems-required (the SSL's security callback is not emsguard's: set "
            "after EMSGUARD_enable() or on an SSL made before it, so "
            "RequireExtendedMasterSecret=1 cannot be checked for TLS <= 1.2)",
            "security-callback");
        return;
    }
    if (!st->policy.values[EG_KEY_ALLOW_LEGACY_RESUMPTION]
        || (sess = SSL_get_session(ssl)) == NULL || !SSL_SESSION_is_resumable(sess)
        || is_tls13_session(sess))
        return;
    /* The offer filters read it already (they allowed it). */
    ems = conn != NULL && (conn->flags & CONN_OFFER_READ) && conn->fp_sess == sess
        ? (conn->flags & CONN_OFFER_EMS) != 0
        : emsguard_session_ems(sess);
    if (ems == 1)
        return;
    count(st, EMSGUARD_CNT_REFUSED_NO_EMS);
    log_event(st, ssl, EG_LEVEL_WARNING, "did not offer session, full handshake instead:",
        "reason=ems-required (session without Extended Master Secret; "
        "RequireExtendedMasterSecret=1 overrides AllowLegacyResumption=1)",
        SSL_in_before(ssl) ? "set-session" : "renegotiation");
    if (conn != NULL)
        conn->flags &= ~(uintptr_t)(CONN_OFFER_READ | CONN_OFFER_EMS);
    if (SSL_in_before(ssl)) {
        SSL_set_session(ssl, NULL);
        return;
    }
    /* A live connection's session: see withhold_session_at_renegotiation(). */
    SSL_CTX_remove_session(st->ctx, sess);
    if (SSL_SESSION_is_resumable(sess))
        SSL_SESSION_set_protocol_version(sess, 0);
}

/*
 * Set once any application info callback is chained through emsguard.
 * libssl reports every state change (a dozen per handshake and side); until
 * then, the ones emsguard ignores return at once.
 */
static atomic_int app_info_cb_seen;

static void note_app_info_cb(info_fn cb)
{
    if (cb != NULL)
        atomic_store_explicit(&app_info_cb_seen, 1, memory_order_relaxed);
}

static void info_cb(const SSL *cssl, int where, int ret);

/* ---- no data on a refused connection -------------------------------------- */

/*
 * The shutdown flags refuse_completed() sets stop every SSL_write() that
 * starts after the handshake, but not the one that may be running it:
 * ssl_write_internal() tests SSL_SENT_SHUTDOWN before ssl3_write_bytes()
 * runs the handshake (ssl/record/rec_layer_s3.c), and then encrypts and
 * sends the application's record.  That is the usual case for a server that
 * speaks first (SMTP, IMAP, FTP banners), a client that writes first, and
 * BIO_f_ssl.  libssl offers no public way to fail a handshake from its
 * "done" callback, so the refused SSL's write BIO is put behind a filter
 * that fails every write: whatever call drove the handshake, nothing more
 * reaches the peer (records, alerts, a renegotiation's hello).  Reads and
 * controls pass to the application's BIO, so BIO_get_fd()/SSL_get_wfd(),
 * pending counts and flushes behave as before.
 *
 * By SSL_CB_HANDSHAKE_DONE the handshake's last flight is out: its
 * Finished is flushed before the state machine reaches TLS_ST_OK
 * (statem_srvr.c/statem_clnt.c post_work, statem_flush()), and
 * tls_finish_handshake() has removed the buffering BIO before it calls
 * the info callback.  So the filter holds back only what comes after.
 *
 * The BIO_METHOD is made once and kept for the life of the process: any
 * live SSL may still hold a filter.
 */
static CRYPTO_ONCE refused_bio_once = CRYPTO_ONCE_STATIC_INIT;
static BIO_METHOD *refused_bio_method;
static int refused_bio_type;
static atomic_int refused_bio_used; /* until then no SSL has a filter */

static int refused_bio_write(BIO *b, const char *data, int len)
{
    (void)data;
    (void)len;
    BIO_clear_retry_flags(b); /* a hard failure: the application must not retry */
    emsguard_raise(EMSGUARD_R_EMS_REQUIRED,
        "nothing is sent on a connection emsguard refused at the end of its handshake");
    return -1;
}

static int refused_bio_puts(BIO *b, const char *str)
{
    (void)str;
    return refused_bio_write(b, NULL, 0);
}

static int refused_bio_read(BIO *b, char *buf, int len)
{
    BIO *next = BIO_next(b);
    int r;

    if (next == NULL)
        return 0;
    r = BIO_read(next, buf, len);
    BIO_clear_retry_flags(b);
    BIO_copy_next_retry(b);
    return r;
}

static int refused_bio_gets(BIO *b, char *buf, int len)
{
    BIO *next = BIO_next(b);
    int r;

    if (next == NULL)
        return 0;
    r = BIO_gets(next, buf, len);
    BIO_clear_retry_flags(b);
    BIO_copy_next_retry(b);
    return r;
}

/* Everything goes to the application's BIO, as BIO_f_null() does. */
static long refused_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    BIO *next = BIO_next(b);
    long r;

    if (next == NULL || cmd == BIO_CTRL_DUP)
        return 0;
    BIO_clear_retry_flags(b);
    r = BIO_ctrl(next, cmd, num, ptr);
    BIO_copy_next_retry(b);
    return r;
}

static long refused_bio_callback_ctrl(BIO *b, int cmd, BIO_info_cb *fp)
{
    BIO *next = BIO_next(b);

    return next != NULL ? BIO_callback_ctrl(next, cmd, fp) : 0;
}

static int refused_bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static int refused_bio_destroy(BIO *b)
{
    (void)b; /* the next BIO is the chain's: BIO_free_all() releases it */
    return 1;
}

static void make_refused_bio_method(void)
{
    int type = BIO_get_new_index();
    BIO_METHOD *m;

    if (type == -1)
        return;
    type |= BIO_TYPE_FILTER;
    m = BIO_meth_new(type, "emsguard: refused connection");
    if (m == NULL)
        return;
    if (!BIO_meth_set_write(m, refused_bio_write) || !BIO_meth_set_puts(m, refused_bio_puts)
        || !BIO_meth_set_read(m, refused_bio_read) || !BIO_meth_set_gets(m, refused_bio_gets)
        || !BIO_meth_set_ctrl(m, refused_bio_ctrl)
        || !BIO_meth_set_callback_ctrl(m, refused_bio_callback_ctrl)
        || !BIO_meth_set_create(m, refused_bio_create)
        || !BIO_meth_set_destroy(m, refused_bio_destroy)) {
        BIO_meth_free(m);
        return;
    }
    refused_bio_type = type;
    refused_bio_method = m;
}

static int is_refused_bio(BIO *b)
{
    return b != NULL && refused_bio_method != NULL && BIO_method_type(b) == refused_bio_type;
}

/*
 * Puts the filter in front of |ssl|'s write BIO.  Ownership stays exact:
 * the SSL owns the filter (SSL_set0_wbio() releases its reference on the
 * old BIO), the filter's link owns a new reference on the old BIO
 * (BIO_up_ref()), so BIO_free_all() at SSL_free() releases both and the
 * application's own pointer stays valid for the SSL's lifetime.  The read
 * BIO is left alone, also when it is the same BIO (SSL_set_fd(),
 * SSL_set_bio(ssl, b, b)): that reference is the SSL's rbio's.  Linked
 * after SSL_set0_wbio(), so that libssl's re-attachment of a buffering BIO
 * (none is expected here) cannot unlink it.
 */
static __attribute__((cold, noinline)) void block_writes(struct eg_ctx_state *st, SSL *ssl)
{
    BIO *wbio = SSL_get_wbio(ssl), *filter = NULL;

    if (wbio == NULL)
        return;
    if (CRYPTO_THREAD_run_once(&refused_bio_once, make_refused_bio_method)
        && refused_bio_method != NULL) {
        if (is_refused_bio(wbio))
            return; /* refused before (a renegotiation) */
        filter = BIO_new(refused_bio_method);
    }
    if (!BIO_up_ref(wbio)) {
        BIO_free(filter);
        filter = NULL;
        wbio = NULL;
    }
    if (filter == NULL) {
        /*
         * Out of memory: detach the write BIO instead (libssl fails a write
         * without one, SSL_R_BIO_NOT_SET).  The reference taken above is
         * left unreleased so that the application's pointer stays valid.
         */
        emsguard_log(&st->policy, EG_LEVEL_ERROR,
            "refused connection: out of memory for the write filter; write BIO detached");
        SSL_set0_wbio(ssl, NULL);
        return;
    }
    atomic_store_explicit(&refused_bio_used, 1, memory_order_release);
    SSL_set0_wbio(ssl, filter);
    BIO_push(filter, wbio);
}

/*
 * A new connection on an SSL refused before (SSL_clear(), or a new accept
 * or connect state): it is policed on its own, so the application's write
 * BIO comes back.  At its SSL_CB_HANDSHAKE_START libssl has just run
 * SSL_clear(), which removed any buffering BIO (ssl3_clear ->
 * ssl_free_wbio_buffer()), so the filter is the SSL's write BIO itself.
 * The filter's link reference on the old BIO passes to the SSL, and the
 * SSL's reference on the filter is released by SSL_set0_wbio().
 * Costs one relaxed load per handshake until some connection was refused.
 */
static void unblock_writes_of_new_connection(SSL *ssl)
{
    BIO *filter, *wbio;

    if (!atomic_load_explicit(&refused_bio_used, memory_order_acquire)
        || !SSL_in_before(ssl) || !is_refused_bio(filter = SSL_get_wbio(ssl)))
        return;
    wbio = BIO_pop(filter);
    SSL_set0_wbio(ssl, wbio);
}

/*
 * Refuses the connection whose handshake just completed: the handshake
 * was one the policy forbids, and nothing in libssl lets a callback fail a
 * handshake this late (the info callback returns nothing, and after an SNI
 * switch no callback of ours that could abort runs in a resumed TLS <= 1.2
 * handshake).  So no application data may follow: SSL_write() fails
 * (SSL_R_PROTOCOL_IS_SHUTDOWN), SSL_read() returns 0 at once (SSL_ERROR_SSL
 * while this reason is still queued; with the queue emptied libssl calls it
 * ZERO_RETURN), and SSL_shutdown() sends no close_notify, so the peer sees
 * an unclean end.  The write that drove the handshake, if one did, has
 * passed libssl's shutdown test already: block_writes() fails its record
 * too, and everything after.  The reason is raised on the error queue
 * (until the thread's next SSL_do_handshake() empties it), logged and
 * counted.
 */
static __attribute__((cold, noinline)) void refuse_completed(struct eg_ctx_state *st,
    SSL *ssl, EMSGUARD_COUNTER counter, const char *why, const char *via,
    const char *error)
{
    count(st, counter);
    log_event(st, ssl, EG_LEVEL_ERROR, "refused connection:", why, via);
    emsguard_raise(EMSGUARD_R_EMS_REQUIRED, "connection refused after the handshake: %s",
        error);
    SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    block_writes(st, ssl);
}

/* Server: the handshake was decided by the SSL's initial ctx (SNI switch). */
static __attribute__((cold, noinline)) void refuse_connection(struct eg_ctx_state *st,
    SSL *ssl, const char *why)
{
    refuse_completed(st, ssl, EMSGUARD_CNT_REFUSED_SNI_SWITCH, why, "sni-switch",
        "another SSL_CTX (the SSL's initial one, before the SNI switch) accepted a "
        "handshake this SSL_CTX's emsguard policy refuses; enable emsguard on the "
        "initial SSL_CTX");
}

/*
 * Server, a TLS <= 1.2 handshake that ends on this ctx but was decided by
 * another: libssl looks the session up (cache, tickets, external cache) in
 * the SSL's initial ctx and runs that ctx's ClientHello callback, both
 * before the servername callback can move the connection here.  If that
 * ctx has no policy, or a weaker one, the handshake may be one this ctx's
 * policy refuses: a resumed session without EMS, or (RequireEMS=1) a full
 * handshake without it.  Then the connection is refused.
 * The EMS bit comes from the ClientHello when our ClientHello callback saw
 * this handshake (a switch between two enabled ctxs, the usual SNI setup
 * under the preload): libssl resumes only a session that agrees with the
 * hello.  Otherwise it is read from the session (memo or DER encoding).
 */
static __attribute__((noinline)) void check_handshake_from_other_ctx(struct eg_ctx_state *st,
    SSL *ssl, const struct eg_conn *conn)
{
    SSL_SESSION *sess = SSL_get_session(ssl);
    int resumed = SSL_session_reused(ssl), ems;
    eg_verdict v;

    if (sess == NULL || SSL_version(ssl) == TLS1_3_VERSION)
        return;
    if (!resumed && !(st->policy.values[EG_KEY_REQUIRE_EMS]
            && emsguard_role_uses_ems(&st->policy, EG_ROLE_SERVER)))
        return;
    if (conn != NULL && (conn->flags & (CONN_IN_HANDSHAKE | CONN_HELLO_SEEN))
            == (CONN_IN_HANDSHAKE | CONN_HELLO_SEEN))
        ems = (conn->flags & CONN_HELLO_EMS) != 0
            && (SSL_get_options(ssl) & SSL_OP_NO_EXTENDED_MASTER_SECRET) == 0;
    else
        ems = emsguard_session_ems(sess);
    if (resumed) {
        if ((v = emsguard_resumption_verdict(&st->policy, EG_ROLE_SERVER, ems)) == EG_ALLOW)
            return;
        refuse_connection(st, ssl,
            v == EG_REFUSE_NO_EMS
                ? "reason=sni-switch (the SSL's initial SSL_CTX resumed a session without "
                  "Extended Master Secret; enable emsguard on that SSL_CTX)"
                : v == EG_REFUSE_EMS_DISABLED
                ? "reason=sni-switch (the SSL's initial SSL_CTX resumed a session with "
                  "Extended Master Secret, this role has it disabled)"
                : "reason=sni-switch (the SSL's initial SSL_CTX resumed a session whose "
                  "flags could not be read)");
    } else if (ems != 1) {
        refuse_connection(st, ssl,
            "reason=sni-switch (the SSL's initial SSL_CTX accepted a handshake without "
            "Extended Master Secret, RequireExtendedMasterSecret=1)");
    }
}

/*
 * Server, handshake done, before on_handshake_done(): the cache side of the
 * handshake.  The common case (the handshake started on this ctx: its
 * ClientHello and session callbacks decided) costs a record lookup and a
 * few flag tests.  Otherwise another ctx decided: an SNI switch into this
 * ctx (our info callback saw no handshake start, or one on another ctx).
 */
static void server_session_at_done(struct eg_ctx_state *st, SSL *ssl)
{
    struct eg_conn *conn;

    if (!SSL_is_server(ssl))
        return;
    if ((conn = conn_of(ssl)) != NULL) {
        if (conn->flags & CONN_ISOLATE_NEW)
            count_isolated_session(ssl, conn);
        if ((conn->flags & CONN_IN_HANDSHAKE) && (conn->st == NULL || conn->st == st))
            return;
    }
    check_handshake_from_other_ctx(st, ssl, conn);
}

/* Everything but the filter of info_cb(), kept out of line: see there. */
static __attribute__((noinline)) void info_event(const SSL *cssl, int where, int ret)
{
    SSL *ssl = (SSL *)cssl; /* libssl hands out const; ex_data needs it */
    struct eg_ctx_state *st;
    struct eg_conn *conn;
    info_fn app_cb;
    const struct app_call *outer;

    /*
     * The application's callback calling emsguard's for the event emsguard
     * is handing it: done already, and OpenSSL's default does nothing.  No
     * application callback anywhere, no call back.
     */
    if (atomic_load_explicit(&app_info_cb_seen, memory_order_relaxed)
        && is_call_back(outer = in_app_cb.info, cssl, NULL, where, ret, 0))
        return;
    st = state_of_ctx(SSL_get_SSL_CTX(ssl));
    if (st == NULL)
        st = state_of_ssl(ssl); /* per-SSL callback on a ctx we never saw */
    if (st == NULL)
        return;
    if (where & SSL_CB_HANDSHAKE_START)
        on_handshake_start(st, ssl);
    if (where & SSL_CB_HANDSHAKE_DONE) {
        server_session_at_done(st, ssl);
        on_handshake_done(st, ssl);
    }
    /* SSL_CB_READ_ALERT and SSL_CB_WRITE_ALERT share the SSL_CB_ALERT bit. */
    if ((where & SSL_CB_WRITE_ALERT) == SSL_CB_WRITE_ALERT) {
        if ((ret >> 8) == SSL3_AL_FATAL)
            on_alert_sent(st, ssl, ret);
        else if ((ret & 0xff) == SSL_AD_CLOSE_NOTIFY)
            emsguard_reuse_close_sent(ssl);
    }
    /* Until an application callback is chained anywhere, none is here. */
    if (!atomic_load_explicit(&app_info_cb_seen, memory_order_relaxed))
        return;
    /* libssl calls a per-SSL info callback instead of the ctx's, not both. */
    if (!(SSL_get_info_callback(ssl) == info_cb
            && (conn = conn_of(ssl)) != NULL && (app_cb = conn->app_info_cb) != NULL))
        app_cb = atomic_load(&st->app_info_cb);
    if (app_cb != NULL) {
        struct app_call call = { cssl, NULL, where, ret, 0 };

        outer = in_app_cb.info;
        in_app_cb.info = &call;
        app_cb(cssl, where, ret);
        in_app_cb.info = outer;
    }
}

/*
 * libssl calls this on every state change, about 12 times per handshake and
 * side, and we act on two or three of them.  The filter stays a few
 * instructions with no stack frame, so the ignored calls cost no more than
 * the call itself (measured: the whole callback inline cost 4 instruction
 * cache misses per call).
 */
static void info_cb(const SSL *cssl, int where, int ret)
{
    if ((where & (SSL_CB_HANDSHAKE_START | SSL_CB_HANDSHAKE_DONE | SSL_CB_WRITE_ALERT)) == 0
        && !atomic_load_explicit(&app_info_cb_seen, memory_order_relaxed))
        return;
    info_event(cssl, where, ret);
}

/* ---- public API --------------------------------------------------------- */

static int ctx_roles(const SSL_CTX *ctx, int *server, int *client);

/*
 * libssl looks up its internal cache before any callback, so a non-EMS
 * session cached before the policy was enabled would resume unchecked.
 * Empty that cache (an EMS session only costs its client one full handshake)
 * without telling the application's remove callback: its external cache is
 * checked on every lookup and stays valid.
 *  - Every session, whatever its timeout: flushing "expired by time t"
 *    keeps a session whose expiry overflowed (a "never expire" timeout such
 *    as LONG_MAX; in 3.0 sess_timedout() is false once timeout_ovf is set)
 *    and stops there.  Time 0 means all (ssl_sess.c
 *    SSL_CTX_flush_sessions[_ex]: "t == 0 || sess_timedout", 3.0 to 3.5).
 *  - Whatever the cache mode says now: libssl looks the cache up unless
 *    SSL_SESS_CACHE_NO_INTERNAL_LOOKUP, with SSL_SESS_CACHE_OFF or
 *    NO_INTERNAL_STORE too, and the mode can change later.
 */
static void flush_internal_cache(SSL_CTX *ctx)
{
    void (*app_remove_cb)(SSL_CTX *, SSL_SESSION *);
    int server, client;

    ctx_roles(ctx, &server, &client);
    if (!server || SSL_CTX_sess_number(ctx) == 0)
        return;
    app_remove_cb = SSL_CTX_sess_get_remove_cb(ctx);
    SSL_CTX_sess_set_remove_cb(ctx, NULL);
#if OPENSSL_VERSION_NUMBER >= 0x30400000L
    SSL_CTX_flush_sessions_ex(ctx, 0); /* the long form is deprecated in 3.4 */
#else
    SSL_CTX_flush_sessions(ctx, 0);
#endif
    SSL_CTX_sess_set_remove_cb(ctx, app_remove_cb);
}

/* Which roles an SSL_CTX can play, from its method. */
static int ctx_roles(const SSL_CTX *ctx, int *server, int *client)
{
    const SSL_METHOD *m = SSL_CTX_get_ssl_method(ctx);

    *server = !(m == TLS_client_method() || m == DTLS_client_method());
    *client = !(m == TLS_server_method() || m == DTLS_server_method());
    return 1;
}

/* A both-roles ctx whose roles get different Schannel settings. */
static int schannel_roles_split(const EMSGUARD_POLICY *policy, const SSL_CTX *ctx)
{
    int server, client;

    ctx_roles(ctx, &server, &client);
    return server && client && emsguard_schannel_any(policy)
        && emsguard_schannel_roles_differ(policy);
}

/*
 * Applies the Schannel settings to |ctx|: to the ctx itself when it plays
 * one role or both roles get the same, otherwise per connection at handshake
 * start (*per_ssl set).
 */
static int apply_schannel(const EMSGUARD_POLICY *policy, SSL_CTX *ctx, int *per_ssl)
{
    int server, client, ok = 1;

    *per_ssl = 0;
    if (!emsguard_schannel_any(policy))
        return 1;
    ctx_roles(ctx, &server, &client);
    if (server && client && emsguard_schannel_roles_differ(policy)) {
        /* Versions and options per connection (hold); suites, groups here. */
        *per_ssl = 1;
        return emsguard_schannel_apply_server_ctx(policy, ctx)
            && emsguard_schannel_apply_shared(policy, ctx);
    }
    if (server)
        ok = emsguard_schannel_apply(policy, EG_ROLE_SERVER, ctx, NULL);
    if (ok && client && !server)
        ok = emsguard_schannel_apply(policy, EG_ROLE_CLIENT, ctx, NULL);
    return ok;
}

/* Tries the Schannel settings on a scratch ctx, so a refusal changes nothing. */
static int schannel_settings_accepted(const EMSGUARD_POLICY *policy, SSL_CTX *ctx)
{
    SSL_CTX *scratch;
    int per_ssl, ok;

    if (!emsguard_schannel_any(policy))
        return 1;
    scratch = SSL_CTX_new(SSL_CTX_get_ssl_method(ctx));
    if (scratch == NULL) {
        emsguard_raise(ERR_R_MALLOC_FAILURE, "cannot allocate a scratch SSL_CTX");
        return 0;
    }
    ok = apply_schannel(policy, scratch, &per_ssl);
    if (ok && per_ssl) {
        SSL *s = SSL_new(scratch);

        ok = s != NULL && emsguard_schannel_apply(policy, EG_ROLE_SERVER, NULL, s)
            && emsguard_schannel_apply(policy, EG_ROLE_CLIENT, NULL, s);
        SSL_free(s);
        if (!ok)
            emsguard_raise(EMSGUARD_R_OPENSSL_SETTING,
                "OpenSSL refused the per-role Schannel settings");
    }
    SSL_CTX_free(scratch);
    return ok;
}

/*
 * RequireExtendedMasterSecret=1 on a ctx that can serve TLS <= 1.2 while
 * OpenSSL has EMS switched off on it: SSL_OP_NO_EXTENDED_MASTER_SECRET, set
 * by the application or by SSL_CTX_new() from openssl.cnf ("Options =
 * -ExtendedMasterSecret" in the system_default section).  libssl then
 * ignores the client's EMS, so no TLS 1.2 client could meet the
 * requirement; emsguard does not override the application's option, it
 * refuses the combination.  (Set later on the ctx or an SSL, the option
 * makes client_hello_cb reject TLS <= 1.2 ClientHellos instead.)
 */
static int require_fits_options(const EMSGUARD_POLICY *policy, SSL_CTX *ctx)
{
    SSL *probe;
    int server;

    if (!policy->values[EG_KEY_REQUIRE_EMS]
        || !emsguard_role_uses_ems(policy, EG_ROLE_SERVER)
        || (SSL_CTX_get_options(ctx) & SSL_OP_NO_EXTENDED_MASTER_SECRET) == 0
        || SSL_CTX_get_min_proto_version(ctx) == TLS1_3_VERSION)
        return 1;
    /* The requirement covers the server role: can this method accept? */
    if ((probe = SSL_new(ctx)) == NULL) {
        emsguard_raise(ERR_R_MALLOC_FAILURE, "cannot allocate an SSL to check the SSL_CTX");
        return 0;
    }
    server = SSL_is_server(probe);
    SSL_free(probe);
    if (!server)
        return 1;
    emsguard_raise(EMSGUARD_R_EMS_REQUIRED,
        "RequireExtendedMasterSecret=1, but Extended Master Secret is switched off on this "
        "SSL_CTX (SSL_OP_NO_EXTENDED_MASTER_SECRET, set by the application or by "
        "'Options = -ExtendedMasterSecret' in openssl.cnf): no TLS 1.2 client could connect; "
        "remove that option or set RequireExtendedMasterSecret=0");
    return 0;
}

int EMSGUARD_enable_policy(SSL_CTX *ctx, const EMSGUARD_POLICY *policy)
{
    struct eg_ctx_state *st;
    int per_ssl = 0;

    if (ctx == NULL || policy == NULL) {
        emsguard_raise(EMSGUARD_R_INVALID_ARGUMENT, "EMSGUARD_enable: ctx or policy is NULL");
        return 0;
    }
    if (!indices_ready()) {
        emsguard_raise(ERR_R_MALLOC_FAILURE, "cannot allocate ex_data indices");
        return 0;
    }
    if ((st = SSL_CTX_get_ex_data(ctx, ctx_state_idx)) != NULL) {
        if (emsguard_policy_equal(&st->policy, policy))
            return 1;
        emsguard_raise(EMSGUARD_R_ALREADY_ENABLED,
            "this SSL_CTX already has an emsguard policy with other values");
        return 0;
    }
    if (!require_fits_options(policy, ctx) || !schannel_settings_accepted(policy, ctx))
        return 0;
    if ((st = OPENSSL_zalloc(sizeof(*st))) == NULL) {
        emsguard_raise(ERR_R_MALLOC_FAILURE, "cannot allocate emsguard state");
        return 0;
    }
    st->policy = *policy;
    st->ctx = ctx;
    if (!emsguard_schannel_hold_init(&st->policy, ctx, schannel_roles_split(policy, ctx),
            &st->hold)) {
        emsguard_schannel_hold_clear(&st->hold);
        OPENSSL_free(st);
        return 0;
    }
    atomic_init(&st->app_new_cb, SSL_CTX_sess_get_new_cb(ctx));
    atomic_init(&st->app_get_cb, SSL_CTX_sess_get_get_cb(ctx));
    atomic_init(&st->app_info_cb, SSL_CTX_get_info_callback(ctx));
    note_app_info_cb(SSL_CTX_get_info_callback(ctx));
    if (!SSL_CTX_set_ex_data(ctx, ctx_state_idx, st)) {
        emsguard_schannel_hold_clear(&st->hold);
        OPENSSL_free(st);
        emsguard_raise(ERR_R_MALLOC_FAILURE, "cannot attach emsguard state to the SSL_CTX");
        return 0;
    }
    /*
     * The settings were accepted on a scratch ctx of the same method; the
     * only way left to fail is allocation, after which the ctx keeps what
     * OpenSSL applied and the policy callbacks still go in below.
     */
    if (!apply_schannel(&st->policy, ctx, &per_ssl))
        emsguard_log(&st->policy, EG_LEVEL_ERROR,
            "cannot apply every Schannel setting to the SSL_CTX");
    st->schannel_per_ssl = per_ssl;
    SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
    SSL_CTX_sess_set_get_cb(ctx, get_session_cb);
    SSL_CTX_set_info_callback(ctx, info_cb);
    SSL_CTX_set_session_ticket_cb(ctx, generate_ticket_cb, decrypt_ticket_cb, st);
    /* EMS consistency across renegotiation, RequireEMS, DHE avoidance. */
    SSL_CTX_set_client_hello_cb(ctx, client_hello_cb, st);
    if (emsguard_schannel_min_bits(&st->policy, EG_KEY_K_DH_CLIENT_MIN) > 0
        || client_requires_ems(&st->policy, ctx) || st->hold.filter) {
        /* OpenSSL's default callback (the security level) when none was set. */
        set_app_security_cb(st, SSL_CTX_get_security_callback(ctx));
        SSL_CTX_set_security_callback(ctx, client_requires_ems(&st->policy, ctx)
                ? client_require_security_cb : security_cb);
    }
    if (emsguard_schannel_min_bits(&st->policy, EG_KEY_K_PKCS_CLIENT_MIN) > 0
        || emsguard_schannel_min_bits(&st->policy, EG_KEY_K_PKCS_SERVER_MIN) > 0) {
        st->app_verify_cb = SSL_CTX_get_verify_callback(ctx);
        SSL_CTX_set_verify(ctx, SSL_CTX_get_verify_mode(ctx), verify_cb);
    }
    emsguard_ctx_state_publish(ctx, st, ctx_state_idx);
    flush_internal_cache(ctx);
    emsguard_policy_log_weakenings(&st->policy, "SSL_CTX policy");
    return 1;
}

int EMSGUARD_enable_ex(SSL_CTX *ctx, OSSL_LIB_CTX *libctx)
{
    EMSGUARD_POLICY policy;
    int found = 0;

    emsguard_policy_defaults(&policy);
    if (!EMSGUARD_POLICY_from_provider(&policy, libctx, &found))
        return 0;
    emsguard_log(&policy, EG_LEVEL_DEBUG, "EMSGUARD_enable: policy from %s",
        found ? "the emsguard provider" : "built-in defaults");
    return EMSGUARD_enable_policy(ctx, &policy);
}

int EMSGUARD_enable(SSL_CTX *ctx)
{
    return EMSGUARD_enable_ex(ctx, NULL);
}

int EMSGUARD_CTX_is_enabled(const SSL_CTX *ctx)
{
    return state_of_ctx(ctx) != NULL;
}

static struct eg_ctx_state *enabled_state(const SSL_CTX *ctx, const char *func)
{
    struct eg_ctx_state *st = state_of_ctx(ctx);

    if (st == NULL)
        emsguard_raise(EMSGUARD_R_NOT_ENABLED,
            "%s: emsguard is not enabled on this SSL_CTX; call EMSGUARD_enable() first",
            func);
    return st;
}

int EMSGUARD_CTX_set_session_ticket_cb(SSL_CTX *ctx,
    SSL_CTX_generate_session_ticket_fn gen_cb,
    SSL_CTX_decrypt_session_ticket_fn dec_cb, void *arg)
{
    struct eg_ctx_state *st = enabled_state(ctx, "EMSGUARD_CTX_set_session_ticket_cb");

    if (st == NULL)
        return 0;
    st->app_gen_cb = gen_cb;
    st->app_dec_cb = dec_cb;
    st->app_ticket_arg = arg;
    return 1;
}

int EMSGUARD_CTX_set_client_hello_cb(SSL_CTX *ctx, SSL_client_hello_cb_fn cb,
    void *arg)
{
    struct eg_ctx_state *st = ctx != NULL ? state_of_ctx(ctx) : NULL;

    if (ctx == NULL) {
        emsguard_raise(EMSGUARD_R_INVALID_ARGUMENT,
            "EMSGUARD_CTX_set_client_hello_cb: ctx is NULL");
        return 0;
    }
    if (st == NULL) {
        SSL_CTX_set_client_hello_cb(ctx, cb, arg); /* nothing of ours to keep */
        return 1;
    }
    st->app_hello_cb = cb;
    st->app_hello_arg = arg;
    /*
     * Our wrapper calls it.  Installing the wrapper (recognised as emsguard's
     * by libemsguard-preload) rather than |cb| keeps a preloaded process
     * from routing this call back here.
     */
    SSL_CTX_set_client_hello_cb(ctx, client_hello_cb, st);
    return 1;
}

int EMSGUARD_CTX_sess_set_new_cb(SSL_CTX *ctx, new_session_fn app_cb)
{
    struct eg_ctx_state *st = enabled_state(ctx, "EMSGUARD_CTX_sess_set_new_cb");

    if (st == NULL)
        return 0;
    atomic_store(&st->app_new_cb, app_cb);
    return 1;
}

int EMSGUARD_CTX_sess_set_get_cb(SSL_CTX *ctx, get_session_fn app_cb)
{
    struct eg_ctx_state *st = enabled_state(ctx, "EMSGUARD_CTX_sess_set_get_cb");

    if (st == NULL)
        return 0;
    atomic_store(&st->app_get_cb, app_cb);
    return 1;
}

int EMSGUARD_CTX_set_info_callback(SSL_CTX *ctx, info_fn cb)
{
    struct eg_ctx_state *st = enabled_state(ctx, "EMSGUARD_CTX_set_info_callback");

    if (st == NULL)
        return 0;
    note_app_info_cb(cb);
    atomic_store(&st->app_info_cb, cb);
    return 1;
}

int EMSGUARD_set_info_callback(SSL *ssl, info_fn cb)
{
    struct eg_conn *conn;

    if (ssl == NULL) {
        emsguard_raise(EMSGUARD_R_INVALID_ARGUMENT, "EMSGUARD_set_info_callback: ssl is NULL");
        return 0;
    }
    if (enabled_state(SSL_get_SSL_CTX(ssl), "EMSGUARD_set_info_callback") == NULL)
        return 0;
    note_app_info_cb(cb);
    /* A record SSL_dup() copies: see emsguard_conn_get_durable(). */
    if (!indices_ready() || (conn = emsguard_conn_get_durable(ssl)) == NULL) {
        emsguard_raise(ERR_R_MALLOC_FAILURE, "EMSGUARD_set_info_callback: cannot store the callback");
        return 0;
    }
    conn->app_info_cb = cb;
    /*
     * Always ours, even for NULL: info_cb then falls back to the ctx's
     * application callback, which is what a NULL per-SSL callback means.
     */
    SSL_set_info_callback(ssl, info_cb);
    return 1;
}

/*
 * The getters answer what OpenSSL's would without emsguard.  Where libssl
 * holds emsguard's callback, that is the application's callback emsguard
 * calls from it: an application that chains (prev = get(); set(mine); mine
 * calls prev) must reach its previous callback, not emsguard's (which, as
 * the outer call's, returns at once: see struct app_call).  Anywhere else
 * -- no policy, or a plain libssl setter replaced emsguard's -- libssl's
 * own answer is the truth.  Never one of emsguard's own callbacks.
 */
new_session_fn EMSGUARD_CTX_sess_get_new_cb(SSL_CTX *ctx)
{
    struct eg_ctx_state *st;
    new_session_fn cb;

    if (ctx == NULL || (cb = SSL_CTX_sess_get_new_cb(ctx)) != new_session_cb)
        return ctx != NULL ? cb : NULL;
    return (st = state_of_ctx(ctx)) != NULL ? atomic_load(&st->app_new_cb) : NULL;
}

get_session_fn EMSGUARD_CTX_sess_get_get_cb(SSL_CTX *ctx)
{
    struct eg_ctx_state *st;
    get_session_fn cb;

    if (ctx == NULL || (cb = SSL_CTX_sess_get_get_cb(ctx)) != get_session_cb)
        return ctx != NULL ? cb : NULL;
    return (st = state_of_ctx(ctx)) != NULL ? atomic_load(&st->app_get_cb) : NULL;
}

info_fn EMSGUARD_CTX_get_info_callback(SSL_CTX *ctx)
{
    struct eg_ctx_state *st;
    info_fn cb;

    if (ctx == NULL || (cb = SSL_CTX_get_info_callback(ctx)) != info_cb)
        return ctx != NULL ? cb : NULL;
    return (st = state_of_ctx(ctx)) != NULL ? atomic_load(&st->app_info_cb) : NULL;
}

/*
 * Per SSL, libssl's answer is the SSL's own callback (NULL: the ctx's is
 * used).  emsguard's there stands for the one EMSGUARD_set_info_callback()
 * stored in the connection's record; NULL there too means the ctx's.
 */
info_fn EMSGUARD_get_info_callback(const SSL *ssl)
{
    struct eg_conn *conn;
    info_fn cb;

    if (ssl == NULL || (cb = SSL_get_info_callback(ssl)) != info_cb)
        return ssl != NULL ? cb : NULL;
    return (conn = conn_of(ssl)) != NULL ? conn->app_info_cb : NULL;
}

/* ---- the application's verify and security callbacks ------------------------ */
/*
 * emsguard's verify callback (PKCS MinKeyBitLength) and security callback
 * (Diffie-Hellman ClientMinKeyBitLength, a Require=1 client's check of the
 * ServerHello) call the application's.  A plain libssl setter would replace
 * them; these store the application's callback where emsguard's calls it.
 * Where emsguard installed no such callback (no policy, the policy needs
 * none, or a plain setter replaced it), they are the plain setters.
 */

static int is_our_security_cb(security_fn cb)
{
    return cb == security_cb || cb == client_require_security_cb;
}

static int null_argument(const void *p, const char *func, const char *what)
{
    if (p != NULL)
        return 0;
    emsguard_raise(EMSGUARD_R_INVALID_ARGUMENT, "%s: %s is NULL", func, what);
    return 1;
}

int EMSGUARD_CTX_set_verify(SSL_CTX *ctx, int mode, SSL_verify_cb cb)
{
    struct eg_ctx_state *st;

    if (null_argument(ctx, "EMSGUARD_CTX_set_verify", "ctx"))
        return 0;
    if ((st = state_of_ctx(ctx)) == NULL || SSL_CTX_get_verify_callback(ctx) != verify_cb) {
        SSL_CTX_set_verify(ctx, mode, cb); /* nothing of ours to keep */
        return 1;
    }
    st->app_verify_cb = cb;
    /* The mode; emsguard's callback stays (the preload passes it on as is). */
    SSL_CTX_set_verify(ctx, mode, verify_cb);
    return 1;
}

/*
 * As SSL_set_verify(): a NULL callback changes only the mode, and the SSL
 * keeps the callback it has.
 */
int EMSGUARD_set_verify(SSL *ssl, int mode, SSL_verify_cb cb)
{
    struct eg_app_ssl_cbs *cbs;

    if (null_argument(ssl, "EMSGUARD_set_verify", "ssl"))
        return 0;
    if (cb == NULL || SSL_get_verify_callback(ssl) != verify_cb) {
        SSL_set_verify(ssl, mode, cb);
        return 1;
    }
    if ((cbs = app_ssl_cbs_need(ssl, "EMSGUARD_set_verify")) == NULL)
        return 0;
    cbs->verify = cb;
    SSL_set_verify(ssl, mode, NULL); /* the mode only: emsguard's callback stays */
    return 1;
}

/*
 * Where emsguard checks the peer's certificate (its verify callback is
 * installed), the application's certificate verification runs from ours,
 * which checks the key after it.  NULL restores libssl's
 * X509_verify_cert(), which calls emsguard's verify callback.
 */
int EMSGUARD_CTX_set_cert_verify_callback(SSL_CTX *ctx,
    int (*cb)(X509_STORE_CTX *store, void *arg), void *arg)
{
    struct eg_ctx_state *st;

    if (null_argument(ctx, "EMSGUARD_CTX_set_cert_verify_callback", "ctx"))
        return 0;
    if ((st = state_of_ctx(ctx)) == NULL || SSL_CTX_get_verify_callback(ctx) != verify_cb
        || cb == NULL) {
        SSL_CTX_set_cert_verify_callback(ctx, cb, arg);
        if (st != NULL)
            st->app_cert_verify_cb = NULL;
        return 1;
    }
    st->app_cert_verify_cb = cb;
    st->app_cert_verify_arg = arg;
    SSL_CTX_set_cert_verify_callback(ctx, cert_verify_cb, st);
    return 1;
}

/* NULL: no callback of the application's (emsguard's checks only). */
int EMSGUARD_CTX_set_security_callback(SSL_CTX *ctx, security_fn cb)
{
    struct eg_ctx_state *st;

    if (null_argument(ctx, "EMSGUARD_CTX_set_security_callback", "ctx"))
        return 0;
    if ((st = state_of_ctx(ctx)) == NULL
        || !is_our_security_cb(SSL_CTX_get_security_callback(ctx))) {
        SSL_CTX_set_security_callback(ctx, cb);
        return 1;
    }
    set_app_security_cb(st, cb);
    return 1;
}

int EMSGUARD_set_security_callback(SSL *ssl, security_fn cb)
{
    struct eg_app_ssl_cbs *cbs;

    if (null_argument(ssl, "EMSGUARD_set_security_callback", "ssl"))
        return 0;
    if (!is_our_security_cb(SSL_get_security_callback(ssl))) {
        SSL_set_security_callback(ssl, cb);
        return 1;
    }
    if ((cbs = app_ssl_cbs_need(ssl, "EMSGUARD_set_security_callback")) == NULL)
        return 0;
    cbs->security = cb;
    cbs->has_security = 1;
    return 1;
}

/*
 * The getters: where libssl holds emsguard's callback, the application's
 * that emsguard calls from it (see EMSGUARD_CTX_get_info_callback()); per
 * SSL, the SSL's own, else its ctx's.  OpenSSL's default security callback
 * (the security level) counts as the application's: it is what emsguard
 * calls when the application set none.
 */
SSL_verify_cb EMSGUARD_CTX_get_verify_callback(const SSL_CTX *ctx)
{
    struct eg_ctx_state *st;
    SSL_verify_cb cb;

    if (ctx == NULL || (cb = SSL_CTX_get_verify_callback(ctx)) != verify_cb)
        return ctx != NULL ? cb : NULL;
    return (st = state_of_ctx(ctx)) != NULL ? st->app_verify_cb : NULL;
}

SSL_verify_cb EMSGUARD_get_verify_callback(const SSL *ssl)
{
    SSL_verify_cb cb;

    if (ssl == NULL || (cb = SSL_get_verify_callback(ssl)) != verify_cb)
        return ssl != NULL ? cb : NULL;
    return app_verify_cb_of(ssl, state_of_ssl(ssl));
}

security_fn EMSGUARD_CTX_get_security_callback(const SSL_CTX *ctx)
{
    struct eg_ctx_state *st;
    security_fn cb;

    if (ctx == NULL || !is_our_security_cb(cb = SSL_CTX_get_security_callback(ctx)))
        return ctx != NULL ? cb : NULL;
    return (st = state_of_ctx(ctx)) != NULL ? st->app_security_cb : NULL;
}

security_fn EMSGUARD_get_security_callback(const SSL *ssl)
{
    security_fn cb;

    if (ssl == NULL || !is_our_security_cb(cb = SSL_get_security_callback(ssl)))
        return ssl != NULL ? cb : NULL;
    return app_security_cb_of(ssl, state_of_ssl(ssl));
}

static const char *const counter_names[EMSGUARD_CNT_MAX] = {
    [EMSGUARD_CNT_FULL_HANDSHAKES] = "full_handshakes",
    [EMSGUARD_CNT_RESUMPTIONS] = "resumptions",
    [EMSGUARD_CNT_REFUSED_NO_EMS] = "refused_no_ems",
    [EMSGUARD_CNT_REFUSED_EMS_DISABLED] = "refused_ems_disabled",
    [EMSGUARD_CNT_REFUSED_UNREADABLE] = "refused_unreadable",
    [EMSGUARD_CNT_FULL_WITHOUT_EMS] = "full_without_ems",
    [EMSGUARD_CNT_ABORTED_INCONSISTENT] = "aborted_inconsistent",
    [EMSGUARD_CNT_SESSIONS_NOT_CACHED] = "sessions_not_cached",
    [EMSGUARD_CNT_TICKETS_WITHHELD] = "tickets_withheld",
    [EMSGUARD_CNT_POLICY_BYPASSED] = "policy_bypassed",
    [EMSGUARD_CNT_REJECTED_NO_EMS] = "rejected_no_ems",
    [EMSGUARD_CNT_REFUSED_SNI_SWITCH] = "refused_sni_switch",
    [EMSGUARD_CNT_REFUSED_SCHANNEL] = "refused_schannel",
};

const char *EMSGUARD_counter_name(EMSGUARD_COUNTER which)
{
    return (unsigned)which < EMSGUARD_CNT_MAX ? counter_names[which] : NULL;
}

int EMSGUARD_CTX_get_counter(const SSL_CTX *ctx, EMSGUARD_COUNTER which,
    uint64_t *value)
{
    struct eg_ctx_state *st = state_of_ctx(ctx);

    if (st == NULL) {
        emsguard_raise(EMSGUARD_R_NOT_ENABLED, "EMSGUARD_CTX_get_counter: emsguard is not enabled on this SSL_CTX");
        return 0;
    }
    if ((unsigned)which >= EMSGUARD_CNT_MAX || value == NULL) {
        emsguard_raise(EMSGUARD_R_INVALID_ARGUMENT, "EMSGUARD_CTX_get_counter: unknown counter %d or NULL value", (int)which);
        return 0;
    }
    *value = atomic_load_explicit(&st->counters[which], memory_order_relaxed);
    return 1;
}
