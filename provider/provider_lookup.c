/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The library's one way to the provider's policy: EMSGUARD_POLICY_from_provider()
 * (EMSGUARD_enable(), the preload, `emsguard policy`) takes it from the
 * active emsguard provider instances of a library context, as each parsed
 * it from the core's parameters when OpenSSL activated it -- whatever the
 * section or module file is called.  Only when none is active in the
 * default library context does the process's configuration decide, so
 * that a configured emsguard that is not in force never means the
 * built-in defaults.  Split from provider.c, which it calls and which
 * never calls it.
 */
#include <stdio.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include "internal.h"

#define NO_FALLBACK "the built-in defaults are not used in its place"

struct find_state {
    EMSGUARD_POLICY *policy;
    int found;
    int failed;
    char found_name[128]; /* the provider whose policy *policy is */
};

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

/*
 * One provider of the library context: if it is emsguard, its policy as
 * that instance parsed it from the core's parameters when it was
 * activated, copied from the instance (EMSGUARD_PARAM_POLICY).  The same
 * for this image's provider and for a copy of the module under another
 * file, as long as it is this version of emsguard: another version's
 * policy is laid out differently and fails closed.
 */
static int find_one(OSSL_PROVIDER *prov, void *arg)
{
    struct find_state *fs = arg;
    const char *name = OSSL_PROVIDER_get0_name(prov);
    char marker[32] = "";
    void *data = NULL;
    OSSL_PARAM req[3];
    EMSGUARD_POLICY *candidate;
    int ret;

    req[0] = OSSL_PARAM_construct_utf8_string(EMSGUARD_PARAM_MARKER, marker, sizeof(marker));
    req[1] = OSSL_PARAM_construct_octet_ptr(EMSGUARD_PARAM_POLICY, &data, 0);
    req[2] = OSSL_PARAM_construct_end();
    ERR_set_mark();
    if (!OSSL_PROVIDER_get_params(prov, req) || !OSSL_PARAM_modified(&req[0])) {
        ERR_pop_to_mark(); /* not ours */
        return 1;
    }
    ERR_pop_to_mark();
    if (strcmp(marker, EMSGUARD_VERSION_STR) != 0 || !OSSL_PARAM_modified(&req[1])
        || data == NULL || req[1].return_size != sizeof(*candidate)) {
        emsguard_raise(EMSGUARD_R_PROVIDER,
            "provider '%s' is emsguard %s, this library is emsguard %s: its policy cannot "
            "be read; load one version only; " NO_FALLBACK,
            name != NULL ? name : "?", marker, EMSGUARD_VERSION_STR);
        fs->failed = 1;
        return 0;
    }
    if ((candidate = OPENSSL_malloc(sizeof(*candidate))) == NULL) {
        emsguard_raise(ERR_R_MALLOC_FAILURE, "cannot allocate the provider's policy");
        fs->failed = 1;
        return 0;
    }
    memcpy(candidate, data, sizeof(*candidate));
    /* The provider logged its warnings when it loaded. */
    candidate->warnings[0] = '\0';
    ret = note_found(fs, prov, candidate);
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
    failed = emsguard_prov_init_failure(name, sizeof(name), why, sizeof(why));
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
    if (emsguard_is_default_libctx(libctx) && !OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL)) {
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
    if (!fs.found && emsguard_is_default_libctx(libctx) && !policy_from_process_config(policy, &fs.found))
        return 0;
    *found = fs.found;
    return 1;
}

int EMSGUARD_POLICY_equal(const EMSGUARD_POLICY *a, const EMSGUARD_POLICY *b)
{
    return a != NULL && b != NULL && emsguard_policy_equal(a, b);
}

int EMSGUARD_audit_log(void)
{
    EMSGUARD_POLICY policy;
    int found = 0;

    emsguard_policy_defaults(&policy);
    if (!EMSGUARD_POLICY_from_provider(&policy, NULL, &found))
        return 0;
    emsguard_audit_summary(&policy, "on demand");
    return 1;
}
