/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers the Check suites share on top of the harness (harness.h): ctx
 * builders and getters that fail the running test with ck_assert instead of
 * returning an error.  Kept out of harness.c because the benchmarks, stress,
 * race and fuzz programs link the harness without libcheck.
 */
#ifndef EMSGUARD_TEST_HARNESS_CHECK_H
#define EMSGUARD_TEST_HARNESS_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <check.h>
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

/* The text of the newest emsguard error, or "" (and the queue cleared). */
const char *hs_last_error(void);
/* A new policy loaded from the registry export |file| (must succeed). */
EMSGUARD_POLICY *hs_load_reg(const char *file);
/*
 * Enables on |ctx| a policy built from NULL-terminated name/value pairs
 * |kv| (the defaults otherwise, EventLogging included); returns |ctx|.
 */
SSL_CTX *hs_enabled(SSL_CTX *ctx, const char *const *kv);
/* A TLS 1.2 client offering only |ciphers|. */
SSL_CTX *hs_client12(const char *ciphers);
/* The suite a handshake between new SSLs of the two ctxs negotiated, or "" if it failed. */
const char *hs_negotiated_suite(SSL_CTX *srv, SSL_CTX *cli);
/* A TLS 1.2 DHE-RSA server with a throwaway RSA-|rsa_bits| key and certificate. */
SSL_CTX *hs_rsa_dhe_server(int rsa_bits);
/* A verify callback that accepts any certificate (for hs_rsa_dhe_server()). */
int hs_accept_any_cert(int ok, X509_STORE_CTX *store);

/*
 * Runs the suite in this process (CK_NOFORK: leak checking sees everything,
 * failures stay readable), then cleans up the harness; returns main()'s
 * exit status.
 */
int hs_run_suite(Suite *(*make_suite)(void));
/* The same with each test in a child process (Check's default fork mode). */
int hs_run_suite_forked(Suite *(*make_suite)(void));
/*
 * main() of a suite that runs in this process (CK_NOFORK) on a build:
 * |module_path| gets $BUILD/emsguard.so (BUILD must name the build
 * directory), |tmpdir| $TMPDIR (default /tmp); the harness is cleaned up
 * after the run (hs_run_suite).  Returns main()'s exit status; |prog| names
 * it in messages.
 */
int hs_run_nofork(const char *prog, Suite *(*make_suite)(void), char *module_path,
    size_t module_path_size, char *tmpdir, size_t tmpdir_size);

#endif
