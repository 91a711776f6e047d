/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The provider's policy in and out as OSSL_PARAMs: read and validated from
 * the core's parameters of this provider instance at activation (the one
 * source of the provider's policy), and shown as text parameters for
 * OSSL_PROVIDER_get_params() (`openssl list -providers -verbose`).  Split
 * from provider.c so the entry point stays about loading and the guard.
 */
#include <stdio.h>
#include <string.h>
#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include "internal.h"

#define PROVIDER_NAME "emsguard"

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

const OSSL_PARAM *emsguard_prov_gettable_params(void)
{
    return names_ready() ? gettable : NULL;
}

int emsguard_prov_export_policy(const EMSGUARD_POLICY *policy, OSSL_PARAM params[])
{
    OSSL_PARAM *p;
    char text[EG_STRING_MAX];
    int key;

    if (!names_ready())
        return 0;
    /* Unset Schannel values travel as "": OpenSSL's default applies. */
    for (key = 0; key < EG_KEY_COUNT; key++) {
        if ((p = OSSL_PARAM_locate(params, conf_names[key])) == NULL)
            continue;
        if (!emsguard_policy_value_text(policy, (eg_key)key, text, sizeof(text))
            || !OSSL_PARAM_set_utf8_string(p, text))
            return 0;
    }
    return 1;
}

int emsguard_prov_read_policy(OSSL_FUNC_core_get_params_fn *core_get_params,
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
    if (!emsguard_conf_check_loaded_section(prov_name, values, policy_file, &checked, present))
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
