/* SPDX-License-Identifier: Apache-2.0 */
/*
 * emsguard-bench helpers (bench_env.c): the library contexts, credentials,
 * SSL_CTXs and sanity-checked variants every part of the benchmark uses,
 * and one lean handshake.
 */
#ifndef EMSGUARD_BENCH_ENV_H
#define EMSGUARD_BENCH_ENV_H

#include <stddef.h>
#include <openssl/ssl.h>
#include "bench_types.h"

_Noreturn void bench_fail(const char *what);
void bench_module_path(char *out, size_t len);
/* Writes the configuration of |env| to a new temporary file (caller unlinks). */
void bench_write_config_file(int env, const char *module, char *path, size_t len);
/* |keys|: NULL generates new keys, else loads them from that PEM file. */
void bench_make_env(struct env *e, int env, const char *module, const char *keys);
void bench_free_env(struct env *e);
int bench_save_keys(const struct env *e, const char *path);

SSL_CTX *bench_server_ctx(const struct env *e, int suite, int mode);
SSL_CTX *bench_client_ctx(const struct env *e, int suite, int flags);
void bench_enable_default_policy(SSL_CTX *ctx);
/* The session to offer, after checking through the harness that it has EMS and resumes. */
SSL_SESSION *bench_checked_session(SSL_CTX *sctx, SSL_CTX *cctx, int mode);

/* Returns 1 resumed, 0 full, -1 failed. */
int bench_handshake(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *offer);

/* Builds and frees the ctxs of |variant| (envs indexed by ENV_*). */
void bench_make_setup(struct setup *st, int variant, struct env envs[ENV_COUNT]);
void bench_free_setup(struct setup *st);
void bench_check_guard_used(struct setup *st);

#endif
