/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The TLS1-PRF guard: a TLS1-PRF KDF that delegates every computation to
 * another provider's TLS1-PRF (the default provider's), and looks at the
 * label libssl passes as the first seed:
 *
 *   "extended master secret"  an EMS master secret       -> counted
 *   "master secret"           a master secret without EMS -> counted, or
 *                             refused with RequireExtendedMasterSecret=1
 *   "key expansion"           key block from a master secret; if no
 *                             derivation in this process produced that
 *                             secret, the handshake was a resumption
 *
 * This works in any OpenSSL 3.0 application whose openssl.cnf selects the
 * guard (default_properties = ?emsguard.guard=yes); it needs no SSL_CTX hook.
 *
 * To link a key expansion to its derivation without keeping secrets, each
 * derived master secret leaves a 64-bit keyed fingerprint (SipHash-2-4 with
 * a per-process random key) in a fixed lock-free table (fingerprint.c).  A
 * fingerprint the table has to drop is counted (lost_fingerprints): it can
 * only make a full handshake look like a resumption in the audit, so the
 * resumption count is high by at most that; it never affects enforcement.
 *
 * The counts are process-wide; they are also published live for
 * `emsguard stats` (stats_publish.c), and summed up in one line when the
 * process exits.
 *
 * What the guard needs of the provider instance that offers it (its policy,
 * the child library context it delegates through) is handed over at
 * activation in an eg_guard (emsguard_guard_init()); this file calls
 * nothing in provider.c.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>
#include <openssl/tls1.h>
#include "internal.h"
#include "stats_file.h"

/* ---- process-wide audit --------------------------------------------------- */

static _Atomic uint64_t audit_counts[EG_AUDIT_COUNT];

/* EMSGUARD_audit_get() indexes the internal array with the public enum. */
_Static_assert((int)EMSGUARD_AUDIT_EMS_DERIVATIONS == (int)EG_AUDIT_EMS_DERIVATIONS
        && (int)EMSGUARD_AUDIT_NON_EMS_DERIVATIONS == (int)EG_AUDIT_NON_EMS_DERIVATIONS
        && (int)EMSGUARD_AUDIT_RESUMPTIONS == (int)EG_AUDIT_RESUMED_EXPANSIONS
        && (int)EMSGUARD_AUDIT_REFUSED == (int)EG_AUDIT_REFUSED
        && (int)EMSGUARD_AUDIT_LOST_FINGERPRINTS == (int)EG_AUDIT_LOST_FINGERPRINTS
        && (int)EMSGUARD_AUDIT_MAX == (int)EG_AUDIT_COUNT,
    "audit counter orders differ");

void emsguard_audit_read(uint64_t out[EG_AUDIT_COUNT])
{
    int i;

    for (i = 0; i < EG_AUDIT_COUNT; i++)
        out[i] = atomic_load_explicit(&audit_counts[i], memory_order_relaxed);
}

/* Counts one event, here and in the published file; the count before it. */
static uint64_t audit_count(eg_audit which)
{
    atomic_fetch_add_explicit(&atomic_load_explicit(&eg_stats_audit, memory_order_acquire)[which],
        1, memory_order_relaxed);
    return atomic_fetch_add_explicit(&audit_counts[which], 1, memory_order_relaxed);
}

/*
 * The derivation a master secret is, in order: the age of its fingerprint.
 * Two relaxed counters read apart may be off by a few; an age needs no more.
 */
static uint32_t derivation_seq(eg_audit counted, uint64_t before)
{
    eg_audit other = counted == EG_AUDIT_EMS_DERIVATIONS ? EG_AUDIT_NON_EMS_DERIVATIONS
                                                         : EG_AUDIT_EMS_DERIVATIONS;

    return (uint32_t)(before + atomic_load_explicit(&audit_counts[other], memory_order_relaxed));
}

/* ---- the summary at exit ------------------------------------------------- */

/*
 * The counts are process-wide, so the summary is the process's: written
 * once, when it exits, through the policy of the first guard that ran (a
 * copy: provider instances may be gone by then).  Unloading the provider
 * from one library context writes nothing.
 */
static EMSGUARD_POLICY exit_policy;
static CRYPTO_ONCE exit_once = CRYPTO_ONCE_STATIC_INIT;
static _Atomic(const EMSGUARD_POLICY *) exit_policy_from; /* the first guard's */

static void summary_at_exit(void)
{
    emsguard_audit_summary(&exit_policy, "at exit");
}

static void register_exit_summary(void)
{
    exit_policy = *atomic_load(&exit_policy_from);
    if (atexit(summary_at_exit) != 0)
        emsguard_log(&exit_policy, EG_LEVEL_WARNING,
            "TLS1-PRF guard: cannot register the audit summary at exit");
}

/* The first time any guard runs: the summary at exit, the live counters. */
static void guard_ran(const eg_guard *guard)
{
    static _Atomic int once_done;
    const EMSGUARD_POLICY *none = NULL;

    if (atomic_load_explicit(&once_done, memory_order_acquire))
        return;
    atomic_compare_exchange_strong(&exit_policy_from, &none, guard->policy);
    CRYPTO_THREAD_run_once(&exit_once, register_exit_summary);
    emsguard_stats_start(guard->policy, EG_STATS_SRC_GUARD);
    atomic_store_explicit(&once_done, 1, memory_order_release);
}

/* ---- the KDF ------------------------------------------------------------- */

typedef enum {
    LABEL_NONE = 0, /* no seed yet */
    LABEL_OTHER, /* finished, exporters: passed through */
    LABEL_MASTER_SECRET,
    LABEL_EXTENDED_MASTER_SECRET,
    LABEL_KEY_EXPANSION
} prf_label;

struct guard_ctx {
    eg_guard *guard;
    EVP_KDF_CTX *inner;
    prf_label label;
    uint64_t secret_fp; /* of the secret set, for key expansion; 0 if none */
};

static OSSL_FUNC_kdf_newctx_fn guard_new;
static OSSL_FUNC_kdf_freectx_fn guard_free;
static OSSL_FUNC_kdf_reset_fn guard_reset;
static OSSL_FUNC_kdf_derive_fn guard_derive;
static OSSL_FUNC_kdf_settable_ctx_params_fn guard_settable_ctx_params;
static OSSL_FUNC_kdf_set_ctx_params_fn guard_set_ctx_params;
static OSSL_FUNC_kdf_gettable_ctx_params_fn guard_gettable_ctx_params;
static OSSL_FUNC_kdf_get_ctx_params_fn guard_get_ctx_params;

/* What the guard's own implementation is excluded by. */
#define INNER_PRF_QUERY "provider!=emsguard"

/*
 * OpenSSL hands the KDF functions the provider's context, which begins
 * with the provider's eg_guard (provider.c asserts it).
 */
static eg_guard *guard_of(void *provctx)
{
    return provctx;
}

/* 1 if |prov| answers emsguard's marker parameter: delegating would recurse. */
static int is_emsguard(const OSSL_PROVIDER *prov)
{
    char marker[32] = "";
    OSSL_PARAM req[2];
    int ours;

    req[0] = OSSL_PARAM_construct_utf8_string(EMSGUARD_PARAM_MARKER, marker, sizeof(marker));
    req[1] = OSSL_PARAM_construct_end();
    ERR_set_mark();
    ours = OSSL_PROVIDER_get_params(prov, req) && OSSL_PARAM_modified(&req[0]);
    ERR_pop_to_mark();
    return ours;
}

/*
 * The TLS1-PRF the guard delegates to: another provider's, fetched once
 * from the provider's child library context.  NULL (error raised) if none.
 */
static EVP_KDF *inner_prf(eg_guard *guard)
{
    EVP_KDF *kdf = atomic_load(&guard->inner_prf), *expected = NULL;

    if (kdf != NULL)
        return kdf;
    if ((kdf = EVP_KDF_fetch(guard->child, OSSL_KDF_NAME_TLS1_PRF, INNER_PRF_QUERY)) == NULL) {
        emsguard_raise(EMSGUARD_R_GUARD,
            "TLS1-PRF guard: no other provider offers TLS1-PRF (load the "
            "default provider next to emsguard)");
        return NULL;
    }
    if (is_emsguard(EVP_KDF_get0_provider(kdf))) {
        EVP_KDF_free(kdf);
        emsguard_raise(EMSGUARD_R_GUARD,
            "TLS1-PRF guard: the TLS1-PRF found is emsguard's own; refusing to recurse");
        return NULL;
    }
    /* Another thread may have fetched it first; keep one. */
    if (!atomic_compare_exchange_strong(&guard->inner_prf, &expected, kdf)) {
        EVP_KDF_free(kdf);
        kdf = expected;
    }
    guard_ran(guard);
    return kdf;
}

/* A pooled context, or NULL when the pool is empty. */
static struct guard_ctx *pool_take(eg_guard_pool *pool)
{
    size_t i;

    for (i = 0; i < EG_GUARD_POOL_SLOTS; i++)
        if (atomic_load_explicit(&pool->slot[i], memory_order_relaxed) != NULL) {
            void *g = atomic_exchange(&pool->slot[i], NULL);

            if (g != NULL)
                return g;
        }
    return NULL;
}

/* 1 if |g| went into a free slot. */
static int pool_put(eg_guard_pool *pool, struct guard_ctx *g)
{
    size_t i;

    for (i = 0; i < EG_GUARD_POOL_SLOTS; i++) {
        void *empty = NULL;

        if (atomic_load_explicit(&pool->slot[i], memory_order_relaxed) == NULL
            && atomic_compare_exchange_strong(&pool->slot[i], &empty, g))
            return 1;
    }
    return 0;
}

static void guard_destroy(struct guard_ctx *g)
{
    EVP_KDF_CTX_free(g->inner); /* the inner KDF cleanses its secret */
    OPENSSL_clear_free(g, sizeof(*g));
}

static void pool_empty(eg_guard_pool *pool)
{
    struct guard_ctx *g;

    while ((g = pool_take(pool)) != NULL)
        guard_destroy(g);
}

void emsguard_guard_init(eg_guard *guard, const EMSGUARD_POLICY *policy,
    OSSL_LIB_CTX *child)
{
    memset(guard, 0, sizeof(*guard));
    guard->policy = policy;
    guard->child = child;
}

void emsguard_guard_teardown(eg_guard *guard)
{
    EVP_KDF *kdf = atomic_load(&guard->inner_prf);

    /* The process's summary waits for its exit (summary_at_exit). */
    pool_empty(&guard->pool); /* before the KDF they use */
    EVP_KDF_free(kdf);
    atomic_store(&guard->inner_prf, NULL);
}

static void *guard_new(void *provctx)
{
    eg_guard *guard = guard_of(provctx);
    EVP_KDF *kdf;
    struct guard_ctx *g;

    if ((g = pool_take(&guard->pool)) != NULL)
        return g; /* reset when it was put back */
    if ((kdf = inner_prf(guard)) == NULL)
        return NULL; /* the reason is on the error queue */
    if ((g = OPENSSL_zalloc(sizeof(*g))) == NULL
        || (g->inner = EVP_KDF_CTX_new(kdf)) == NULL) {
        OPENSSL_free(g);
        emsguard_raise(ERR_R_MALLOC_FAILURE, "TLS1-PRF guard: cannot allocate a context");
        return NULL;
    }
    g->guard = guard;
    return g;
}

/*
 * Back to the pool, reset: the inner KDF's reset frees and cleanses its
 * secret and seed, so a pooled context holds nothing of the derivation.
 */
static void guard_free(void *vctx)
{
    struct guard_ctx *g = vctx;

    if (g == NULL)
        return;
    EVP_KDF_CTX_reset(g->inner);
    g->label = LABEL_NONE;
    g->secret_fp = 0;
    if (!pool_put(&g->guard->pool, g))
        guard_destroy(g);
}

static void guard_reset(void *vctx)
{
    struct guard_ctx *g = vctx;

    EVP_KDF_CTX_reset(g->inner);
    g->label = LABEL_NONE;
    g->secret_fp = 0;
}

static prf_label classify(const OSSL_PARAM *seed)
{
    static const struct {
        const char *text;
        size_t len;
        prf_label label;
    } labels[] = {
        { TLS_MD_EXTENDED_MASTER_SECRET_CONST, TLS_MD_EXTENDED_MASTER_SECRET_CONST_SIZE,
            LABEL_EXTENDED_MASTER_SECRET },
        { TLS_MD_MASTER_SECRET_CONST, TLS_MD_MASTER_SECRET_CONST_SIZE, LABEL_MASTER_SECRET },
        { TLS_MD_KEY_EXPANSION_CONST, TLS_MD_KEY_EXPANSION_CONST_SIZE, LABEL_KEY_EXPANSION },
    };
    size_t i;

    if (seed->data_type != OSSL_PARAM_OCTET_STRING || seed->data == NULL)
        return LABEL_OTHER;
    /* libssl passes the label alone as the first seed. */
    for (i = 0; i < sizeof(labels) / sizeof(labels[0]); i++)
        if (seed->data_size == labels[i].len
            && memcmp(seed->data, labels[i].text, labels[i].len) == 0)
            return labels[i].label;
    return LABEL_OTHER;
}

static int guard_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    struct guard_ctx *g = vctx;
    const OSSL_PARAM *p;

    if (params == NULL)
        return 1;
    if (!EVP_KDF_CTX_set_params(g->inner, params))
        return 0;
    /* Seeds concatenate; the label is the first one since new/reset. */
    if (g->label == LABEL_NONE
        && (p = OSSL_PARAM_locate_const(params, OSSL_KDF_PARAM_SEED)) != NULL)
        g->label = classify(p);
    /*
     * Only a key expansion needs its secret's fingerprint; most derivations
     * (Finished, exporters) are known not to be one by now, since libssl
     * passes the secret and the seeds together.
     */
    if ((p = OSSL_PARAM_locate_const(params, OSSL_KDF_PARAM_SECRET)) != NULL)
        g->secret_fp = (g->label == LABEL_NONE || g->label == LABEL_KEY_EXPANSION)
                && p->data_type == OSSL_PARAM_OCTET_STRING && p->data != NULL
            ? emsguard_fingerprint(p->data, p->data_size)
            : 0;
    return 1;
}

static int guard_derive(void *vctx, unsigned char *key, size_t keylen,
    const OSSL_PARAM params[])
{
    struct guard_ctx *g = vctx;
    const EMSGUARD_POLICY *policy = g->guard->policy;

    if (!guard_set_ctx_params(g, params))
        return 0;
    if (g->label == LABEL_MASTER_SECRET
        && emsguard_policy_requires_ems(policy, EG_ROLE_UNKNOWN)) {
        audit_count(EG_AUDIT_REFUSED);
        emsguard_raise(EMSGUARD_R_EMS_REQUIRED,
            "TLS1-PRF guard: refused a master secret without Extended Master "
            "Secret (RequireExtendedMasterSecret=1); the peer must support RFC 7627");
        emsguard_log(policy, EG_LEVEL_ERROR,
            "TLS1-PRF guard: refused a TLS 1.2 handshake without Extended "
            "Master Secret (RequireExtendedMasterSecret=1)");
        return 0;
    }
    if (EVP_KDF_derive(g->inner, key, keylen, NULL) <= 0)
        return 0;
    switch (g->label) {
    case LABEL_MASTER_SECRET:
    case LABEL_EXTENDED_MASTER_SECRET: {
        eg_audit which = g->label == LABEL_MASTER_SECRET ? EG_AUDIT_NON_EMS_DERIVATIONS
                                                         : EG_AUDIT_EMS_DERIVATIONS;
        uint64_t before = audit_count(which);

        if (!emsguard_fp_remember(emsguard_fingerprint(key, keylen),
                derivation_seq(which, before)))
            audit_count(EG_AUDIT_LOST_FINGERPRINTS);
        break;
    }
    case LABEL_KEY_EXPANSION:
        if (g->secret_fp != 0 && !emsguard_fp_take(g->secret_fp))
            audit_count(EG_AUDIT_RESUMED_EXPANSIONS);
        break;
    default:
        break;
    }
    return 1;
}

static const OSSL_PARAM *guard_settable_ctx_params(void *vctx, void *provctx)
{
    EVP_KDF *kdf = inner_prf(guard_of(provctx));

    (void)vctx;
    return kdf != NULL ? EVP_KDF_settable_ctx_params(kdf) : NULL;
}

static const OSSL_PARAM *guard_gettable_ctx_params(void *vctx, void *provctx)
{
    EVP_KDF *kdf = inner_prf(guard_of(provctx));

    (void)vctx;
    return kdf != NULL ? EVP_KDF_gettable_ctx_params(kdf) : NULL;
}

static int guard_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    struct guard_ctx *g = vctx;

    return EVP_KDF_CTX_get_params(g->inner, params);
}

const OSSL_DISPATCH emsguard_prf_guard_functions[] = {
    { OSSL_FUNC_KDF_NEWCTX, (void (*)(void))guard_new },
    { OSSL_FUNC_KDF_FREECTX, (void (*)(void))guard_free },
    { OSSL_FUNC_KDF_RESET, (void (*)(void))guard_reset },
    { OSSL_FUNC_KDF_DERIVE, (void (*)(void))guard_derive },
    { OSSL_FUNC_KDF_SETTABLE_CTX_PARAMS, (void (*)(void))guard_settable_ctx_params },
    { OSSL_FUNC_KDF_SET_CTX_PARAMS, (void (*)(void))guard_set_ctx_params },
    { OSSL_FUNC_KDF_GETTABLE_CTX_PARAMS, (void (*)(void))guard_gettable_ctx_params },
    { OSSL_FUNC_KDF_GET_CTX_PARAMS, (void (*)(void))guard_get_ctx_params },
    { 0, NULL }
};

/* ---- reporting ------------------------------------------------------------ */

void emsguard_audit_summary(const EMSGUARD_POLICY *policy, const char *when)
{
    EMSGUARD_POLICY p;
    uint64_t c[EG_AUDIT_COUNT];
    uint64_t full;
    char lost[96];

    if (policy != NULL)
        p = *policy;
    else
        emsguard_policy_defaults(&p);
    /* The administrator selected the guard to get this line: any bit shows it. */
    if (p.values[EG_KEY_EVENT_LOGGING] == 0)
        return;
    p.values[EG_KEY_EVENT_LOGGING] |= EMSGUARD_LOG_INFO;
    emsguard_audit_read(c);
    full = c[EG_AUDIT_EMS_DERIVATIONS] + c[EG_AUDIT_NON_EMS_DERIVATIONS];
    /* Lost fingerprints are named only when there are some: then the
     * resumption count is an upper bound, and the line says by how much. */
    snprintf(lost, sizeof(lost), " lost_fingerprints=%llu (resumptions may be up to %llu high)",
        (unsigned long long)c[EG_AUDIT_LOST_FINGERPRINTS],
        (unsigned long long)c[EG_AUDIT_LOST_FINGERPRINTS]);
    emsguard_log(&p, EG_LEVEL_INFO,
        "TLS1-PRF audit (%s): ems_derivations=%llu non_ems_derivations=%llu "
        "resumptions=%llu refused=%llu%s; %llu of %llu full TLS<=1.2 handshakes "
        "lacked Extended Master Secret",
        when, (unsigned long long)c[EG_AUDIT_EMS_DERIVATIONS],
        (unsigned long long)c[EG_AUDIT_NON_EMS_DERIVATIONS],
        (unsigned long long)c[EG_AUDIT_RESUMED_EXPANSIONS],
        (unsigned long long)c[EG_AUDIT_REFUSED],
        c[EG_AUDIT_LOST_FINGERPRINTS] != 0 ? lost : "",
        (unsigned long long)c[EG_AUDIT_NON_EMS_DERIVATIONS], (unsigned long long)full);
}

int EMSGUARD_audit_get(EMSGUARD_AUDIT_COUNTER which, uint64_t *value)
{
    uint64_t c[EG_AUDIT_COUNT];

    /* The public and internal orders are the same, by construction. */
    if ((unsigned)which >= EMSGUARD_AUDIT_MAX || value == NULL) {
        emsguard_raise(EMSGUARD_R_INVALID_ARGUMENT,
            "EMSGUARD_audit_get: unknown counter or NULL value");
        return 0;
    }
    emsguard_audit_read(c);
    *value = c[which];
    return 1;
}
