/*
 * Keyed 64-bit fingerprints of secrets (SipHash-2-4 with a per-process
 * random key), so that emsguard can recognise a master secret again without
 * keeping it: the TLS1-PRF guard links key expansions to derivations, and
 * the session code remembers which master secrets were made with EMS.
 */
#include <endian.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include "internal.h"

static unsigned char fp_key[16];
static CRYPTO_ONCE fp_once = CRYPTO_ONCE_STATIC_INIT;
static int fp_ready;
/* Set after fp_init() succeeded: then the once-lock is skipped. */
static atomic_int fp_key_set;

static void fp_init(void)
{
    fp_ready = RAND_bytes(fp_key, sizeof(fp_key)) == 1;
    atomic_store_explicit(&fp_key_set, fp_ready, memory_order_release);
}

static uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

static uint64_t load_le64(const unsigned char *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v)); /* one load, not eight */
    return le64toh(v);
}

#define SIPROUND(v0, v1, v2, v3)                                        \
    do {                                                                \
        v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);       \
        v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;                          \
        v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;                          \
        v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);       \
    } while (0)

/* SipHash-2-4 (Aumasson and Bernstein), written from the paper. */
static uint64_t siphash24(const unsigned char key[16], const unsigned char *in,
    size_t len)
{
    uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
    uint64_t v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;
    unsigned char tail[8] = { 0 };
    uint64_t m;
    size_t i;

    for (i = 0; i + 8 <= len; i += 8) {
        m = load_le64(in + i);
        v3 ^= m;
        SIPROUND(v0, v1, v2, v3);
        SIPROUND(v0, v1, v2, v3);
        v0 ^= m;
    }
    memcpy(tail, in + i, len - i);
    tail[7] = (unsigned char)len;
    m = load_le64(tail);
    /*
     * The last block is the only copy of the secret that lives in memory,
     * when it holds any of it (a 48-byte master secret leaves it empty).
     */
    if (len > i)
        OPENSSL_cleanse(tail, sizeof(tail));
    v3 ^= m;
    SIPROUND(v0, v1, v2, v3);
    SIPROUND(v0, v1, v2, v3);
    v0 ^= m;
    v2 ^= 0xff;
    for (i = 0; i < 4; i++)
        SIPROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

/* 0 means "no fingerprint" (the RNG failed); real ones are never 0. */
uint64_t emsguard_fingerprint(const unsigned char *secret, size_t len)
{
    if (!atomic_load_explicit(&fp_key_set, memory_order_acquire)
        && (!CRYPTO_THREAD_run_once(&fp_once, fp_init) || !fp_ready))
        return 0;
    return siphash24(fp_key, secret, len) | 1;
}

