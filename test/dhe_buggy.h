/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A test-only TLS 1.2 peer with the DHE premaster-secret bug of old stacks.
 *
 * RFC 5246 section 8.1.2: the DHE premaster secret is the DH shared secret Z
 * with its leading zero bytes stripped.  Some stacks kept them, so whenever Z
 * begins with 0x00 (about 1 handshake in 256) the two ends derive different
 * keys and the handshake dies with bad_record_mac (alert 20).
 *
 * How it is made: the peer's SSL_CTXs live in their own OSSL_LIB_CTX, and
 * dhe_buggy.c defines EVP_PKEY_derive() itself.  The executable exports that
 * symbol (link it with -Wl,--export-dynamic-symbol=EVP_PKEY_derive or
 * -rdynamic), so the dynamic linker binds libssl's call to it; it forwards to
 * libcrypto's EVP_PKEY_derive (dlsym RTLD_NEXT).  For a DH derivation in the
 * buggy library context it first sets the "pad" parameter, which makes
 * libcrypto return Z at full prime length, leading zeros included -- exactly
 * the broken premaster secret.  Every other derivation in the process
 * (other library contexts, EC keys) is passed through untouched.
 *
 * In observe mode (dhe_buggy_set_keep_zeros(0)) the derivation stays correct
 * and only the counting remains: how many DH shared secrets began with a zero
 * byte (the correct, stripped secret is then shorter than the prime).  A probe
 * tool can use that to watch the 1-in-256 case without causing it.
 *
 * Not for the product: only test executables link this file.
 */
#ifndef EMSGUARD_TEST_DHE_BUGGY_H
#define EMSGUARD_TEST_DHE_BUGGY_H

#include <openssl/ssl.h>
#include <openssl/x509.h>

/* The cipher list of the buggy peer: DHE first, ECDHE also possible. */
#define DHE_BUGGY_CIPHERS "DHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"

/* Counts since dhe_buggy_init(), for the buggy library context only. */
typedef struct {
    unsigned long derivations; /* DH derivations that produced a secret */
    unsigned long leading_zero; /* of those, Z began with a 0x00 byte */
} dhe_buggy_stats;

/*
 * Creates the buggy library context (once; later calls return 1) and checks
 * that this executable's EVP_PKEY_derive is the one the process uses.
 * Returns 0 with the reason on stderr if not (wrong link flags).
 */
int dhe_buggy_init(void);

/* The buggy library context (NULL before dhe_buggy_init()). */
OSSL_LIB_CTX *dhe_buggy_libctx(void);

/* 1 (the default): keep leading zeros -- the bug.  0: observe only. */
void dhe_buggy_set_keep_zeros(int on);

/* Copies the counters; they are atomic, so any thread may read them. */
void dhe_buggy_get_stats(dhe_buggy_stats *stats);

/*
 * A new SSL_CTX of the buggy peer: TLS 1.2 only, no Extended Master Secret,
 * cipher list DHE_BUGGY_CIPHERS, security level 1.  The server role has a
 * throwaway RSA-1024 certificate, automatic DH parameters (the 1024-bit MODP
 * group for that key) and prefers its own order, so it picks DHE whenever
 * the client offers it.  The client role offers DHE first and verifies
 * nothing.  NULL on error.
 */
SSL_CTX *dhe_buggy_ctx(int server);

/*
 * A throwaway self-signed RSA key and certificate of |bits| bits in |libctx|
 * (NULL: the default), for the correct peers a test puts opposite the buggy
 * one (an EC certificate cannot do DHE-RSA).  The caller frees both.
 */
int dhe_rsa_credentials(OSSL_LIB_CTX *libctx, int bits, EVP_PKEY **key,
    X509 **cert);

/* Frees the library context and the certificate. */
void dhe_buggy_cleanup(void);

#endif
