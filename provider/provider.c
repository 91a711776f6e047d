/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The provider entry point: OSSL_provider_init(), its dispatch table and
 * teardown.  At activation the policy is read, strictly validated, from
 * the core's parameters of this instance (provider_params.c); the library
 * reads that same policy back from the instance (provider_lookup.c).  Its
 * one algorithm is the TLS1-PRF guard (prf_guard.c), handed what it needs
 * at activation, which delegates to another provider's TLS1-PRF fetched
 * from a child library context.  Through the TLS-GROUP capability query of
 * SSL_CTX_new() it also checks that OpenSSL still has the guard.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/opensslv.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include "internal.h"

#define PROVIDER_NAME "emsguard"
#define BUILDINFO "emsguard " EMSGUARD_VERSION_STR " built with " OPENSSL_VERSION_TEXT

/* What the guard's own implementation is fetched with. */
#define GUARD_PROPERTIES "provider=emsguard,emsguard.guard=yes"

struct eg_provctx_st {
    eg_guard guard; /* first: the KDF functions take this context as theirs */
    EMSGUARD_POLICY policy; /* from the core's parameters; read-only once active */
    OSSL_LIB_CTX *child; /* sees the providers of the loading library context */
    OSSL_LIB_CTX *parent; /* the loading library context; NULL: the default one */
    int parent_usable; /* |parent| belongs to the libcrypto we are linked to */
    atomic_int guard_warned; /* the one-time line about the guard check was written */
    atomic_int seen_in_store; /* libssl asked it for groups: it is in a store */
};
typedef struct eg_provctx_st eg_provctx;

_Static_assert(offsetof(struct eg_provctx_st, guard) == 0,
    "prf_guard.c takes the provider context for its eg_guard");

static const OSSL_ALGORITHM eg_kdfs[] = {
    { OSSL_KDF_NAME_TLS1_PRF, GUARD_PROPERTIES, emsguard_prf_guard_functions,
        "TLS1-PRF that counts master secrets and can require Extended Master Secret" },
    { NULL, NULL, NULL, NULL }
};

/*
 * Bumped at every initialisation and teardown of an emsguard provider in
 * any library context: what EMSGUARD_POLICY_from_provider() answers may
 * have changed (see EMSGUARD_provider_generation()).
 */
static _Atomic uint64_t provider_generation;

uint64_t EMSGUARD_provider_generation(void)
{
    return atomic_load(&provider_generation);
}

static OSSL_FUNC_provider_teardown_fn eg_teardown;
static OSSL_FUNC_provider_gettable_params_fn eg_gettable_params;
static OSSL_FUNC_provider_get_params_fn eg_get_params;
static OSSL_FUNC_provider_query_operation_fn eg_query;
static OSSL_FUNC_provider_get_capabilities_fn eg_get_capabilities;

static void eg_teardown(void *provctx)
{
    eg_provctx *pc = provctx;

    emsguard_guard_teardown(&pc->guard);
    OSSL_LIB_CTX_free(pc->child);
    OPENSSL_free(pc);
    atomic_fetch_add(&provider_generation, 1);
}

static const OSSL_PARAM *eg_gettable_params(void *provctx)
{
    (void)provctx;
    return emsguard_prov_gettable_params();
}

/*
 * The provider's own parameters, the policy as text (for people: `openssl
 * list -providers -verbose`) and, not gettable, the policy itself for
 * EMSGUARD_POLICY_from_provider().
 */
static int eg_get_params(void *provctx, OSSL_PARAM params[])
{
    const eg_provctx *pc = provctx;
    OSSL_PARAM *p;

    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME)) != NULL
        && !OSSL_PARAM_set_utf8_ptr(p, PROVIDER_NAME))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION)) != NULL
        && !OSSL_PARAM_set_utf8_ptr(p, EMSGUARD_VERSION_STR))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_BUILDINFO)) != NULL
        && !OSSL_PARAM_set_utf8_ptr(p, BUILDINFO))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS)) != NULL
        && !OSSL_PARAM_set_int(p, 1))
        return 0;
    if ((p = OSSL_PARAM_locate(params, EMSGUARD_PARAM_MARKER)) != NULL
        && !OSSL_PARAM_set_utf8_string(p, EMSGUARD_VERSION_STR))
        return 0;
    if ((p = OSSL_PARAM_locate(params, EMSGUARD_PARAM_POLICY)) != NULL
        && !OSSL_PARAM_set_octet_ptr(p, &pc->policy, sizeof(pc->policy)))
        return 0;
    return emsguard_prov_export_policy(&pc->policy, params);
}

/* 1 if |kdf| is this provider instance's TLS1-PRF guard. */
static int is_our_guard(const eg_provctx *pc, const EVP_KDF *kdf)
{
    return kdf != NULL && OSSL_PROVIDER_get0_provider_ctx(EVP_KDF_get0_provider(kdf)) == pc;
}

struct guard_search {
    const eg_provctx *pc;
    int found;
};

static void find_guard(EVP_KDF *kdf, void *arg)
{
    struct guard_search *search = arg;

    if (is_our_guard(search->pc, kdf) && EVP_KDF_is_a(kdf, OSSL_KDF_NAME_TLS1_PRF))
        search->found = 1;
}

/*
 * 1 if this instance's TLS1-PRF guard is in the method store of the library
 * context it was loaded into.  OpenSSL 3.0 drops a method it fails to store
 * (an allocation failure while parsing its properties) without an error and
 * does not ask the provider again; the optional ?emsguard.guard=yes then
 * takes another provider's TLS1-PRF.  Asked at every SSL_CTX_new(): a fetch
 * with a query is answered from OpenSSL's query cache, and the store can
 * change (a provider loaded, unloaded or reactivated).
 */
static int guard_in_store(const eg_provctx *pc)
{
    OSSL_LIB_CTX *libctx = pc->parent != NULL ? pc->parent : OSSL_LIB_CTX_get0_global_default();
    struct guard_search search = { pc, 0 };
    EVP_KDF *kdf;
    int another;

    /* Also makes the store ask us, if no KDF was fetched here before. */
    kdf = EVP_KDF_fetch(libctx, OSSL_KDF_NAME_TLS1_PRF, GUARD_PROPERTIES);
    search.found = is_our_guard(pc, kdf);
    another = kdf != NULL && !search.found; /* a second emsguard's */
    EVP_KDF_free(kdf);
    if (another)
        EVP_KDF_do_all_provided(libctx, find_guard, &search);
    return search.found;
}

#define GUARD_MISSING "TLS1-PRF guard not found in the library context (OpenSSL may " \
                      "have dropped it after an allocation failure)"

/*
 * libssl asks every provider for its "TLS-GROUP" capability in
 * SSL_CTX_new(), before any handshake of that SSL_CTX: the only moment the
 * configuration-only route gets control ahead of the master secrets.  With
 * RequireExtendedMasterSecret=1 a guard missing from the library context
 * must stop the SSL_CTX, not the policy.  OpenSSL 3.0 cannot say whether its
 * default properties select the guard, so a missing guard is refused even in
 * a process that loads emsguard only for its policy.  emsguard offers no
 * groups; other capabilities are answered with nothing.
 */
static int eg_get_capabilities(void *provctx, const char *capability,
    OSSL_CALLBACK *cb, void *arg)
{
    eg_provctx *pc = provctx;
    int require = emsguard_policy_requires_ems(&pc->policy, EG_ROLE_UNKNOWN), present;

    (void)cb;
    (void)arg;
    /*
     * OpenSSL adds a provider to its library context's store only after
     * OSSL_provider_init() returned: a policy read in between (another
     * thread's SSL_CTX_new()) missed it under the generation bumped there.
     * The first question from a store's listing (every SSL_CTX_new() asks
     * each active provider for TLS-GROUP) bumps it again.
     */
    if (!atomic_load_explicit(&pc->seen_in_store, memory_order_relaxed)
        && !atomic_exchange(&pc->seen_in_store, 1))
        atomic_fetch_add(&provider_generation, 1);
    if (strcmp(capability, "TLS-GROUP") != 0)
        return 1;
    if (!pc->parent_usable) {
        /* Not ours to look into: see same_libcrypto().  Said once, on request. */
        if (!atomic_exchange(&pc->guard_warned, 1))
            emsguard_log(&pc->policy, EG_LEVEL_DEBUG,
                "TLS1-PRF guard: emsguard uses another libcrypto than the "
                "application, so SSL_CTX_new() cannot check that the guard is "
                "in the library context");
        return 1;
    }
    ERR_set_mark();
    present = guard_in_store(pc);
    ERR_pop_to_mark(); /* a failed fetch is reported below, as ours */
    if (present)
        return 1;
    if (!require) {
        /* The error level: EventLogging's default (1) must show it. */
        if (!atomic_exchange(&pc->guard_warned, 1))
            emsguard_log(&pc->policy, EG_LEVEL_ERROR,
                GUARD_MISSING "; the audit counts will miss this process's handshakes");
        return 1;
    }
    emsguard_raise(EMSGUARD_R_GUARD_MISSING, "RequireExtendedMasterSecret=1 and " GUARD_MISSING
        ", so ?emsguard.guard=yes would select another provider's; refusing to create the SSL_CTX");
    emsguard_log(&pc->policy, EG_LEVEL_ERROR, GUARD_MISSING "; SSL_CTX_new() refused");
    return 0;
}

static const OSSL_ALGORITHM *eg_query(void *provctx, int operation_id,
    int *no_cache)
{
    (void)provctx;
    *no_cache = 0;
    return operation_id == OSSL_OP_KDF ? eg_kdfs : NULL;
}

static const OSSL_DISPATCH eg_dispatch[] = {
    { OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))eg_teardown },
    { OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, (void (*)(void))eg_gettable_params },
    { OSSL_FUNC_PROVIDER_GET_PARAMS, (void (*)(void))eg_get_params },
    { OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))eg_query },
    { OSSL_FUNC_PROVIDER_GET_CAPABILITIES, (void (*)(void))eg_get_capabilities },
    { 0, NULL }
};

/*
 * The core's library context is an OSSL_LIB_CTX of the libcrypto that loaded
 * us; it is one we may pass to EVP functions only if that libcrypto is the
 * one we are linked to (not so in an application linked statically).
 */
static int same_libcrypto(void *core_function)
{
    Dl_info core, ours;

    return dladdr(core_function, &core) != 0
        && dladdr((void *)EVP_KDF_do_all_provided, &ours) != 0
        && core.dli_fbase == ours.dli_fbase;
}

/*
 * The last activation of this library's provider that failed in the
 * default library context, whatever file configured it (OPENSSL_CONF, or
 * one the program loaded itself): EMSGUARD_enable() reports it instead of
 * running on the built-in defaults.  Only the default context: it lives
 * as long as the process, while another context's address can be reused
 * by an unrelated one after it is freed.  A copy of the module under
 * another file is another image with its own record; EMSGUARD_enable()
 * then finds the failure through the configuration file
 * (policy_from_process_config() in provider_lookup.c).
 */
static pthread_mutex_t init_failure_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int failed;
    char name[128];
    char why[1024];
} init_failure;

int emsguard_is_default_libctx(const OSSL_LIB_CTX *libctx)
{
    return libctx == NULL || libctx == OSSL_LIB_CTX_get0_global_default();
}

/* Records (|why| != NULL) or clears the outcome for the default context. */
static void note_init_outcome(OSSL_FUNC_core_get_libctx_fn *core_get_libctx,
    OSSL_FUNC_core_get_params_fn *core_get_params, const OSSL_CORE_HANDLE *handle,
    const char *why)
{
    const char *name = NULL;
    OSSL_PARAM req[2];

    if (core_get_libctx == NULL || !same_libcrypto((void *)core_get_libctx)
        || !emsguard_is_default_libctx((OSSL_LIB_CTX *)core_get_libctx(handle)))
        return;
    req[0] = OSSL_PARAM_construct_utf8_ptr(OSSL_PROV_PARAM_CORE_PROV_NAME, (char **)&name, 0);
    req[1] = OSSL_PARAM_construct_end();
    if (why != NULL && !core_get_params(handle, req))
        name = NULL;
    pthread_mutex_lock(&init_failure_lock);
    init_failure.failed = why != NULL;
    if (why != NULL) {
        snprintf(init_failure.name, sizeof(init_failure.name), "%s",
            name != NULL ? name : PROVIDER_NAME);
        snprintf(init_failure.why, sizeof(init_failure.why), "%s", why);
    }
    pthread_mutex_unlock(&init_failure_lock);
}

int emsguard_prov_init_failure(char *name, size_t name_len, char *why, size_t why_len)
{
    int failed;

    pthread_mutex_lock(&init_failure_lock);
    if ((failed = init_failure.failed)) {
        snprintf(name, name_len, "%s", init_failure.name);
        snprintf(why, why_len, "%s", init_failure.why);
    }
    pthread_mutex_unlock(&init_failure_lock);
    return failed;
}

int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
    const OSSL_DISPATCH **out, void **provctx)
{
    OSSL_FUNC_core_get_params_fn *core_get_params = NULL;
    OSSL_FUNC_core_get_libctx_fn *core_get_libctx = NULL;
    const OSSL_DISPATCH *in_start = in;
    eg_provctx *pc;

    /* Before anything: a failed activation changes the answer too. */
    atomic_fetch_add(&provider_generation, 1);
    for (; in != NULL && in->function_id != 0; in++)
        if (in->function_id == OSSL_FUNC_CORE_GET_PARAMS)
            core_get_params = OSSL_FUNC_core_get_params(in);
        else if (in->function_id == OSSL_FUNC_CORE_GET_LIBCTX)
            core_get_libctx = OSSL_FUNC_core_get_libctx(in);
    if (core_get_params == NULL) {
        emsguard_raise(EMSGUARD_R_PROVIDER, "the core offers no get_params function");
        return 0;
    }
    if ((pc = OPENSSL_zalloc(sizeof(*pc))) == NULL) {
        emsguard_raise(ERR_R_MALLOC_FAILURE, "cannot allocate the provider context");
        return 0;
    }
    if (!emsguard_prov_read_policy(core_get_params, handle, &pc->policy)) {
        const char *why = NULL;
        int flags = 0;

        /*
         * Many applications (the openssl CLI among them) ignore configuration
         * errors, so say it ourselves: a policy that failed to load must not
         * go unnoticed.
         */
        ERR_peek_last_error_data(&why, &flags);
        why = why != NULL && (flags & ERR_TXT_STRING) ? why : "see the OpenSSL error queue";
        emsguard_log(NULL, EG_LEVEL_ERROR, "provider not activated: %s", why);
        note_init_outcome(core_get_libctx, core_get_params, handle, why);
        OPENSSL_free(pc);
        return 0;
    }
    if ((pc->child = OSSL_LIB_CTX_new_child(handle, in_start)) == NULL) {
        emsguard_raise(EMSGUARD_R_PROVIDER,
            "cannot create the child library context the TLS1-PRF guard delegates through");
        emsguard_log(NULL, EG_LEVEL_ERROR, "provider not activated: no child library context");
        note_init_outcome(core_get_libctx, core_get_params, handle,
            "no child library context for the TLS1-PRF guard");
        OPENSSL_free(pc);
        return 0;
    }
    emsguard_guard_init(&pc->guard, &pc->policy, pc->child);
    if (core_get_libctx != NULL && same_libcrypto((void *)core_get_libctx)) {
        pc->parent = (OSSL_LIB_CTX *)core_get_libctx(handle);
        pc->parent_usable = 1;
    }
    note_init_outcome(core_get_libctx, core_get_params, handle, NULL);
    emsguard_policy_log_weakenings(&pc->policy, "provider " PROVIDER_NAME);
    *out = eg_dispatch;
    *provctx = pc;
    return 1;
}
