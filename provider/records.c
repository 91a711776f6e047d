/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Where emsguard keeps its records: the policy state of each SSL_CTX
 * (opaque here: the hooks' struct eg_ctx_state) and the record of each
 * connection (struct eg_conn).  Storage only: what a record holds is
 * released through the callback the hooks register (emsguard_conn_register),
 * so this file calls no hooks code.
 *
 * ex_data would do for both, and stays the fallback, but it is slow where
 * it matters.  Every libssl callback first finds its ctx's state: through
 * SSL_CTX_get_ex_data that is four calls into libssl and libcrypto, cold
 * each time, four times per handshake.  And the first value set on an SSL
 * allocates its ex_data stack, and the record is another allocation:
 * together about 3,000 instructions and a reshuffled heap per connection,
 * which was most of what the policy cost a resumed handshake.
 *
 * So both live in fixed tables of slots owned by pointer:
 *  - a record claims a free slot among the few its owner's pointer hashes
 *    to, with a compare-and-swap on the owner word, and gives it back when
 *    the owner is freed: the ex_data free callback of our index runs for
 *    every SSL_CTX and SSL freed, with or without a value, so a slot cannot
 *    outlive its owner;
 *  - an owner is alive while anyone looks it up, so a lookup that finds its
 *    own pointer in a slot reads a value published before the pointer
 *    (release, acquire), and a lookup for another owner never reads it;
 *  - only the thread that drives an SSL touches its record (libssl forbids
 *    sharing one SSL between threads);
 *  - when an owner's slots are all taken (many open connections), or when
 *    the record must follow SSL_dup() (see emsguard_conn_get_durable), it
 *    goes to ex_data.  Both kinds behave the same to the caller.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include "internal.h"

/* ---- SSL_CTX -> policy state ------------------------------------------- */

#define CTX_SLOTS 64 /* SSL_CTXs with a policy at once, before ex_data */
#define CTX_PROBES 4
#define CTX_CLAIMED ((uintptr_t)1) /* owner while the state is being written */

struct ctx_slot {
    _Atomic uintptr_t owner; /* the SSL_CTX, CTX_CLAIMED, or 0 when free */
    void *_Atomic st;
};

static struct ctx_slot ctx_slots[CTX_SLOTS];
static atomic_int ctx_ex_data_used; /* some state is only in ex_data */
static atomic_int ctx_ex_data_idx; /* ... under this index (set before the flag) */

static unsigned int ctx_hash(const SSL_CTX *ctx)
{
    return (unsigned int)(((uintptr_t)ctx * 0x9E3779B97F4A7C15ULL) >> 58) % CTX_SLOTS;
}

static struct ctx_slot *ctx_slot_of(const SSL_CTX *ctx)
{
    unsigned int h = ctx_hash(ctx), i;

    for (i = 0; i < CTX_PROBES; i++) {
        struct ctx_slot *s = &ctx_slots[(h + i) % CTX_SLOTS];

        if (atomic_load_explicit(&s->owner, memory_order_acquire) == (uintptr_t)ctx)
            return s;
    }
    return NULL;
}

void *emsguard_ctx_state_find(const SSL_CTX *ctx)
{
    struct ctx_slot *s = ctx_slot_of(ctx);

    if (s != NULL)
        return atomic_load_explicit(&s->st, memory_order_relaxed);
    if (!atomic_load_explicit(&ctx_ex_data_used, memory_order_acquire))
        return NULL;
    return SSL_CTX_get_ex_data(ctx, atomic_load_explicit(&ctx_ex_data_idx, memory_order_relaxed));
}

void emsguard_ctx_state_publish(const SSL_CTX *ctx, void *st, int ex_data_idx)
{
    unsigned int h = ctx_hash(ctx), i;

    for (i = 0; i < CTX_PROBES; i++) {
        struct ctx_slot *s = &ctx_slots[(h + i) % CTX_SLOTS];
        uintptr_t free_owner = 0;

        if (atomic_compare_exchange_strong_explicit(&s->owner, &free_owner, CTX_CLAIMED,
                memory_order_acquire, memory_order_relaxed)) {
            atomic_store_explicit(&s->st, st, memory_order_relaxed);
            atomic_store_explicit(&s->owner, (uintptr_t)ctx, memory_order_release);
            return;
        }
    }
    /* The state is in ex_data already: lookups must now look there too. */
    atomic_store_explicit(&ctx_ex_data_idx, ex_data_idx, memory_order_relaxed);
    atomic_store_explicit(&ctx_ex_data_used, 1, memory_order_release);
}

void emsguard_ctx_state_withdraw(const SSL_CTX *ctx)
{
    struct ctx_slot *s = ctx_slot_of(ctx);

    if (s != NULL) {
        atomic_store_explicit(&s->st, NULL, memory_order_relaxed);
        atomic_store_explicit(&s->owner, 0, memory_order_release);
    }
}

/* ---- SSL -> connection record -------------------------------------------- */

#define SLOT_BITS 10
#define SLOT_COUNT (1u << SLOT_BITS) /* 64 KiB: 1024 connections at once */
#define SLOT_PROBES 4 /* slots tried per SSL, from its hash on */

struct conn_slot {
    _Atomic uintptr_t owner; /* the SSL, 0 when free */
    struct eg_conn conn;
} __attribute__((aligned(64))); /* one line per connection: no false sharing */

_Static_assert(sizeof(struct conn_slot) == 64, "a slot is one cache line");

static struct conn_slot slots[SLOT_COUNT];
static int ssl_conn_idx = -1; /* ex_data: records that did not get a slot */
/* Releases what a record holds (conn->st) when the record goes. */
static emsguard_conn_release_fn release_record;
/* Set once any record went to ex_data: until then, lookups skip it. */
static atomic_int ex_data_used;

static void on_ssl_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
    long argl, void *argp);
static int on_ssl_dup(CRYPTO_EX_DATA *to, const CRYPTO_EX_DATA *from,
    void **from_d, int idx, long argl, void *argp);

int emsguard_conn_register(emsguard_conn_release_fn on_release)
{
    release_record = on_release;
    ssl_conn_idx = SSL_get_ex_new_index(0, "emsguard connection", NULL, on_ssl_dup,
        on_ssl_free);
    return ssl_conn_idx >= 0;
}

/* Fibonacci hashing: heap pointers differ mostly in their middle bits. */
static unsigned int slot_hash(const SSL *ssl)
{
    return (unsigned int)(((uintptr_t)ssl * 0x9E3779B97F4A7C15ULL) >> (64 - SLOT_BITS));
}

static struct conn_slot *slot_of(const SSL *ssl)
{
    unsigned int h = slot_hash(ssl), i;

    for (i = 0; i < SLOT_PROBES; i++) {
        struct conn_slot *s = &slots[(h + i) & (SLOT_COUNT - 1)];

        /* Relaxed: only this SSL's own thread ever stores this value. */
        if (atomic_load_explicit(&s->owner, memory_order_relaxed) == (uintptr_t)ssl)
            return s;
    }
    return NULL;
}

static struct eg_conn *ex_data_record(const SSL *ssl)
{
    if (!atomic_load_explicit(&ex_data_used, memory_order_relaxed))
        return NULL;
    return SSL_get_ex_data(ssl, ssl_conn_idx);
}

struct eg_conn *emsguard_conn_find(const SSL *ssl)
{
    struct conn_slot *s = slot_of(ssl);

    return s != NULL ? &s->conn : ex_data_record(ssl);
}

static struct eg_conn *new_ex_data_record(SSL *ssl)
{
    struct eg_conn *conn = OPENSSL_zalloc(sizeof(*conn));

    if (conn == NULL)
        return NULL;
    atomic_store_explicit(&ex_data_used, 1, memory_order_relaxed);
    if (!SSL_set_ex_data(ssl, ssl_conn_idx, conn)) {
        OPENSSL_free(conn);
        return NULL;
    }
    return conn;
}

struct eg_conn *emsguard_conn_get(SSL *ssl)
{
    struct eg_conn *conn = emsguard_conn_find(ssl);
    unsigned int h, i;

    if (conn != NULL)
        return conn;
    h = slot_hash(ssl);
    for (i = 0; i < SLOT_PROBES; i++) {
        struct conn_slot *s = &slots[(h + i) & (SLOT_COUNT - 1)];
        uintptr_t free_owner = 0;

        if (atomic_load_explicit(&s->owner, memory_order_relaxed) == 0
            && atomic_compare_exchange_strong_explicit(&s->owner, &free_owner,
                (uintptr_t)ssl, memory_order_acquire, memory_order_relaxed)) {
            memset(&s->conn, 0, sizeof(s->conn));
            return &s->conn;
        }
    }
    return new_ex_data_record(ssl);
}

/* Gives a slot back: its last owner's writes happen before the next claim. */
static void release_slot(struct conn_slot *s)
{
    atomic_store_explicit(&s->owner, 0, memory_order_release);
}

/*
 * SSL_dup() copies ex_data through on_ssl_dup() but knows nothing of the
 * table, and it copies an SSL only before its first handshake, which is when
 * an application sets a per-SSL callback.  Such a record lives in ex_data.
 */
struct eg_conn *emsguard_conn_get_durable(SSL *ssl)
{
    struct conn_slot *s = slot_of(ssl);
    struct eg_conn *conn;

    if (s == NULL)
        return (conn = ex_data_record(ssl)) != NULL ? conn : new_ex_data_record(ssl);
    if ((conn = new_ex_data_record(ssl)) == NULL)
        return NULL;
    *conn = s->conn;
    release_slot(s);
    return conn;
}

/* The SSL is being freed: whichever kind its record is, it goes now. */
static void on_ssl_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
    long argl, void *argp)
{
    SSL *ssl = parent;
    struct conn_slot *s;

    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (ptr != NULL) {
        release_record(ssl, ptr);
        OPENSSL_free(ptr);
    }
    if (ssl != NULL && (s = slot_of(ssl)) != NULL) {
        release_record(ssl, &s->conn);
        release_slot(s);
    }
}

/* SSL_dup() of a fresh SSL: the copy gets its own record. */
static int on_ssl_dup(CRYPTO_EX_DATA *to, const CRYPTO_EX_DATA *from,
    void **from_d, int idx, long argl, void *argp)
{
    struct eg_conn *conn = *from_d;

    (void)to;
    (void)from;
    (void)idx;
    (void)argl;
    (void)argp;
    if (conn == NULL)
        return 1;
    if ((*from_d = OPENSSL_memdup(conn, sizeof(*conn))) == NULL)
        return 0;
    /* The state's reference is the original's: the copy records its own. */
    ((struct eg_conn *)*from_d)->st = NULL;
    return 1;
}
