/* SPDX-License-Identifier: Apache-2.0 */
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


/* ---- master secrets between derivation and key expansion ----------------- */

/*
 * The TLS1-PRF guard's table: a master secret derived here leaves its
 * fingerprint until its key expansion takes it; a key expansion that finds
 * none is a resumption.  Handshakes sit in that gap one network read at
 * most, so the table holds the handshakes in flight; 32,768 entries in
 * buckets of 16 (two cache lines) keep 5,000 at once with a chance of a full
 * bucket below one in 10^5, in 256 KiB touched only as used.
 *
 * An entry is the fingerprint's top 40 bits and the low 24 bits of the
 * derivation count when it was made (its age).  A full bucket gives up its
 * oldest entry: a connection that sent ClientKeyExchange and left never
 * takes its entry, and the oldest is the one most likely to be such.  Each
 * entry lost is reported, so the audit's resumption count is high by at
 * most the number lost (exact while none are).
 */
#define FP_BUCKET_SLOTS 16
#define FP_BUCKETS 2048
#define FP_AGE_BITS 24
#define FP_AGE_MASK ((1u << FP_AGE_BITS) - 1)
#define FP_RETRIES 4

static _Alignas(64) _Atomic uint64_t fp_table[FP_BUCKETS][FP_BUCKET_SLOTS];

static _Atomic uint64_t *fp_bucket(uint64_t fp)
{
    return fp_table[(fp >> 1) % FP_BUCKETS]; /* bit 0 is always 1 */
}

/* The bits that identify |fp| in its bucket; never 0 (0 is "empty"). */
static uint64_t fp_tag(uint64_t fp)
{
    uint64_t tag = fp >> FP_AGE_BITS;

    return tag != 0 ? tag : 1;
}

int emsguard_fp_remember(uint64_t fp, uint32_t seq)
{
    _Atomic uint64_t *b = fp_bucket(fp);
    uint64_t entry = (fp_tag(fp) << FP_AGE_BITS) | (seq & FP_AGE_MASK);
    int attempt, i;

    if (fp == 0)
        return 0; /* no fingerprint: its key expansion will look resumed */
    for (attempt = 0; attempt < FP_RETRIES; attempt++) {
        uint64_t oldest = 0;
        uint32_t oldest_age = 0;
        int oldest_at = -1;

        for (i = 0; i < FP_BUCKET_SLOTS; i++) {
            uint64_t v = atomic_load_explicit(&b[i], memory_order_relaxed);
            uint32_t age;

            if (v == 0) {
                if (atomic_compare_exchange_strong(&b[i], &v, entry))
                    return 1;
                continue; /* another thread took it */
            }
            age = (seq - (uint32_t)(v & FP_AGE_MASK)) & FP_AGE_MASK;
            if (oldest_at < 0 || age > oldest_age) {
                oldest = v;
                oldest_age = age;
                oldest_at = i;
            }
        }
        if (oldest_at >= 0 && atomic_compare_exchange_strong(&b[oldest_at], &oldest, entry))
            return 0; /* the oldest entry is lost */
    }
    return 0; /* the bucket kept changing: this one is lost */
}

int emsguard_fp_take(uint64_t fp)
{
    _Atomic uint64_t *b = fp_bucket(fp);
    uint64_t tag = fp_tag(fp);
    int i;

    for (i = 0; i < FP_BUCKET_SLOTS; i++) {
        uint64_t v = atomic_load_explicit(&b[i], memory_order_relaxed);

        if (v != 0 && v >> FP_AGE_BITS == tag && atomic_compare_exchange_strong(&b[i], &v, 0))
            return 1;
    }
    return 0;
}
