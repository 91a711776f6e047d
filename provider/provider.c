/*
 * The provider entry point.  It carries the policy from openssl.cnf,
 * validated strictly at activation, and re-exports it as provider parameters
 * so that EMSGUARD_enable() -- in this copy of the library or another -- can
 * read it with OSSL_PROVIDER_get_params().  Its one algorithm is the TLS1-PRF
 * guard (prf_guard.c), which delegates to another provider's TLS1-PRF
 * fetched from a child library context.  Through the TLS-GROUP capability
 * query of SSL_CTX_new() it also checks that OpenSSL still has the guard.
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

/* What the guard's own implementation is fetched with, and excluded by. */
#define GUARD_PROPERTIES "provider=emsguard,emsguard.guard=yes"
#define INNER_PRF_QUERY "provider!=emsguard"

struct eg_provctx_st {
    EMSGUARD_POLICY policy;
    OSSL_LIB_CTX *child; /* sees the providers of the loading library context */
    OSSL_LIB_CTX *parent; /* the loading library context; NULL: the default one */
    int parent_usable; /* |parent| belongs to the libcrypto we are linked to */
    atomic_int guard_warned; /* the one-time line about the guard check was written */
    atomic_int seen_in_store; /* libssl asked it for groups: it is in a store */
    _Atomic(EVP_KDF *) inner_prf;
    eg_guard_pool guard_pool; /* its contexts use inner_prf */
};

static const OSSL_ALGORITHM eg_kdfs[] = {
    { OSSL_KDF_NAME_TLS1_PRF, GUARD_PROPERTIES, emsguard_prf_guard_functions,
        "TLS1-PRF that counts master secrets and can require Extended Master Secret" },
    { NULL, NULL, NULL, NULL }
};

const EMSGUARD_POLICY *emsguard_prov_policy(const eg_provctx *prov)
{
    return &prov->policy;
}

eg_guard_pool *emsguard_prov_guard_pool(eg_provctx *prov)
{
    return &prov->guard_pool;
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

EVP_KDF *emsguard_prov_inner_prf(eg_provctx *prov)
{
    EVP_KDF *kdf = atomic_load(&prov->inner_prf), *expected = NULL;

    if (kdf != NULL)
        return kdf;
    if ((kdf = EVP_KDF_fetch(prov->child, OSSL_KDF_NAME_TLS1_PRF, INNER_PRF_QUERY)) == NULL) {
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
    if (!atomic_compare_exchange_strong(&prov->inner_prf, &expected, kdf)) {
        EVP_KDF_free(kdf);
        kdf = expected;
    }
    return kdf;
}

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

int EMSGUARD_POLICY_equal(const EMSGUARD_POLICY *a, const EMSGUARD_POLICY *b)
{
    return a != NULL && b != NULL && emsguard_policy_equal(a, b);
}

static OSSL_FUNC_provider_teardown_fn eg_teardown;
static OSSL_FUNC_provider_gettable_params_fn eg_gettable_params;
static OSSL_FUNC_provider_get_params_fn eg_get_params;
static OSSL_FUNC_provider_query_operation_fn eg_query;
static OSSL_FUNC_provider_get_capabilities_fn eg_get_capabilities;

static void eg_teardown(void *provctx)
{
    eg_provctx *pc = provctx;
    EVP_KDF *kdf = atomic_load(&pc->inner_prf);

    if (kdf != NULL) /* the guard ran: leave the administrator its summary */
        emsguard_audit_summary(&pc->policy, "at exit");
    emsguard_guard_pool_empty(&pc->guard_pool); /* before the KDF they use */
    EVP_KDF_free(kdf);
    OSSL_LIB_CTX_free(pc->child);
    OPENSSL_free(pc);
    atomic_fetch_add(&provider_generation, 1);
}

/* openssl.cnf names of the keys ("Protocols.TLS_1.2.Server.Enabled"). */
static char conf_names[EG_KEY_COUNT][128];
static OSSL_PARAM gettable[EG_KEY_COUNT + 6];
static CRYPTO_ONCE names_once = CRYPTO_ONCE_STATIC_INIT;

static void init_names(void)
{
    int key, n = 0;

    gettable[n++] = (OSSL_PARAM)OSSL_PARAM_DEFN(OSSL_PROV_PARAM_NAME, OSSL_PARAM_UTF8_PTR, NULL, 0);
    gettable[n++] = (OSSL_PARAM)OSSL_PARAM_DEFN(OSSL_PROV_PARAM_VERSION, OSSL_PARAM_UTF8_PTR, NULL, 0);
    gettable[n++] = (OSSL_PARAM)OSSL_PARAM_DEFN(OSSL_PROV_PARAM_BUILDINFO, OSSL_PARAM_UTF8_PTR, NULL, 0);
    gettable[n++] = (OSSL_PARAM)OSSL_PARAM_DEFN(OSSL_PROV_PARAM_STATUS, OSSL_PARAM_INTEGER, NULL, 0);
    gettable[n++] = (OSSL_PARAM)OSSL_PARAM_DEFN(EMSGUARD_PARAM_MARKER, OSSL_PARAM_UTF8_STRING, NULL, 0);
    for (key = 0; key < EG_KEY_COUNT; key++) {
        emsguard_key_conf_name((eg_key)key, conf_names[key], sizeof(conf_names[key]));
        gettable[n++] = (OSSL_PARAM)OSSL_PARAM_DEFN(conf_names[key], OSSL_PARAM_UTF8_STRING, NULL, 0);
    }
    gettable[n] = (OSSL_PARAM)OSSL_PARAM_END;
}

static int names_ready(void)
{
    return CRYPTO_THREAD_run_once(&names_once, init_names);
}

static const OSSL_PARAM *eg_gettable_params(void *provctx)
{
    (void)provctx;
    return names_ready() ? gettable : NULL;
}

static int eg_get_params(void *provctx, OSSL_PARAM params[])
{
    const eg_provctx *pc = provctx;
    OSSL_PARAM *p;
    char text[EG_STRING_MAX];
    int key;

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
    if (!names_ready())
        return 0;
    /* Unset Schannel values travel as "": OpenSSL's default applies. */
    for (key = 0; key < EG_KEY_COUNT; key++) {
        if ((p = OSSL_PARAM_locate(params, conf_names[key])) == NULL)
            continue;
        if (!emsguard_policy_value_text(&pc->policy, (eg_key)key, text, sizeof(text))
            || !OSSL_PARAM_set_utf8_string(p, text))
            return 0;
    }
    return 1;
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
    int require = pc->policy.values[EG_KEY_REQUIRE_EMS] != 0, present;

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

/* Reads and validates every policy key the core has for this provider. */
static int read_config(OSSL_FUNC_core_get_params_fn *core_get_params,
    const OSSL_CORE_HANDLE *handle, EMSGUARD_POLICY *policy)
{
    const char *values[EG_KEY_COUNT] = { NULL };
    const char *prov_name = NULL, *policy_file = NULL;
    unsigned char present[EG_KEY_COUNT] = { 0 };
    OSSL_PARAM req[EG_KEY_COUNT + 3];
    char where[160];
    int key, n = 0, checked = 0;

    if (!names_ready()) {
        emsguard_raise(ERR_R_MALLOC_FAILURE, "cannot prepare the key names");
        return 0;
    }
    req[n++] = OSSL_PARAM_construct_utf8_ptr(OSSL_PROV_PARAM_CORE_PROV_NAME,
        (char **)&prov_name, 0);
    req[n++] = OSSL_PARAM_construct_utf8_ptr("PolicyFile", (char **)&policy_file, 0);
    for (key = 0; key < EG_KEY_COUNT; key++)
        req[n++] = OSSL_PARAM_construct_utf8_ptr(conf_names[key], (char **)&values[key], 0);
    req[n] = OSSL_PARAM_construct_end();
    if (!core_get_params(handle, req)) {
        emsguard_raise(EMSGUARD_R_PROVIDER, "cannot read the provider's configuration from the core");
        return 0;
    }
    snprintf(where, sizeof(where), "provider '%s' configuration: ",
        prov_name != NULL ? prov_name : PROVIDER_NAME);
    emsguard_policy_defaults(policy);
    /* Section keys we were not asked about: typos must not pass unseen. */
    if (!emsguard_conf_check_section(prov_name, &checked, present))
        return 0;
    /*
     * OpenSSL 3.0 drops a configured parameter it fails to store (allocation
     * failure) without failing the load: a key in our section that did not
     * arrive must stop activation, not fall back to its default.
     */
    for (key = 0; checked && key < EG_KEY_COUNT; key++)
        if (present[key] && values[key] == NULL) {
            emsguard_raise(EMSGUARD_R_PROVIDER,
                "%skey '%s' is in the configuration but the core did not pass it on",
                where, conf_names[key]);
            return 0;
        }
    /* Precedence: defaults, then the PolicyFile, then the section's keys. */
    if (policy_file != NULL && !EMSGUARD_POLICY_load_reg(policy, policy_file))
        return 0;
    for (key = 0; key < EG_KEY_COUNT; key++)
        if (values[key] != NULL
            && !emsguard_policy_store(policy, (eg_key)key, values[key],
                EG_SRC_PROVIDER, NULL, 0, where))
            return 0;
    if (!checked)
        emsguard_log(policy, EG_LEVEL_DEBUG,
            "provider '%s': section not found in the default configuration "
            "file, unknown keys could not be checked",
            prov_name != NULL ? prov_name : PROVIDER_NAME);
    return 1;
}

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
 * (policy_from_process_config()).
 */
static pthread_mutex_t init_failure_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int failed;
    char name[128];
    char why[1024];
} init_failure;

static int is_default_libctx(const OSSL_LIB_CTX *libctx)
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
        || !is_default_libctx((OSSL_LIB_CTX *)core_get_libctx(handle)))
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

static int init_failure_get(char *name, size_t name_len, char *why, size_t why_len)
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
    if (!read_config(core_get_params, handle, &pc->policy)) {
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

/* ---- reading the policy back, for EMSGUARD_enable() --------------------- */

#define NO_FALLBACK "the built-in defaults are not used in its place"

struct find_state {
    EMSGUARD_POLICY *policy;
    int found;
    int failed;
    char found_name[128]; /* the provider whose policy *policy is */
};

static size_t text_size(eg_key key)
{
    return emsguard_key_is_text(key) ? EG_STRING_MAX : 32;
}

/*
 * One more emsguard provider with |candidate| as its policy.  Every one is
 * looked at: two active emsguard providers (two sections, each activated
 * under its own name) with different values leave no policy to choose, as
 * OSSL_PROVIDER_do_all()'s order is not the file's, and the preload and
 * `emsguard policy` read the file (conf_file.c refuses the same file).  So
 * that fails closed, naming both; equal policies under two names are one
 * policy.  Returns 1 to go on, 0 (fs->failed set) to stop.
 */
static int note_found(struct find_state *fs, const OSSL_PROVIDER *prov,
    const EMSGUARD_POLICY *candidate)
{
    const char *name = OSSL_PROVIDER_get0_name(prov);

    if (!fs->found) {
        *fs->policy = *candidate;
        fs->found = 1;
        snprintf(fs->found_name, sizeof(fs->found_name), "%s", name != NULL ? name : "?");
        return 1;
    }
    if (emsguard_policy_equal(fs->policy, candidate))
        return 1;
    emsguard_raise(EMSGUARD_R_PROVIDER,
        "two emsguard providers are active in this library context with different "
        "policies, '%s' and '%s': which one applies would depend on the route (API, "
        "preload, emsguard policy); give their sections the same values or activate only "
        "one; " NO_FALLBACK, fs->found_name, name != NULL ? name : "?");
    fs->found = 0;
    fs->failed = 1;
    return 0;
}

static int find_one(OSSL_PROVIDER *prov, void *arg)
{
    struct find_state *fs = arg;
    char marker[32] = "";
    char *values[EG_KEY_COUNT], *block;
    OSSL_PARAM req[EG_KEY_COUNT + 2];
    EMSGUARD_POLICY *candidate;
    size_t total = 0;
    int key, n = 0, ret = 0;

    if (!names_ready()) {
        fs->failed = 1;
        return 0;
    }
    for (key = 0; key < EG_KEY_COUNT; key++)
        total += text_size((eg_key)key);
    block = OPENSSL_zalloc(total);
    candidate = OPENSSL_malloc(sizeof(*candidate));
    if (block == NULL || candidate == NULL) {
        emsguard_raise(ERR_R_MALLOC_FAILURE, "cannot allocate the provider's policy");
        fs->failed = 1;
        goto end;
    }
    req[n++] = OSSL_PARAM_construct_utf8_string(EMSGUARD_PARAM_MARKER, marker,
        sizeof(marker));
    for (total = 0, key = 0; key < EG_KEY_COUNT; key++) {
        values[key] = block + total;
        total += text_size((eg_key)key);
        req[n++] = OSSL_PARAM_construct_utf8_string(conf_names[key], values[key],
            text_size((eg_key)key));
    }
    req[n] = OSSL_PARAM_construct_end();
    ERR_set_mark();
    if (!OSSL_PROVIDER_get_params(prov, req) || !OSSL_PARAM_modified(&req[0])) {
        ERR_pop_to_mark(); /* not ours */
        ret = 1;
        goto end;
    }
    ERR_pop_to_mark();
    emsguard_policy_defaults(candidate);
    for (key = 0; key < EG_KEY_COUNT; key++) {
        if (!OSSL_PARAM_modified(&req[key + 1])) {
            emsguard_raise(EMSGUARD_R_PROVIDER,
                "provider '%s' did not report '%s'",
                OSSL_PROVIDER_get0_name(prov), emsguard_key_name((eg_key)key));
            fs->failed = 1;
            goto end;
        }
        if (values[key][0] == '\0' && emsguard_key_is_optional((eg_key)key))
            continue; /* unset: OpenSSL's default */
        if (!emsguard_policy_store(candidate, (eg_key)key, values[key],
                EG_SRC_PROVIDER, NULL, 0, "emsguard provider parameter: ")) {
            fs->failed = 1;
            goto end;
        }
    }
    /* The provider logged its warnings when it loaded. */
    candidate->warnings[0] = '\0';
    ret = note_found(fs, prov, candidate);
end:
    OPENSSL_free(block);
    OPENSSL_free(candidate);
    return ret; /* 0: stop */
}

/*
 * No emsguard provider is active in the default library context: the
 * process's configuration decides.  A provider that failed to activate
 * (recorded by this image, or found in the file with a bad section or a
 * missing module) and one the file activates but that is not active fail
 * closed, with the reason; a section OpenSSL does not activate gives its
 * values, as it does to the preload; no emsguard provider at all leaves
 * |policy| and *found 0.
 */
static int policy_from_process_config(EMSGUARD_POLICY *policy, int *found)
{
    struct eg_conf_origin *o = OPENSSL_malloc(sizeof(*o));
    EMSGUARD_POLICY *parsed = OPENSSL_malloc(sizeof(*parsed));
    char name[128], why[1024];
    int failed, read_ok, ok = 0;

    *found = 0;
    if (o == NULL || parsed == NULL) {
        emsguard_raise(ERR_R_MALLOC_FAILURE, "cannot allocate the configuration's policy");
        goto end;
    }
    *parsed = *policy;
    failed = init_failure_get(name, sizeof(name), why, sizeof(why));
    read_ok = emsguard_conf_read_policy(parsed, NULL, o);
    if (failed) {
        emsguard_raise(EMSGUARD_R_PROVIDER,
            "emsguard provider '%s' failed to activate in the default library context: %s; "
            NO_FALLBACK, name, why);
        goto end;
    }
    if (!read_ok) {
        if (o->failed.name[0] != '\0')
            emsguard_raise(EMSGUARD_R_PROVIDER,
                "emsguard provider '%s' (%s, section [%s]) cannot be activated with this "
                "configuration; " NO_FALLBACK, o->failed.name, o->failed.file, o->failed.section);
        else
            emsguard_raise(EMSGUARD_R_PROVIDER,
                "cannot read the process's configuration to see whether it configures an "
                "emsguard provider; " NO_FALLBACK);
        goto end;
    }
    if (o->found && o->activated) {
        emsguard_raise(EMSGUARD_R_PROVIDER,
            "emsguard provider '%s' (%s, section [%s], module %s) is to be activated but is "
            "not active in the default library context: OpenSSL could not load or "
            "initialise it (see its own error), this program did not load that "
            "configuration (OPENSSL_INIT_NO_LOAD_CONFIG, or another file; under the "
            "preload, EMSGUARD_CONF=%s applies that section to such a program), or it was "
            "unloaded; " NO_FALLBACK, o->chosen.name, o->chosen.file, o->chosen.section,
            o->chosen.path, o->chosen.file);
        goto end;
    }
    if (o->found) {
        *policy = *parsed;
        *found = 1;
        emsguard_log(policy, EG_LEVEL_DEBUG,
            "no emsguard provider active; policy from %s, section [%s] (not activated)",
            o->chosen.file, o->chosen.section);
    }
    ok = 1;
end:
    OPENSSL_free(parsed);
    OPENSSL_free(o);
    return ok;
}

int EMSGUARD_POLICY_from_provider(EMSGUARD_POLICY *policy,
    OSSL_LIB_CTX *libctx, int *found)
{
    struct find_state fs = { NULL, 0, 0, "" };

    if (policy == NULL || found == NULL) {
        emsguard_raise(EMSGUARD_R_INVALID_ARGUMENT,
            "EMSGUARD_POLICY_from_provider: policy or found is NULL");
        return 0;
    }
    /*
     * The default context gets the process's configuration the way
     * SSL_CTX_new() would load it (a no-op once loaded, or after the
     * program chose OPENSSL_INIT_NO_LOAD_CONFIG).
     */
    if (is_default_libctx(libctx) && !OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL)) {
        emsguard_raise(EMSGUARD_R_PROVIDER,
            "OpenSSL cannot load the process's configuration; " NO_FALLBACK);
        return 0;
    }
    fs.policy = policy;
    /*
     * do_all fails when it cannot copy the provider list: "no emsguard
     * provider" would then silently mean the built-in defaults.
     */
    if (!OSSL_PROVIDER_do_all(libctx, find_one, &fs) && !fs.found && !fs.failed) {
        emsguard_raise(EMSGUARD_R_PROVIDER,
            "cannot list the library context's providers to find emsguard's policy");
        return 0;
    }
    if (fs.failed)
        return 0;
    if (!fs.found && is_default_libctx(libctx) && !policy_from_process_config(policy, &fs.found))
        return 0;
    *found = fs.found;
    return 1;
}
