/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The provider's section of openssl.cnf, read directly.
 *
 * The core hands a provider only the keys it asks for by exact name, so a
 * misspelt key would otherwise be ignored without a word.  We read the same
 * configuration file OpenSSL read (OPENSSL_CONF or the default), follow
 * openssl_conf -> providers -> <our name> to our section, and reject any key
 * in it that neither we nor OpenSSL know -- if that section is what the
 * core passed us: a program that loads its own file is not held to it.
 *
 * The same walk gives the policy to code that has no provider to ask: the
 * preload library and the command-line tool (EMSGUARD_POLICY_from_config),
 * and EMSGUARD_enable() when no emsguard provider is active.
 *
 * Which provider lines are emsguard, and where their sections are, is
 * conf_providers.c's part: found as OpenSSL 3 finds them.
 */
#include <stdio.h>
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
            && (emsguard_conf_is_reserved_key(v->name) || strcmp(v->name, EG_POLICY_FILE_KEY) == 0)) {
            if (strcmp(v->name, EG_POLICY_FILE_KEY) == 0 && is_section) {
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

/* Finding the section of the provider named |name| (the provider's own check). */
struct named_search {
    const char *name;
    const char *section; /* the first activated line of that name, else the first */
    int activated;
};

static int match_name(void *arg, CONF *conf, const struct eg_prov_entry *e)
{
    struct named_search *ns = arg;

    (void)conf;
    if (!e->has_section || strcmp(e->name, ns->name) != 0)
        return 1;
    if (ns->section == NULL || (e->activate && !ns->activated)) {
        ns->section = e->section;
        ns->activated = e->activate;
    }
    return 1;
}

/*
 * The section configuring provider |prov_name|, found the way OpenSSL
 * found it; NULL if none (or, with an error raised, if the file could not
 * be walked).
 */
static const char *find_section(CONF *conf, const char *prov_name, int *failed)
{
    struct named_search ns = { prov_name, NULL, 0 };

    *failed = !emsguard_conf_each_provider(conf, match_name, &ns);
    return *failed ? NULL : ns.section;
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

/*
 * The values |section| sets for policy keys (the last one wins, as in the
 * core) and its PolicyFile, names that are not keys left out: what
 * OpenSSL passes a provider that this section configures.
 */
static void collect_section(CONF *conf, const char *section, const char *prefix,
    const char *found[EG_KEY_COUNT], const char **policy_file)
{
    STACK_OF(CONF_VALUE) *values;
    char name[256], sub[260];
    int i, key;

    ERR_set_mark();
    values = NCONF_get_section(conf, section);
    ERR_pop_to_mark();
    for (i = 0; i < sk_CONF_VALUE_num(values); i++) {
        const CONF_VALUE *v = sk_CONF_VALUE_value(values, i);

        if (prefix[0] == '\0' && strcmp(v->name, EG_POLICY_FILE_KEY) == 0) {
            *policy_file = v->value;
            continue;
        }
        if ((size_t)snprintf(name, sizeof(name), "%s%s", prefix, v->name) >= sizeof(name))
            continue;
        if ((key = emsguard_key_lookup(name)) >= 0) {
            found[key] = v->value;
        } else if (emsguard_key_is_group(name)) {
            snprintf(sub, sizeof(sub), "%s.", name);
            collect_section(conf, v->value, sub, found, policy_file);
        }
    }
}

/*
 * 1 if the core passed the provider a value that |section| does not set,
 * or sets otherwise: OpenSSL loaded the provider from another file (the
 * program's own) and this section is not its configuration.  OpenSSL may
 * drop a value (allocation failure) but never invents or changes one.
 */
static int section_not_loaded(CONF *conf, const char *section,
    const char *const passed[EG_KEY_COUNT], const char *passed_policy_file)
{
    const char *found[EG_KEY_COUNT] = { NULL }, *policy_file = NULL;
    int key;

    collect_section(conf, section, "", found, &policy_file);
    if (passed_policy_file != NULL
        && (policy_file == NULL || strcmp(policy_file, passed_policy_file) != 0))
        return 1;
    for (key = 0; key < EG_KEY_COUNT; key++)
        if (passed[key] != NULL && (found[key] == NULL || strcmp(found[key], passed[key]) != 0))
            return 1;
    return 0;
}

int emsguard_conf_check_section(const char *prov_name, int *checked,
    unsigned char present[EG_KEY_COUNT])
{
    return emsguard_conf_check_loaded_section(prov_name, NULL, NULL, checked, present);
}

int emsguard_conf_check_loaded_section(const char *prov_name,
    const char *const passed[EG_KEY_COUNT], const char *passed_policy_file, int *checked,
    unsigned char present[EG_KEY_COUNT])
{
    char *file = CONF_get1_default_config_file();
    CONF *conf = NULL;
    const char *ours;
    int ok = 1, syntax = 0, failed = 0;

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
    if ((ours = find_section(conf, prov_name, &failed)) == NULL) {
        if (failed) {
            ok = 0;
            goto done;
        }
        emsguard_log(NULL, EG_LEVEL_DEBUG,
            "no section for provider '%s' in %s; unknown keys not checked",
            prov_name, file);
        goto done;
    }
    if (passed != NULL && section_not_loaded(conf, ours, passed, passed_policy_file)) {
        emsguard_log(NULL, EG_LEVEL_DEBUG,
            "section [%s] of %s is not what OpenSSL loaded provider '%s' with (the "
            "values differ: the program loaded another file); unknown keys not checked",
            ours, file, prov_name);
        goto done;
    }
    *checked = 1;
    ok = walk_section(conf, file, ours, "", mark_present, present);
done:
    NCONF_free(conf);
    OPENSSL_free(file);
    return ok;
}

/* ---- the emsguard sections of a file ---------------------------------------- */

struct policy_scan {
    const char *file;
    int process_config; /* the process's own file: modules must exist */
    const EMSGUARD_POLICY *base; /* what each section is applied over */
    EMSGUARD_POLICY *scratch; /* one section, parsed */
    EMSGUARD_POLICY *chosen; /* the policy of the chosen section */
    struct eg_conf_origin *origin;
};

static void note_origin(struct eg_conf_entry *o, const char *file,
    const struct eg_prov_entry *e)
{
    snprintf(o->name, sizeof(o->name), "%s", e->name);
    snprintf(o->section, sizeof(o->section), "%s", e->section);
    snprintf(o->file, sizeof(o->file), "%s", file);
    snprintf(o->module, sizeof(o->module), "%s", e->module != NULL ? e->module : "");
    snprintf(o->path, sizeof(o->path), "%s", e->path);
}

/*
 * A second emsguard provider that OpenSSL activates, under another name,
 * beside the chosen one it also activates: both run, each with its own
 * section.  With different values there is no policy to choose (the API
 * reads the active providers in OSSL_PROVIDER_do_all() order, not the
 * file's; provider.c refuses the same case), so the file is refused,
 * naming both.  Equal values are one policy.  The same name twice is one
 * provider to OpenSSL, and a section it does not activate is inert.
 */
static int activated_sections_agree(const struct policy_scan *ps, const struct eg_prov_entry *e)
{
    const struct eg_conf_origin *o = ps->origin;

    if (!o->found || !o->activated || !e->activate || strcmp(o->chosen.name, e->name) == 0
        || emsguard_policy_equal(ps->chosen, ps->scratch))
        return 1;
    emsguard_raise(EMSGUARD_R_CONFIG_FILE,
        "%s: two emsguard providers are activated with different policies, '%s' "
        "(section [%s]) and '%s' (section [%s]): which one applies would depend on the "
        "route (API, preload, emsguard policy); give both sections the same values or "
        "activate only one",
        ps->file, o->chosen.name, o->chosen.section, e->name, e->section);
    return 0;
}

/*
 * One provider line: if it is emsguard, its section is parsed exactly as
 * the provider parses it (every emsguard section must be valid: OpenSSL
 * would try each); the first one OpenSSL activates, else the first one,
 * gives the policy.
 */
static int scan_entry(void *arg, CONF *conf, const struct eg_prov_entry *e)
{
    struct policy_scan *ps = arg;
    struct eg_conf_origin *o = ps->origin;
    struct store_arg sa;
    const char *policy_file;
    int exists = 0;

    if (!emsguard_conf_is_emsguard_entry(conf, e, &exists))
        return 1;
    note_origin(&o->failed, ps->file, e);
    if (!e->has_section) {
        emsguard_raise(EMSGUARD_R_CONFIG_FILE,
            "%s: emsguard provider '%s' names section [%s], which does not exist",
            ps->file, e->name, e->section);
        return 0;
    }
    *ps->scratch = *ps->base;
    /* Precedence: the PolicyFile first, the section's own keys over it. */
    if ((policy_file = emsguard_conf_string(conf, e->section, EG_POLICY_FILE_KEY)) != NULL
        && !EMSGUARD_POLICY_load_reg(ps->scratch, policy_file))
        return 0;
    sa.policy = ps->scratch;
    sa.file = ps->file;
    if (!walk_section(conf, ps->file, e->section, "", store_value, &sa))
        return 0;
    /* OpenSSL would fail to load it: a policy that is not in force. */
    if (ps->process_config && e->activate && !exists) {
        if (e->module != NULL && strcmp(e->module, e->path) != 0)
            emsguard_raise(EMSGUARD_R_CONFIG_FILE,
                "%s, section [%s]: emsguard provider '%s' cannot be activated: its "
                "module '%s' (%s) does not exist",
                ps->file, e->section, e->name, e->module, e->path);
        else if (e->module != NULL)
            emsguard_raise(EMSGUARD_R_CONFIG_FILE,
                "%s, section [%s]: emsguard provider '%s' cannot be activated: its "
                "module '%s' does not exist",
                ps->file, e->section, e->name, e->path);
        else
            emsguard_raise(EMSGUARD_R_CONFIG_FILE,
                "%s, section [%s]: emsguard provider '%s' cannot be activated: it has no "
                "module line, and '%s' does not exist",
                ps->file, e->section, e->name, e->path);
        return 0;
    }
    o->failed.name[0] = '\0';
    if (!activated_sections_agree(ps, e))
        return 0;
    if (!o->found || (e->activate && !o->activated)) {
        *ps->chosen = *ps->scratch;
        note_origin(&o->chosen, ps->file, e);
        o->activated = e->activate;
    }
    o->found = 1;
    return 1;
}

int emsguard_conf_read_policy(EMSGUARD_POLICY *policy, const char *file,
    struct eg_conf_origin *origin)
{
    char *default_file = NULL;
    CONF *conf = NULL;
    struct policy_scan ps;
    int ok = 0;

    memset(origin, 0, sizeof(*origin));
    memset(&ps, 0, sizeof(ps));
    if (file == NULL && (file = default_file = CONF_get1_default_config_file()) == NULL) {
        emsguard_raise(ERR_R_MALLOC_FAILURE, "cannot name the default config file");
        return 0;
    }
    /* Like OpenSSL, treat a missing (or empty-named) default file as no configuration. */
    if (default_file != NULL && (*default_file == '\0' || access(default_file, F_OK) != 0)) {
        ok = 1;
        goto done;
    }
    if ((conf = load_conf(file)) == NULL)
        goto done;
    ps.file = file;
    ps.process_config = default_file != NULL;
    ps.base = policy;
    ps.origin = origin;
    ps.scratch = OPENSSL_malloc(sizeof(*ps.scratch));
    ps.chosen = OPENSSL_malloc(sizeof(*ps.chosen));
    if (ps.scratch == NULL || ps.chosen == NULL) {
        emsguard_raise(ERR_R_MALLOC_FAILURE, "cannot allocate a policy");
        goto done;
    }
    if (!emsguard_conf_each_provider(conf, scan_entry, &ps))
        goto done;
    if (origin->found)
        *policy = *ps.chosen;
    ok = 1;
done:
    if (!ok)
        origin->found = origin->activated = 0;
    OPENSSL_free(ps.scratch);
    OPENSSL_free(ps.chosen);
    NCONF_free(conf);
    OPENSSL_free(default_file);
    return ok;
}

int EMSGUARD_POLICY_from_config(EMSGUARD_POLICY *policy, const char *file,
    int *found)
{
    struct eg_conf_origin *origin;
    int ok;

    if (policy == NULL || found == NULL) {
        emsguard_raise(EMSGUARD_R_INVALID_ARGUMENT,
            "EMSGUARD_POLICY_from_config: policy or found is NULL");
        return 0;
    }
    *found = 0;
    if ((origin = OPENSSL_malloc(sizeof(*origin))) == NULL) {
        emsguard_raise(ERR_R_MALLOC_FAILURE, "cannot allocate the configuration's origin");
        return 0;
    }
    ok = emsguard_conf_read_policy(policy, file, origin);
    *found = ok && origin->found;
    OPENSSL_free(origin);
    return ok;
}
