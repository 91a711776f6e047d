/*
 * Check-asserting helpers shared by the Check suites (see harness_check.h).
 */
#include <stdarg.h>
#include <stdint.h>
#include <check.h>
#include <openssl/ssl.h>
#include "emsguard.h"
#include "harness.h"
#include "harness_check.h"

void hs_enable_with(SSL_CTX *ctx, ...)
{
    EMSGUARD_POLICY *policy = EMSGUARD_POLICY_new();
    const char *name;
    va_list ap;

    ck_assert_ptr_nonnull(policy);
    ck_assert_int_eq(EMSGUARD_POLICY_set(policy, EMSGUARD_EVENT_LOGGING, "0"), 1);
    va_start(ap, ctx);
    while ((name = va_arg(ap, const char *)) != NULL)
        ck_assert_int_eq(EMSGUARD_POLICY_set(policy, name, va_arg(ap, const char *)), 1);
    va_end(ap);
    ck_assert_int_eq(EMSGUARD_enable_policy(ctx, policy), 1);
    EMSGUARD_POLICY_free(policy);
}

SSL_CTX *hs_server(hs_mech mech, int flags)
{
    SSL_CTX *ctx = hs_server_ctx(mech, flags);

    ck_assert_ptr_nonnull(ctx);
    return ctx;
}

SSL_CTX *hs_policy_server(hs_mech mech, int flags)
{
    SSL_CTX *ctx = hs_server(mech, flags);

    hs_enable_with(ctx, NULL);
    return ctx;
}

SSL_CTX *hs_client(int flags)
{
    SSL_CTX *ctx = hs_client_ctx(flags);

    ck_assert_ptr_nonnull(ctx);
    return ctx;
}

SSL_CTX *hs_policy_client(int flags)
{
    SSL_CTX *ctx = hs_client(flags);

    hs_enable_with(ctx, NULL);
    return ctx;
}

uint64_t hs_counter(const SSL_CTX *ctx, EMSGUARD_COUNTER which)
{
    uint64_t v = 0;

    ck_assert_int_eq(EMSGUARD_CTX_get_counter(ctx, which, &v), 1);
    return v;
}

int hs_session_ems(const SSL_SESSION *sess)
{
    int ems = -1;

    ck_assert_int_eq(EMSGUARD_SESSION_has_ems(sess, &ems), 1);
    return ems;
}

SSL_SESSION *hs_new_session(SSL_CTX *sctx, SSL_CTX *cctx)
{
    hs_result r;
    SSL_SESSION *sess;

    ck_assert_msg(hs_handshake(sctx, cctx, NULL, &r), "first handshake failed");
    ck_assert_int_eq(r.reused, 0);
    ck_assert_ptr_nonnull(r.session);
    sess = r.session;
    r.session = NULL;
    return sess;
}

void hs_assert_resumed(const hs_result *r)
{
    ck_assert_msg(r->ok, "handshake failed (server alert %d, client alert %d)",
        r->server_alert, r->client_alert);
    ck_assert_msg(r->reused && r->server_reused, "expected a resumption, got a full handshake");
}

void hs_assert_full(const hs_result *r)
{
    ck_assert_msg(r->ok, "handshake failed (server alert %d, client alert %d)",
        r->server_alert, r->client_alert);
    ck_assert_msg(!r->reused && !r->server_reused, "expected a full handshake, got a resumption");
    ck_assert_int_eq(r->server_alert, -1);
    ck_assert_int_eq(r->client_alert, -1);
}
