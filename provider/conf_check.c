/*
 * Unknown-key detection for the provider's openssl.cnf section.
 *
 * The core hands a provider only the keys it asks for by exact name, so a
 * misspelt key would otherwise be ignored without a word.  We read the same
 * configuration file OpenSSL read (OPENSSL_CONF or the default), follow
 * openssl_conf -> providers -> <our name> to our section, and reject any key
 * in it that neither we nor OpenSSL know.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/conf.h>
#include <openssl/crypto.h>
#include "internal.h"

int emsguard_conf_is_reserved_key(const char *name)
{
    return strcmp(name, "module") == 0 || strcmp(name, "activate") == 0
        || strcmp(name, "identity") == 0 || strcmp(name, "soft_load") == 0;
}

static const char *conf_string(CONF *conf, const char *section,
    const char *name)
{
    /* NCONF_get_string raises an error for a missing name; we expect some. */
    const char *v;

    ERR_set_mark();
    v = NCONF_get_string(conf, section, name);
    ERR_pop_to_mark();
    return v;
}

static int check_section(CONF *conf, const char *file, const char *section)
{
    STACK_OF(CONF_VALUE) *values = NCONF_get_section(conf, section);
    char where[512];
    int i, key;

    if (values == NULL)
        return 1;
    snprintf(where, sizeof(where), "%s, section [%s]: ", file, section);
    for (i = 0; i < sk_CONF_VALUE_num(values); i++) {
        const CONF_VALUE *v = sk_CONF_VALUE_value(values, i);

        if (emsguard_conf_is_reserved_key(v->name))
            continue;
        if ((key = emsguard_key_lookup(v->name)) < 0) {
            emsguard_raise_unknown_key(where, v->name);
            return 0;
        }
        /*
         * OpenSSL treats a value that names a section as a nested section
         * and would hand us "<key>.<name>" instead of the key: the setting
         * would vanish and the default would apply.
         */
        if (NCONF_get_section(conf, v->value) != NULL) {
            emsguard_raise(EMSGUARD_R_BAD_VALUE,
                "%skey '%s': value '%s' is the name of a section, which "
                "OpenSSL would read as a nested section instead of a value; "
                "accepted: %s",
                where, v->name, v->value, emsguard_key_accepted((eg_key)key));
            return 0;
        }
    }
    return 1;
}

int emsguard_conf_check_section(const char *prov_name, int *checked)
{
    char *file = CONF_get1_default_config_file();
    CONF *conf = NULL;
    const char *init, *providers, *ours;
    long eline = 0;
    int ok = 1;

    *checked = 0;
    if (file == NULL || prov_name == NULL)
        goto done;
    if ((conf = NCONF_new(NULL)) == NULL)
        goto done;
    ERR_set_mark();
    if (NCONF_load(conf, file, &eline) <= 0) {
        /* OpenSSL reports its own parse errors; ours would only repeat them. */
        ERR_pop_to_mark();
        emsguard_log(NULL, EG_LEVEL_DEBUG, "cannot read %s to check keys", file);
        goto done;
    }
    ERR_pop_to_mark();
    if ((init = conf_string(conf, NULL, "openssl_conf")) == NULL
        || (providers = conf_string(conf, init, "providers")) == NULL
        || (ours = conf_string(conf, providers, prov_name)) == NULL) {
        emsguard_log(NULL, EG_LEVEL_DEBUG,
            "no section for provider '%s' in %s; unknown keys not checked",
            prov_name, file);
        goto done;
    }
    *checked = 1;
    ok = check_section(conf, file, ours);
done:
    NCONF_free(conf);
    OPENSSL_free(file);
    return ok;
}
