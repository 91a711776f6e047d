/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Observing DH shared secrets inside libssl.
 *
 * TLS 1.2 uses the DHE shared secret Z, leading zero bytes stripped, as the
 * premaster secret (RFC 5246 8.1.2); stacks that keep the zeros fail about
 * one handshake in 256.  libssl derives Z with EVP_PKEY_derive(), so the
 * executable defines that function itself: the dynamic linker binds libssl's
 * call to this definition (ld exports it because libssl references it), and
 * it forwards to libcrypto's (dlsym RTLD_NEXT), unchanged.  It only counts,
 * per thread, the DH derivations and those whose secret was shorter than the
 * prime, i.e. began with a zero byte.  Other derivations (EC, X25519) pass
 * through untouched.
 *
 * An optional hook, called before the real derivation of a DH secret, may
 * change the derivation context (a test peer uses it to reproduce the
 * padding bug); dh_observe_set_hook(NULL, NULL) removes it.
 */
#ifndef EMSGUARD_TOOLS_DH_OBSERVE_H
#define EMSGUARD_TOOLS_DH_OBSERVE_H

#include <openssl/evp.h>

typedef struct {
    unsigned long derivations; /* DH secrets derived by this thread */
    unsigned long leading_zero; /* of those, Z began with a 0x00 byte */
} dh_observe_stats;

/* 1 if this executable's EVP_PKEY_derive is the one the process uses. */
int dh_observe_active(void);

/* This thread's counts since it started. */
void dh_observe_get(dh_observe_stats *stats);

/* Hook run before a DH derivation with an output buffer; returns 1 to go
 * on, 0 to fail the derivation.  Process-wide. */
typedef int (*dh_observe_hook)(EVP_PKEY_CTX *ctx, void *arg);
void dh_observe_set_hook(dh_observe_hook hook, void *arg);

#endif
