/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The provider lines of an openssl.cnf, resolved as OpenSSL 3 resolves
 * them, and which of them are emsguard: what conf_file.c needs to find
 * emsguard's section under any provider, section or module file name.
 * Split from conf_file.c, which calls it; it calls nothing there.
 *
 * Provider sections are found as OpenSSL 3 finds them (conf_mod.c
 * module_find, provider_conf.c provider_conf_load, provider_core.c
 * provider_init): every [openssl_init] line that runs the "providers"
 * module names a providers section; each of its lines is a provider named
 * by the key (after its first '.') or by "identity", loaded from "module"
 * or <name>.so, relative paths under OPENSSL_MODULES or libcrypto's modules
 * directory.  Which of those providers is emsguard is decided by
 * emsguard_conf_is_emsguard_entry() below.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/conf.h>
#include <openssl/crypto.h>
#include "internal.h"

/*
 * |name| in |section| (NULL: the unnamed one), read from the section's list
 * as OpenSSL's own module loader does, not with NCONF_get_string(): when
 * libcrypto's hash table cannot grow (out of memory) it keeps a value in the
 * list but drops it from the table without an error, and a lost "providers"
 * or "module" line would hide our section and with it a misspelt key.
 */
const char *emsguard_conf_string(CONF *conf, const char *section,
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

/* provider_conf.c skip_dot(): "x.name" names "name". */
static const char *skip_dot(const char *name)
{
    const char *dot = strchr(name, '.');

    return dot != NULL ? dot + 1 : name;
}

/*
 * True when an [openssl_init] line named |name| runs the "providers" module.
 * conf_mod.c module_find() compares the part before the last '.' as a
 * prefix of each built-in module's name, in order ("oid_section",
 * "stbl_section", "engines", "alg_section", "ssl_conf", "providers", ...):
 * "providers", "providers.2" and even "prov" reach the providers module.
 */
static int runs_providers_module(const char *name)
{
    const char *dot = strrchr(name, '.');
    size_t n = dot != NULL ? (size_t)(dot - name) : strlen(name);

    return n >= 1 && n <= sizeof("providers") - 1 && strncmp(name, "providers", n) == 0;
}

/*
 * Whether an "activate" line activates: in OpenSSL 3.0 and 3.1 any value
 * does; 3.2+ read a boolean and fail the whole line on anything else.  An
 * unreadable value counts as "on": the administrator wanted it active.
 */
static int activate_value(const char *value)
{
    static const char *const off[] = { "0", "no", "NO", "false", "FALSE", "off", "OFF" };
    size_t i;

    if (OpenSSL_version_num() < 0x30200000L)
        return 1;
    for (i = 0; value != NULL && i < sizeof(off) / sizeof(off[0]); i++)
        if (strcmp(value, off[i]) == 0)
            return 0;
    return 1;
}

/*
 * provider_core.c provider_init(): the module line, else "<name>.so"
 * (DSO_convert_filename with DSO_FLAG_NAME_TRANSLATION_EXT_ONLY, which
 * leaves a name holding a '/' alone); a relative path goes under
 * OPENSSL_MODULES (ignored when setuid, as ossl_safe_getenv does) or the
 * modules directory libcrypto was built with.  A directory set with
 * OSSL_PROVIDER_set_default_search_path() cannot be seen from here.
 */
static int module_file(const char *name, const char *module, char *out, size_t len)
{
    char file[PATH_MAX];
    const char *dir;
    size_t dirlen;
    int n;

    if (module != NULL)
        n = snprintf(file, sizeof(file), "%s", module);
    else
        n = snprintf(file, sizeof(file), strchr(name, '/') != NULL ? "%s" : "%s.so", name);
    if (n < 0 || (size_t)n >= sizeof(file))
        return 0;
    if (file[0] == '/') {
        n = snprintf(out, len, "%s", file);
        return n >= 0 && (size_t)n < len;
    }
    if ((dir = secure_getenv("OPENSSL_MODULES")) == NULL
        && (dir = OPENSSL_info(OPENSSL_INFO_MODULES_DIR)) == NULL)
        dir = "";
    dirlen = strlen(dir);
    if (dirlen > 0 && dir[dirlen - 1] == '/')
        dirlen--; /* dlfcn_merger() drops one trailing '/' */
    n = snprintf(out, len, "%.*s/%s", (int)dirlen, dir, file);
    return n >= 0 && (size_t)n < len;
}

/* Reads one providers-section line as provider_conf_load() does. */
static int read_entry(CONF *conf, const CONF_VALUE *line, struct eg_prov_entry *e)
{
    STACK_OF(CONF_VALUE) *cmds;
    int i;

    memset(e, 0, sizeof(*e));
    e->name = skip_dot(line->name);
    e->section = line->value;
    ERR_set_mark();
    cmds = NCONF_get_section(conf, line->value);
    ERR_pop_to_mark();
    e->has_section = cmds != NULL;
    for (i = 0; i < sk_CONF_VALUE_num(cmds); i++) {
        const CONF_VALUE *v = sk_CONF_VALUE_value(cmds, i);
        const char *cmd = skip_dot(v->name);

        if (strcmp(cmd, "identity") == 0)
            e->name = v->value;
        else if (strcmp(cmd, "module") == 0)
            e->module = v->value;
        else if (strcmp(cmd, "activate") == 0)
            e->activate = activate_value(v->value);
    }
    /* ossl_provider_new() takes a predefined provider's own init function. */
    e->builtin = strcmp(e->name, "default") == 0 || strcmp(e->name, "base") == 0
        || strcmp(e->name, "null") == 0;
    if (!e->builtin && !module_file(e->name, e->module, e->path, sizeof(e->path))) {
        emsguard_raise(EMSGUARD_R_CONFIG_FILE,
            "section [%s]: the module path of provider '%s' is too long", e->section, e->name);
        return 0;
    }
    return 1;
}

/* 1 if |path| names the file this library was loaded from (any link to it). */
static int is_this_library(const struct stat *st)
{
    Dl_info info;
    struct stat self;

    return dladdr((void *)emsguard_conf_each_provider, &info) != 0 && info.dli_fname != NULL
        && stat(info.dli_fname, &self) == 0 && self.st_dev == st->st_dev
        && self.st_ino == st->st_ino;
}

#define MARKER_SCAN_MAX (64L * 1024 * 1024)

/* 1 if the file |fd| holds emsguard's parameter marker: a copy of emsguard. */
static int holds_marker(int fd, const struct stat *st)
{
    void *map;
    int found;

    if (!S_ISREG(st->st_mode) || st->st_size <= 0 || st->st_size > MARKER_SCAN_MAX)
        return 0;
    map = mmap(NULL, (size_t)st->st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED)
        return 0;
    found = memmem(map, (size_t)st->st_size, EMSGUARD_PARAM_MARKER,
                sizeof(EMSGUARD_PARAM_MARKER) - 1)
        != NULL;
    munmap(map, (size_t)st->st_size);
    return found;
}

/* Keys no other provider has: a section holding one configures emsguard. */
static int has_emsguard_key(CONF *conf, const char *section)
{
    STACK_OF(CONF_VALUE) *values;
    int i;

    ERR_set_mark();
    values = NCONF_get_section(conf, section);
    ERR_pop_to_mark();
    for (i = 0; i < sk_CONF_VALUE_num(values); i++) {
        const char *name = sk_CONF_VALUE_value(values, i)->name;

        if (strstr(name, "ExtendedMasterSecret") != NULL
            || strcmp(name, EMSGUARD_ALLOW_LEGACY_RESUMPTION) == 0
            || strcmp(name, EG_POLICY_FILE_KEY) == 0)
            return 1;
    }
    return 0;
}

/*
 * True when the provider |e| is emsguard.  Cheapest first:
 *  - named "emsguard": OpenSSL loads <modules>/emsguard.so for it;
 *  - the module's file name starts with "emsguard" or "libemsguard"
 *    (emsguard.so, libemsguard.so.0, emsguard-1.so...), there or not;
 *  - its section holds an emsguard-only key (RequireExtendedMasterSecret,
 *    PolicyFile...): emsguard's policy, whatever the module line says, so
 *    a misspelt module path is caught, not taken for another provider;
 *  - the module file is this library, through any symlink or hard link;
 *  - the module file is a copy of emsguard under any name: it holds the
 *    parameter marker only emsguard answers.
 * Built-in providers are never emsguard: OpenSSL ignores their module line.
 * *exists is set to whether the module file exists.
 */
int emsguard_conf_is_emsguard_entry(CONF *conf, const struct eg_prov_entry *e, int *exists)
{
    const char *base = strrchr(e->path, '/');
    struct stat st;
    int fd, found = 0;

    *exists = 0;
    if (e->builtin)
        return 0;
    *exists = stat(e->path, &st) == 0;
    base = base != NULL ? base + 1 : e->path;
    if (strcmp(e->name, "emsguard") == 0 || strncmp(base, "emsguard", 8) == 0
        || strncmp(base, "libemsguard", 11) == 0
        || (e->has_section && has_emsguard_key(conf, e->section)))
        return 1;
    if (!*exists)
        return 0;
    if (is_this_library(&st))
        return 1;
    if ((fd = open(e->path, O_RDONLY | O_CLOEXEC)) >= 0) {
        if (fstat(fd, &st) == 0)
            found = holds_marker(fd, &st);
        close(fd);
    }
    return found;
}

/*
 * Calls |fn| for each provider line of every providers section that
 * openssl_conf leads to, in OpenSSL's order; stops (returning 0) when |fn|
 * or reading a line fails.
 */
int emsguard_conf_each_provider(CONF *conf, eg_conf_entry_fn fn, void *arg)
{
    STACK_OF(CONF_VALUE) *modules, *providers;
    const char *init;
    struct eg_prov_entry *e;
    int i, j, ok = 1;

    if ((init = emsguard_conf_string(conf, NULL, "openssl_conf")) == NULL)
        return 1;
    ERR_set_mark();
    modules = NCONF_get_section(conf, init);
    ERR_pop_to_mark();
    if ((e = OPENSSL_malloc(sizeof(*e))) == NULL) {
        emsguard_raise(ERR_R_MALLOC_FAILURE, "cannot allocate a provider entry");
        return 0;
    }
    for (i = 0; ok && i < sk_CONF_VALUE_num(modules); i++) {
        const CONF_VALUE *m = sk_CONF_VALUE_value(modules, i);

        if (!runs_providers_module(m->name))
            continue;
        ERR_set_mark();
        providers = NCONF_get_section(conf, m->value);
        ERR_pop_to_mark();
        for (j = 0; ok && j < sk_CONF_VALUE_num(providers); j++)
            ok = read_entry(conf, sk_CONF_VALUE_value(providers, j), e) && fn(arg, conf, e);
    }
    OPENSSL_free(e);
    return ok;
}
