/*
 * Helpers the Check suites share on top of the harness (harness.h): ctx
 * builders and getters that fail the running test with ck_assert instead of
 * returning an error.  Kept out of harness.c because the benchmarks, stress,
 * race and fuzz programs link the harness without libcheck.
 */
#ifndef EMSGUARD_TEST_HARNESS_CHECK_H
#define EMSGUARD_TEST_HARNESS_CHECK_H

#include <stdint.h>
#include <openssl/ssl.h>
#include "emsguard.h"
#include "harness.h"

/*
 * Applies a policy built from NULL-terminated name/value pairs on top of the
 * defaults.  EventLogging is 0 unless named, to keep the test output clean.
 */
void hs_enable_with(SSL_CTX *ctx, ...);

/* hs_server_ctx() / hs_client_ctx() that must succeed. */
SSL_CTX *hs_server(hs_mech mech, int flags);
SSL_CTX *hs_client(int flags);
/* The same with the default policy enabled (hs_enable_with(ctx, NULL)). */
SSL_CTX *hs_policy_server(hs_mech mech, int flags);
SSL_CTX *hs_policy_client(int flags);

/* The value of counter |which| of |ctx| (the getter must succeed). */
uint64_t hs_counter(const SSL_CTX *ctx, EMSGUARD_COUNTER which);
/* 1 if |sess| was established with EMS, 0 if not (the getter must succeed). */
int hs_session_ems(const SSL_SESSION *sess);

/* A full handshake that must succeed; returns the client's session. */
SSL_SESSION *hs_new_session(SSL_CTX *sctx, SSL_CTX *cctx);
/* The handshake completed as a resumption on both ends. */
void hs_assert_resumed(const hs_result *r);
/* The handshake completed in full on both ends, with no fatal alert. */
void hs_assert_full(const hs_result *r);

#endif
