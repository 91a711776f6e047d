/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Schannel values held on every connection.  The policy put them on the
 * SSL_CTX at enable; an application that configures its ctx afterwards
 * (nginx: ssl_protocols, ssl_ciphers, ssl_session_timeout,
 * ssl_session_cache; s_server: SSL_CTX_set_dh_auto) replaces them.
 * Touching the ctx again while connections run would race with libssl's
 * readers, so the values are held per connection instead (struct
 * eg_schannel_hold, schannel_hold.c), at handshake start and on each new
 * session, and the first time a setting had to be held this says so, once
 * per ctx (eg_warn_held).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <openssl/ssl.h>
#include "hooks.h"

/* ServerCacheTime > 0: a session's lifetime is at most the policy's. */
void eg_hold_session_lifetime(struct eg_ctx_state *st, SSL_SESSION *sess)
{
    long t = SSL_SESSION_get_timeout(sess);

    if (t <= st->hold.server_lifetime)
        return;
    /* libssl takes the cache lock itself when the session is in one. */
    SSL_SESSION_set_timeout(sess, st->hold.server_lifetime);
    if ((atomic_load_explicit(&st->hold_warned, memory_order_relaxed) & EG_HELD_LIFETIME) == 0) {
        char detail[64];

        snprintf(detail, sizeof(detail), "%ld s instead of %ld s", st->hold.server_lifetime, t);
        eg_warn_held(st, EG_HELD_LIFETIME, detail);
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
 * put back on the SSL and calls the ctx's callback first (eg_verify_cb), so
 * the application's choice still runs.  A per-SSL callback other than the
 * ctx's has nowhere to be kept for chaining (the connection's record is
 * one cache line): that connection is refused, loudly.
 */
static unsigned hold_verify_callback(struct eg_ctx_state *st, SSL *ssl)
{
    SSL_verify_cb cur = SSL_get_verify_callback(ssl);
    SSL_verify_cb ctx_cb = SSL_CTX_get_verify_callback(SSL_get_SSL_CTX(ssl));

    if (cur == eg_verify_cb)
        return 0;
    /* What eg_verify_cb chains: the ctx's, or (an SSL made before enable) the one before. */
    if (cur != ctx_cb && !(ctx_cb == eg_verify_cb && cur == st->app_verify_cb)) {
        emsguard_schannel_no_version(ssl);
        eg_log_event(st, ssl, EG_LEVEL_ERROR, "connection refused:",
            "reason=policy (SSL_set_verify() replaced the verify callback that checks "
            "KeyExchangeAlgorithms\\PKCS MinKeyBitLength on this connection; set the "
            "callback on the SSL_CTX instead, emsguard chains that one)", "verify-callback");
        return 0;
    }
    SSL_set_verify(ssl, SSL_get_verify_mode(ssl), eg_verify_cb);
    return EG_HELD_VERIFY;
}

/*
 * At handshake start, for a policy with Schannel values: the SSL's settings
 * intersected with the policy's (schannel_hold.c emsguard_schannel_hold_ssl),
 * checks that emsguard's security callback (which filters suites, groups
 * and late version changes) is the SSL's, and keeps new sessions out of a
 * cache the policy does not have.  Per SSL only: no other thread reads it.
 * Costs a few getters when the application changed nothing.
 */
__attribute__((noinline)) void eg_hold_schannel_settings(struct eg_ctx_state *st,
    SSL *ssl, eg_role role)
{
    unsigned fixed = emsguard_schannel_hold_ssl(&st->hold, role, ssl);

    /* A both-roles ctx has no role's range or options on it: nothing was overridden. */
    if (st->schannel_per_ssl)
        fixed &= ~(unsigned)(EG_HELD_VERSIONS | EG_HELD_OPTIONS);
    if (st->hold.filter && !eg_is_our_security_cb(SSL_get_security_callback(ssl), NULL)) {
        if (!emsguard_schannel_hold_suites(&st->hold, &st->policy, ssl)) {
            emsguard_schannel_no_version(ssl);
            eg_log_event(st, ssl, EG_LEVEL_ERROR, "connection refused:",
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
        eg_warn_held(st, fixed, NULL);
}
