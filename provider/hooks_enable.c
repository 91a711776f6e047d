/* SPDX-License-Identifier: Apache-2.0 */
/*
 * EMSGUARD_enable*(): applying the policy to an SSL_CTX through OpenSSL
 * 3.0's public callbacks.  docs/enforcement.md lists every path into a
 * handshake, the lever that guards it and its test; in short:
 *
 * Server role:
 *  - get-session callback (external cache) and ticket decrypt callback see
 *    the session before libssl decides; a refused session becomes a cache
 *    miss, i.e. a full handshake without an alert (hooks_server.c).
 *  - the internal cache is never given a session that may not be resumed:
 *    libssl marks it not resumable, with a session ID context of its own,
 *    before it could cache it (eg_isolate_refused_new_session), and the
 *    new-session callback removes any that still arrives, so internal
 *    lookups only ever find sessions the policy allows; the cache is
 *    emptied at enable (flush_internal_cache).
 *  - the ticket decrypt callback also withholds tickets from a handshake
 *    whose new session will lack EMS.
 *  - the ClientHello callback keeps renegotiations consistent with the
 *    previous ClientHello and applies RequireExtendedMasterSecret=1 (a
 *    rejection, or TLS 1.3 only: pin_tls13) and
 *    DisableDHEWithoutExtendedMasterSecret (hooks_hello.c, hooks_dhe.c).
 * Client role:
 *  - the info callback at handshake start drops a session that may not be
 *    offered, before the ClientHello is written, also at a renegotiation
 *    (eg_withhold_session_at_renegotiation); client connections of a ctx
 *    that can also serve get a session ID context of their own
 *    (hooks_client.c).
 *  - with RequireExtendedMasterSecret=1 the security callback refuses a
 *    ServerKeyExchange after a ServerHello without EMS (hooks_security.c).
 * Both: the info callback applies the Disable toggles and the held
 * Schannel values per connection and counts completed handshakes
 * (hooks_handshake.c, hooks_schannel.c); a handshake that got past these
 * hooks is refused when it completes (hooks_refused.c).
 * The application's own callbacks are chained behind emsguard's
 * (hooks_chain.c).
 */
#include <stdatomic.h>
#include <openssl/ssl.h>
#include "hooks.h"

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
 * makes eg_client_hello_cb reject TLS <= 1.2 ClientHellos instead.)
 */
static int require_fits_options(const EMSGUARD_POLICY *policy, SSL_CTX *ctx)
{
    SSL *probe;
    int server;

    if (!emsguard_policy_requires_ems(policy, EG_ROLE_SERVER)
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

/* RequireExtendedMasterSecret=1 binds the client role, and |ctx| can be a client. */
static int client_requires_ems(const EMSGUARD_POLICY *policy, const SSL_CTX *ctx)
{
    int server, client;

    ctx_roles(ctx, &server, &client);
    return client && client_role_requires_ems(policy);
}

int EMSGUARD_enable_policy(SSL_CTX *ctx, const EMSGUARD_POLICY *policy)
{
    struct eg_ctx_state *st;
    int per_ssl = 0;

    if (ctx == NULL || policy == NULL) {
        emsguard_raise(EMSGUARD_R_INVALID_ARGUMENT, "EMSGUARD_enable: ctx or policy is NULL");
        return 0;
    }
    if (!eg_indices_ready()) {
        emsguard_raise(ERR_R_MALLOC_FAILURE, "cannot allocate ex_data indices");
        return 0;
    }
    if ((st = SSL_CTX_get_ex_data(ctx, eg_ctx_state_idx)) != NULL) {
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
    eg_note_app_info_cb(SSL_CTX_get_info_callback(ctx));
    if (!SSL_CTX_set_ex_data(ctx, eg_ctx_state_idx, st)) {
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
    SSL_CTX_sess_set_new_cb(ctx, eg_new_session_cb);
    SSL_CTX_sess_set_get_cb(ctx, eg_get_session_cb);
    SSL_CTX_set_info_callback(ctx, eg_info_cb);
    SSL_CTX_set_session_ticket_cb(ctx, eg_generate_ticket_cb, eg_decrypt_ticket_cb, st);
    /* EMS consistency across renegotiation, RequireEMS, DHE avoidance. */
    SSL_CTX_set_client_hello_cb(ctx, eg_client_hello_cb, st);
    if (emsguard_schannel_min_bits(&st->policy, EG_KEY_K_DH_CLIENT_MIN) > 0
        || client_requires_ems(&st->policy, ctx) || st->hold.filter) {
        /* OpenSSL's default callback (the security level) when none was set. */
        eg_set_app_security_cb(st, SSL_CTX_get_security_callback(ctx));
        SSL_CTX_set_security_callback(ctx,
            eg_security_cb_for(st, client_requires_ems(&st->policy, ctx)));
    }
    if (emsguard_schannel_min_bits(&st->policy, EG_KEY_K_PKCS_CLIENT_MIN) > 0
        || emsguard_schannel_min_bits(&st->policy, EG_KEY_K_PKCS_SERVER_MIN) > 0) {
        st->app_verify_cb = SSL_CTX_get_verify_callback(ctx);
        SSL_CTX_set_verify(ctx, SSL_CTX_get_verify_mode(ctx), eg_verify_cb);
    }
    emsguard_ctx_state_publish(ctx, st, eg_ctx_state_idx);
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
