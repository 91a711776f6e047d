/*
 * The provider's section of openssl.cnf, read directly.
 *
 * The core hands a provider only the keys it asks for by exact name, so a
 * misspelt key would otherwise be ignored without a word.  We read the same
 * configuration file OpenSSL read (OPENSSL_CONF or the default), follow
 * openssl_conf -> providers -> <our name> to our section, and reject any key
 * in it that neither we nor OpenSSL know.
 *
 * The same walk gives the policy to code that has no provider to ask: the
 * preload library and the command-line tool (EMSGUARD_POLICY_from_config).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/conf.h>
#include <openssl/crypto.h>
#include "internal.h"

int emsguard_conf_is_reserved_key(const char *name)
{
    return strcmp(name, "module") == 0 || strcmp(name, "activate") == 0
        || strcmp(name, "identity") == 0 || strcmp(name, "soft_load") == 0;
}

/*
 * |name| in |section| (NULL: the unnamed one), read from the section's list
 * as OpenSSL's own module loader does, not with NCONF_get_string(): when
 * libcrypto's hash table cannot grow (out of memory) it keeps a value in the
 * list but drops it from the table without an error, and a lost "providers"
 * or "module" line would hide our section and with it a misspelt key.
 */
static const char *conf_string(CONF *conf, const char *section,
    const char *name)
{
    STACK_OF(CONF_VALUE) *values;
    const char *found = NULL;
    int i;

    ERR_set_mark(); /* a missing section raises an error; we expect some */
    values = NCONF_get_section(conf, section != NULL ? section : "default");
    ERR_pop_to_mark();
    for (i = 0; i < sk_CONF_VALUE_num(values); i++) {
        const CONF_VALUE *v = sk_CONF_VALUE_value(values, i);

        if (v->name != NULL && strcmp(v->name, name) == 0)
            found = v->value; /* the last one wins, as in the table */
    }
    return found;
}

#define POLICY_FILE_KEY "PolicyFile"

/*
 * Visits every policy value of |section|, descending into the nested
 * sections OpenSSL turns into "Group.Subkey" names.  Unknown names and
 * misplaced sections fail with the section and key named.
 */
typedef int (*value_fn)(void *arg, eg_key key, const char *section,
    const char *value, const char *where);

static int walk_section(CONF *conf, const char *file, const char *section,
    const char *prefix, value_fn fn, void *arg)
{
    STACK_OF(CONF_VALUE) *values = NCONF_get_section(conf, section);
    char where[512], name[256];
    int i, key;

    if (values == NULL)
        return 1;
    snprintf(where, sizeof(where), "%s, section [%s]: ", file, section);
    for (i = 0; i < sk_CONF_VALUE_num(values); i++) {
        const CONF_VALUE *v = sk_CONF_VALUE_value(values, i);
        int is_section = NCONF_get_section(conf, v->value) != NULL;

        if (prefix[0] == '\0'
            && (emsguard_conf_is_reserved_key(v->name) || strcmp(v->name, POLICY_FILE_KEY) == 0)) {
            if (strcmp(v->name, POLICY_FILE_KEY) == 0 && is_section) {
                emsguard_raise(EMSGUARD_R_BAD_VALUE,
                    "%skey '%s': value '%s' is the name of a section; accepted: "
                    "the path of a .reg file", where, v->name, v->value);
                return 0;
            }
            continue;
        }
        if ((size_t)snprintf(name, sizeof(name), "%s%s", prefix, v->name) >= sizeof(name)) {
            emsguard_raise_unknown_key(where, v->name);
            return 0;
        }
        if ((key = emsguard_key_lookup(name)) >= 0) {
            /*
             * OpenSSL treats a value that names a section as a nested
             * section and would hand us "<key>.<name>" instead of the key:
             * the setting would vanish and the default would apply.
             */
            if (is_section) {
                emsguard_raise(EMSGUARD_R_BAD_VALUE,
                    "%skey '%s': value '%s' is the name of a section, which "
                    "OpenSSL would read as a nested section instead of a value; "
                    "accepted: %s",
                    where, name, v->value, emsguard_key_accepted((eg_key)key));
                return 0;
            }
            if (fn != NULL && !fn(arg, (eg_key)key, section, v->value, where))
                return 0;
            continue;
        }
        if (emsguard_key_is_group(name)) {
            char sub[260];

            if (!is_section) {
                emsguard_raise(EMSGUARD_R_BAD_VALUE,
                    "%skey '%s': value '%s' must name a section holding its "
                    "subkeys (e.g. %s = my_%s_section)",
                    where, name, v->value, v->name, v->name);
                return 0;
            }
            snprintf(sub, sizeof(sub), "%s.", name);
            if (!walk_section(conf, file, v->value, sub, fn, arg))
                return 0;
            continue;
        }
        emsguard_raise_unknown_key(where, name);
        return 0;
    }
    return 1;
}

struct store_arg {
    EMSGUARD_POLICY *policy;
    const char *file;
};

static int store_value(void *arg, eg_key key, const char *section,
    const char *value, const char *where)
{
    struct store_arg *sa = arg;

    if (!emsguard_policy_store(sa->policy, key, value, EG_SRC_CONF, sa->file, 0, where))
        return 0;
    emsguard_policy_note_section(sa->policy, key, section);
    return 1;
}

/* True when a provider section entry |name| is emsguard: by name or module. */
static int is_emsguard_entry(CONF *conf, const CONF_VALUE *entry)
{
    const char *module, *base;

    if (strcmp(entry->name, "emsguard") == 0)
        return 1;
    if ((module = conf_string(conf, entry->value, "module")) == NULL)
        return 0;
    base = strrchr(module, '/');
    base = base != NULL ? base + 1 : module;
    return strncmp(base, "emsguard.", 9) == 0
        || strncmp(base, "libemsguard.", 12) == 0;
}

/*
 * Finds the section configuring provider |prov_name|, or, with a NULL
 * |prov_name|, the first provider that is emsguard by name or module.
 */
static const char *find_section(CONF *conf, const char *prov_name)
{
    const char *init, *providers;
    STACK_OF(CONF_VALUE) *entries;
    int i;

    if ((init = conf_string(conf, NULL, "openssl_conf")) == NULL
        || (providers = conf_string(conf, init, "providers")) == NULL)
        return NULL;
    if (prov_name != NULL)
        return conf_string(conf, providers, prov_name);
    if ((entries = NCONF_get_section(conf, providers)) == NULL)
        return NULL;
    for (i = 0; i < sk_CONF_VALUE_num(entries); i++) {
        const CONF_VALUE *entry = sk_CONF_VALUE_value(entries, i);

        if (is_emsguard_entry(conf, entry))
            return entry->value;
    }
    return NULL;
}

/*
 * Loads |file|; on failure raises an error naming file:line and sets
 * *syntax (if given) when the failure is a syntax error.
 */
static CONF *load_conf_ex(const char *file, int *syntax)
{
    CONF *conf = NCONF_new(NULL);
    long eline = 0;

    if (syntax != NULL)
        *syntax = 0;

    if (conf == NULL) {
        emsguard_raise(ERR_R_MALLOC_FAILURE, "cannot allocate a CONF");
        return NULL;
    }
    ERR_set_mark();
    if (NCONF_load(conf, file, &eline) <= 0) {
        unsigned long err = ERR_peek_last_error();

        ERR_pop_to_mark();
        /* libcrypto reports a line for any failure, memory included. */
        if (syntax != NULL)
            *syntax = eline > 0 && ERR_GET_LIB(err) == ERR_LIB_CONF
                && (ERR_GET_REASON(err) == CONF_R_MISSING_EQUAL_SIGN
                    || ERR_GET_REASON(err) == CONF_R_MISSING_CLOSE_SQUARE_BRACKET
                    || ERR_GET_REASON(err) == CONF_R_NO_CLOSE_BRACE
                    || ERR_GET_REASON(err) == CONF_R_VARIABLE_HAS_NO_VALUE
                    || ERR_GET_REASON(err) == CONF_R_VARIABLE_EXPANSION_TOO_LONG
                    || ERR_GET_REASON(err) == CONF_R_INVALID_PRAGMA
                    || ERR_GET_REASON(err) == CONF_R_NUMBER_TOO_LARGE);
        if (eline > 0)
            emsguard_raise(EMSGUARD_R_CONFIG_FILE, "%s:%ld: syntax error (%s)",
                file, eline, ERR_reason_error_string(err));
        else
            emsguard_raise(EMSGUARD_R_CONFIG_FILE, "%s: cannot read (%s)",
                file, ERR_reason_error_string(err));
        NCONF_free(conf);
        return NULL;
    }
    ERR_pop_to_mark();
    return conf;
}

static CONF *load_conf(const char *file)
{
    return load_conf_ex(file, NULL);
}

static int mark_present(void *arg, eg_key key, const char *name,
    const char *value, const char *where)
{
    unsigned char *present = arg;

    (void)name;
    (void)value;
    (void)where;
    present[key] = 1;
    return 1;
}

int emsguard_conf_check_section(const char *prov_name, int *checked,
    unsigned char present[EG_KEY_COUNT])
{
    char *file = CONF_get1_default_config_file();
    CONF *conf = NULL;
    const char *ours;
    int ok = 1, syntax = 0;

    *checked = 0;
    if (prov_name == NULL)
        goto done;
    if (file == NULL) {
        emsguard_raise(ERR_R_MALLOC_FAILURE, "cannot name the configuration file to check");
        ok = 0;
        goto done;
    }
    ERR_set_mark();
    conf = load_conf_ex(file, &syntax);
    if (conf == NULL) {
        /* OpenSSL reports its own parse errors; ours would only repeat them. */
        ERR_pop_to_mark();
        /*
         * An existing file we cannot load for any reason but its syntax (out
         * of memory, say): the typo check would be skipped, so stop here.
         */
        if (!syntax && access(file, F_OK) == 0) {
            emsguard_raise(EMSGUARD_R_CONFIG_FILE,
                "%s: cannot be read to check the provider's keys", file);
            ok = 0;
            goto done;
        }
        emsguard_log(NULL, EG_LEVEL_DEBUG, "cannot read %s to check keys", file);
        goto done;
    }
    ERR_pop_to_mark();
    if ((ours = find_section(conf, prov_name)) == NULL) {
        emsguard_log(NULL, EG_LEVEL_DEBUG,
            "no section for provider '%s' in %s; unknown keys not checked",
            prov_name, file);
        goto done;
    }
    *checked = 1;
    ok = walk_section(conf, file, ours, "", mark_present, present);
done:
    NCONF_free(conf);
    OPENSSL_free(file);
    return ok;
}

int EMSGUARD_POLICY_from_config(EMSGUARD_POLICY *policy, const char *file,
    int *found)
{
    char *default_file = NULL;
    CONF *conf = NULL;
    EMSGUARD_POLICY *parsed = NULL;
    struct store_arg sa;
    const char *ours, *policy_file;
    int ok = 0;

    if (policy == NULL || found == NULL) {
        emsguard_raise(EMSGUARD_R_INVALID_ARGUMENT,
            "EMSGUARD_POLICY_from_config: policy or found is NULL");
        return 0;
    }
    *found = 0;
    if (file == NULL && (file = default_file = CONF_get1_default_config_file()) == NULL) {
        emsguard_raise(ERR_R_MALLOC_FAILURE, "cannot name the default config file");
        return 0;
    }
    /* Like OpenSSL, treat a missing default file as no configuration. */
    if (default_file != NULL && access(default_file, F_OK) != 0) {
        ok = 1;
        goto done;
    }
    if ((conf = load_conf(file)) == NULL)
        goto done;
    if ((ours = find_section(conf, NULL)) == NULL) {
        ok = 1; /* no emsguard provider configured: policy unchanged */
        goto done;
    }
    if ((parsed = OPENSSL_malloc(sizeof(*parsed))) == NULL) {
        emsguard_raise(ERR_R_MALLOC_FAILURE, "cannot allocate a policy");
        goto done;
    }
    *parsed = *policy;
    /* Precedence: the PolicyFile first, the section's own keys over it. */
    if ((policy_file = conf_string(conf, ours, POLICY_FILE_KEY)) != NULL
        && !EMSGUARD_POLICY_load_reg(parsed, policy_file))
        goto done;
    sa.policy = parsed;
    sa.file = file;
    if (!walk_section(conf, file, ours, "", store_value, &sa))
        goto done;
    *policy = *parsed;
    *found = 1;
    ok = 1;
done:
    OPENSSL_free(parsed);
    NCONF_free(conf);
    OPENSSL_free(default_file);
    return ok;
}
