/* SPDX-License-Identifier: Apache-2.0 */
/*
 * check_config_failclosed -- an emsguard provider in the process's
 * openssl.cnf that OpenSSL does not activate must never leave
 * EMSGUARD_enable() or EMSGUARD_POLICY_from_config() on the built-in
 * defaults (issue 15, F12), and the provider's section is found the way
 * OpenSSL finds it, whatever the names:
 *
 *   1. EMSGUARD_enable() on the default library context: a misspelt key, a
 *      bad value, a module that is not there, a configuration the program
 *      did not load, a file loaded with OPENSSL_INIT_set_config_filename():
 *      it fails, with the reason (file, section, key, what is accepted).
 *   2. A valid section under other names (a renamed provider, a symlinked
 *      or copied module, "identity", a second "providers" line, .include)
 *      is found and its values are applied.
 *   3. The provider itself rejects a misspelt key in a section it finds
 *      only through "identity", and does not hold a program's own file to
 *      OPENSSL_CONF's section (issue 17).
 *
 * Every test runs in its own process (CK_FORK, forced): OPENSSL_CONF is set
 * before OpenSSL reads any configuration in it.
 *
 *   BUILD=build build/test/check_config_failclosed
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>
#include "emsguard.h"
#include "conf_util.h"

/* ---- helpers ---------------------------------------------------------------- */

static char *tmp_path(const char *name)
{
    return cu_xasprintf("%s/%s", cu_tmpdir, name);
}

static char *write_file(const char *name, const char *text)
{
    char *path = tmp_path(name);
    FILE *f = fopen(path, "w");

    ck_assert_msg(f != NULL, "cannot write %s: %s", path, strerror(errno));
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

/* Copies the library file under |name| in the temp dir (a real copy). */
static char *copy_module(const char *name)
{
    char *dst = tmp_path(name);
    FILE *in = fopen(cu_module_path, "rb"), *out = fopen(dst, "wb");
    char buf[65536];
    size_t n;

    ck_assert_ptr_nonnull(in);
    ck_assert_ptr_nonnull(out);
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    ck_assert_int_eq(fclose(out), 0);
    return dst;
}

/*
 * The configuration every test starts from: the default provider and one
 * provider entry |entry| = |section| in [provider_sect]; |body| is that
 * section's content (module, activate, keys).  |extra| goes at the end.
 */
static char *write_conf(const char *name, const char *entry, const char *section,
    const char *body, const char *extra)
{
    char *text = cu_xasprintf("openssl_conf = openssl_init\n"
                           "[openssl_init]\n"
                           "providers = provider_sect\n"
                           "[provider_sect]\n"
                           "default = default_sect\n"
                           "%s = %s\n"
                           "[default_sect]\n"
                           "activate = 1\n"
                           "[%s]\n"
                           "%s\n"
                           "%s",
        entry, section, section, body, extra != NULL ? extra : "");
    char *path = write_file(name, text);

    free(text);
    return path;
}

static void use_conf(const char *path)
{
    ck_assert_int_eq(setenv("OPENSSL_CONF", path, 1), 0);
}

/* A server SSL_CTX of the default library context (loads the configuration). */
static SSL_CTX *server_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    ck_assert_ptr_nonnull(ctx);
    ERR_clear_error(); /* OpenSSL's own report of the failed provider */
    return ctx;
}

/*
 * EMSGUARD_enable() must fail, leave |ctx| without a policy, and queue the
 * reasons, which must contain every string of |needles| (NULL-terminated).
 */
static void expect_enable_fails(SSL_CTX *ctx, const char *const *needles)
{
    int ret = EMSGUARD_enable(ctx);
    char *errs = cu_drain_errors();

    ck_assert_msg(ret == 0, "EMSGUARD_enable() succeeded (fails open); queue:\n%s", errs);
    ck_assert_int_eq(EMSGUARD_CTX_is_enabled(ctx), 0);
    for (; *needles != NULL; needles++)
        cu_expect_in(errs, *needles);
    free(errs);
}

/* |ctx| has the policy |want|: enabling it again with the same is a no-op. */
static void expect_ctx_policy(SSL_CTX *ctx, const EMSGUARD_POLICY *want)
{
    EMSGUARD_POLICY *defaults = EMSGUARD_POLICY_new();
    char *errs;

    ck_assert_int_eq(EMSGUARD_CTX_is_enabled(ctx), 1);
    ck_assert_msg(EMSGUARD_enable_policy(ctx, want) == 1,
        "the SSL_CTX does not have the configured policy");
    ck_assert_int_eq(EMSGUARD_enable_policy(ctx, defaults), 0);
    errs = cu_drain_errors();
    cu_expect_in(errs, "already has an emsguard policy with other values");
    free(errs);
    EMSGUARD_POLICY_free(defaults);
}

/*
 * A server SSL_CTX (loading the configuration) on which EMSGUARD_enable()
 * must fail closed with |needles|; unless |provider| is NULL, OpenSSL's
 * activation of that provider must be |active|.
 */
static void expect_server_fails_closed(const char *provider, int active,
    const char *const *needles)
{
    SSL_CTX *ctx = server_ctx();

    if (provider != NULL)
        ck_assert_int_eq(OSSL_PROVIDER_available(NULL, provider), active);
    expect_enable_fails(ctx, needles);
    SSL_CTX_free(ctx);
}

/* EMSGUARD_enable(|ctx|) succeeds and gives |ctx| the policy |want|. */
static void expect_enable_applies(SSL_CTX *ctx, const EMSGUARD_POLICY *want)
{
    int ret = EMSGUARD_enable(ctx);
    char *errs = cu_drain_errors();

    ck_assert_msg(ret == 1, "EMSGUARD_enable failed: %s", errs);
    free(errs);
    expect_ctx_policy(ctx, want);
}

static EMSGUARD_POLICY *require_policy(const char *event_logging)
{
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();

    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(EMSGUARD_POLICY_set(p, EMSGUARD_REQUIRE_EMS, "1"), 1);
    ck_assert_int_eq(EMSGUARD_POLICY_set(p, EMSGUARD_EVENT_LOGGING, event_logging), 1);
    return p;
}

/*
 * A server SSL_CTX (loading the configuration) on which EMSGUARD_enable()
 * applies Require=1, EventLogging=|event_logging|; OpenSSL's activation of
 * |provider| must be |active|.
 */
static void expect_server_applies(const char *provider, int active, const char *event_logging)
{
    EMSGUARD_POLICY *want = require_policy(event_logging);
    SSL_CTX *ctx = server_ctx();

    ck_assert_int_eq(OSSL_PROVIDER_available(NULL, provider), active);
    expect_enable_applies(ctx, want);
    SSL_CTX_free(ctx);
    EMSGUARD_POLICY_free(want);
}

/* EMSGUARD_POLICY_from_config(|file|) finds the section: Require=1, EventLogging=|evl|. */
static void expect_from_config_finds(const char *file, uint32_t evl)
{
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
    uint32_t v = 99;
    int found = -1;
    char *errs;

    ck_assert_int_eq(EMSGUARD_POLICY_from_config(p, file, &found), 1);
    errs = cu_drain_errors();
    ck_assert_msg(found == 1, "from_config(%s): no emsguard section found; queue: %s",
        file != NULL ? file : "NULL", errs);
    free(errs);
    ck_assert_int_eq(EMSGUARD_POLICY_get_dword(p, EMSGUARD_REQUIRE_EMS, &v), 1);
    ck_assert_uint_eq(v, 1);
    ck_assert_int_eq(EMSGUARD_POLICY_get_dword(p, EMSGUARD_EVENT_LOGGING, &v), 1);
    ck_assert_uint_eq(v, evl);
    EMSGUARD_POLICY_free(p);
}

/* An activated section with module |module|, Require=1, EventLogging=|evl| (caller frees). */
static char *active_body(const char *module, int evl)
{
    return cu_xasprintf("module = %s\nactivate = 1\nRequireExtendedMasterSecret = 1\n"
                        "EventLogging = %d",
        module, evl);
}

/* ---- 1. EMSGUARD_enable() fails closed ------------------------------------------ */

#define TYPO_BODY_FMT "module = %s\nactivate = 1\nRequireExtendedMasterSecret = 1\nEventLoging = 3"

/* F12 (a): a misspelt key; the provider does not activate. */
START_TEST(enable_misspelt_key_fails_closed)
{
    char *body = cu_xasprintf(TYPO_BODY_FMT, cu_module_path);
    char *file = write_conf("typo.cnf", "emsguard", "emsguard_sect", body, NULL);
    char *where = cu_xasprintf("%s, section [emsguard_sect]: unknown key 'EventLoging' "
                            "(did you mean 'EventLogging'?)", file);
    const char *needles[] = { where, "emsguard provider 'emsguard'", NULL };

    use_conf(file);
    expect_server_fails_closed("emsguard", 0, needles);
    free(where);
    free(file);
    free(body);
}
END_TEST

/* F12 (a): a bad value, named with what is accepted. */
START_TEST(enable_bad_value_fails_closed)
{
    char *body = cu_xasprintf("module = %s\nactivate = 1\nRequireExtendedMasterSecret = yes",
        cu_module_path);
    char *file = write_conf("value.cnf", "emsguard", "emsguard_sect", body, NULL);
    const char *needles[] = { "key 'RequireExtendedMasterSecret': value 'yes' is not a "
                              "number; accepted: 0 or 1",
        "section [emsguard_sect]", NULL };

    use_conf(file);
    expect_server_fails_closed(NULL, 0, needles);
    free(file);
    free(body);
}
END_TEST

/* F12 (a)+(b): a renamed provider, its module a copy named emsguard-1.so. */
START_TEST(enable_renamed_copy_misspelt_key_fails_closed)
{
    char *copy = copy_module("emsguard-1.so");
    char *body = cu_xasprintf(TYPO_BODY_FMT, copy);
    char *file = write_conf("renamed-typo.cnf", "myguard", "myguard_sect", body, NULL);
    const char *needles[] = { "section [myguard_sect]: unknown key 'EventLoging'",
        "emsguard provider 'myguard'", NULL };

    use_conf(file);
    expect_server_fails_closed("myguard", 0, needles);
    free(file);
    free(body);
    free(copy);
}
END_TEST

/* The module OpenSSL would load is not there. */
START_TEST(enable_module_missing_fails_closed)
{
    char *missing = tmp_path("nowhere/emsguard.so");
    char *body = cu_xasprintf("module = %s\nactivate = 1\nRequireExtendedMasterSecret = 1",
        missing);
    char *file = write_conf("missing-module.cnf", "emsguard", "emsguard_sect", body, NULL);
    char *what = cu_xasprintf("module '%s'", missing);
    const char *needles[] = { what, "does not exist", "section [emsguard_sect]", NULL };

    use_conf(file);
    expect_server_fails_closed(NULL, 0, needles);
    free(what);
    free(file);
    free(body);
    free(missing);
}
END_TEST

/*
 * Neither the name nor the module file says emsguard (the module is
 * misspelt): its keys do.  A relative module is looked up in OPENSSL_MODULES.
 */
START_TEST(enable_identified_by_keys_module_missing)
{
    char *file = write_conf("by-keys.cnf", "tls", "tls_sect",
        "module = emsgaurd.so\nactivate = 1\nRequireExtendedMasterSecret = 1", NULL);
    char *expect = cu_xasprintf("module 'emsgaurd.so' (%s/emsgaurd.so) does not exist",
        cu_build_dir);
    const char *needles[] = { expect, "emsguard provider 'tls'", NULL };

    ck_assert_int_eq(setenv("OPENSSL_MODULES", cu_build_dir, 1), 0);
    use_conf(file);
    expect_server_fails_closed(NULL, 0, needles);
    free(expect);
    free(file);
}
END_TEST

/* A valid, activated section that this program did not load. */
START_TEST(enable_configuration_not_loaded_fails_closed)
{
    char *body = cu_xasprintf("module = %s\nactivate = 1\nRequireExtendedMasterSecret = 1",
        cu_module_path);
    char *file = write_conf("not-loaded.cnf", "emsguard", "emsguard_sect", body, NULL);
    const char *needles[] = { "not active in the default library context",
        "section [emsguard_sect]", NULL };

    use_conf(file);
    ck_assert_int_eq(OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG, NULL), 1);
    expect_server_fails_closed("emsguard", 0, needles);
    free(file);
    free(body);
}
END_TEST

/*
 * The program loads its own file (not OPENSSL_CONF) into the default
 * library context, with a bad value: the provider's own failure is what
 * EMSGUARD_enable() reports.  (A misspelt key in such a file is beyond
 * the provider: it can check the keys only of the file OpenSSL reads by
 * default.)
 */
START_TEST(enable_app_config_file_failure_reported)
{
    char *body = cu_xasprintf("module = %s\nactivate = 1\nRequireExtendedMasterSecret = yes",
        cu_module_path);
    char *file = write_conf("app-value.cnf", "appguard", "appguard_sect", body, NULL);
    char *plain = write_file("plain.cnf", "openssl_conf = openssl_init\n[openssl_init]\n");
    OPENSSL_INIT_SETTINGS *settings = OPENSSL_INIT_new();
    const char *needles[] = { "key 'RequireExtendedMasterSecret': value 'yes' is not a number",
        "emsguard provider 'appguard'", NULL };

    use_conf(plain);
    ck_assert_ptr_nonnull(settings);
    ck_assert_int_eq(OPENSSL_INIT_set_config_filename(settings, file), 1);
    ck_assert_int_eq(OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, settings), 1);
    OPENSSL_INIT_free(settings);
    expect_server_fails_closed("appguard", 0, needles);
    free(plain);
    free(file);
    free(body);
}
END_TEST

/*
 * OPENSSL_CONF names file A, the program loads its own file B (issue 17):
 * the provider loaded from B is not held to A's section (a key only A
 * sets, a misspelt key in A), and EMSGUARD_enable() applies B's policy,
 * the one the provider instance was loaded with.
 */
START_TEST(enable_app_config_file_not_held_to_openssl_conf)
{
    char *body_a = cu_xasprintf("module = %s\nactivate = 1\nRequireExtendedMasterSecret = 1\n"
                             "DisableDHEWithoutExtendedMasterSecret = 1\nEventLoging = 1",
        cu_module_path);
    char *body_b = active_body(cu_module_path, 5);
    char *file_a = write_conf("env-a.cnf", "emsguard", "emsguard_sect", body_a, NULL);
    char *file_b = write_conf("app-b.cnf", "emsguard", "emsguard_sect", body_b, NULL);
    OPENSSL_INIT_SETTINGS *settings = OPENSSL_INIT_new();
    EMSGUARD_POLICY *want = require_policy("5");
    SSL_CTX *ctx;

    use_conf(file_a);
    ck_assert_ptr_nonnull(settings);
    ck_assert_int_eq(OPENSSL_INIT_set_config_filename(settings, file_b), 1);
    ck_assert_int_eq(OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, settings), 1);
    OPENSSL_INIT_free(settings);
    ctx = server_ctx();
    ck_assert_msg(OSSL_PROVIDER_available(NULL, "emsguard") == 1,
        "the provider loaded from B was held to OPENSSL_CONF's section");
    expect_enable_applies(ctx, want);
    SSL_CTX_free(ctx);
    EMSGUARD_POLICY_free(want);
    free(file_b);
    free(file_a);
    free(body_b);
    free(body_a);
}
END_TEST

/* config_diagnostics = 1 does not make OpenSSL 3.0 fail on a failed provider. */
START_TEST(enable_with_config_diagnostics)
{
    char *body = cu_xasprintf(TYPO_BODY_FMT, cu_module_path);
    char *text, *file;
    SSL_CTX *ctx;
    const char *needles[] = { "unknown key 'EventLoging'", NULL };

    text = cu_xasprintf("config_diagnostics = 1\nopenssl_conf = openssl_init\n"
                     "[openssl_init]\nproviders = provider_sect\n"
                     "[provider_sect]\ndefault = default_sect\nemsguard = emsguard_sect\n"
                     "[default_sect]\nactivate = 1\n[emsguard_sect]\n%s\n",
        body);
    file = write_file("diagnostics.cnf", text);
    use_conf(file);
    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        /* OpenSSL 3.2+: the failed activation is fatal: closed as well. */
        ERR_clear_error();
    } else {
        ERR_clear_error();
        expect_enable_fails(ctx, needles);
        SSL_CTX_free(ctx);
    }
    free(file);
    free(text);
    free(body);
}
END_TEST

/* ---- 2. a valid section is found and used under any name ------------------------- */

/* Without "activate" the provider is not loaded; its section still applies. */
START_TEST(enable_not_activated_section_applies)
{
    char *body = cu_xasprintf("module = %s\nRequireExtendedMasterSecret = 1\nEventLogging = 3",
        cu_module_path);
    char *file = write_conf("no-activate.cnf", "emsguard", "emsguard_sect", body, NULL);

    use_conf(file);
    expect_server_applies("emsguard", 0, "3");
    free(file);
    free(body);
}
END_TEST

/* F12 (b): renamed provider, module a symlink with another name. */
START_TEST(renamed_symlink_module_used)
{
    char *link = tmp_path("tls-guard.so");
    char *body, *file;

    ck_assert_int_eq(symlink(cu_module_path, link), 0);
    body = active_body(link, 3);
    file = write_conf("renamed-link.cnf", "myguard", "myguard_sect", body, NULL);
    use_conf(file);
    expect_server_applies("myguard", 1, "3");
    expect_from_config_finds(NULL, 3);
    expect_from_config_finds(file, 3);
    free(file);
    free(body);
    free(link);
}
END_TEST

/* A copy of the module under a name that says nothing: found by content. */
START_TEST(from_config_copy_with_unrelated_name)
{
    char *copy = copy_module("tlsext.so");
    char *body = active_body(copy, 5);
    char *file = write_conf("copy.cnf", "tlsext", "tlsext_sect", body, NULL);

    use_conf(file);
    expect_from_config_finds(file, 5);
    expect_from_config_finds(NULL, 5);
    free(file);
    free(body);
    free(copy);
}
END_TEST

/*
 * The same copy, activated: another image of the module, whose instance
 * hands EMSGUARD_enable() the policy it was loaded with (issue 17).
 */
START_TEST(enable_active_copy_used)
{
    char *copy = copy_module("tlsext.so");
    char *body = active_body(copy, 5);
    char *file = write_conf("copy-active.cnf", "tlsext", "tlsext_sect", body, NULL);

    use_conf(file);
    expect_server_applies("tlsext", 1, "5");
    free(file);
    free(body);
    free(copy);
}
END_TEST

/* Every "<version>\0" in |path| becomes "0.0.0\0": a copy of another version. */
static void patch_version(const char *path)
{
    FILE *f = fopen(path, "r+b");
    const char *version = EMSGUARD_VERSION_STR;
    size_t len = strlen(version) + 1, n, i, hits = 0;
    char *buf;
    long size;

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    size = ftell(f);
    ck_assert_int_gt(size, 0);
    rewind(f);
    buf = malloc((size_t)size);
    ck_assert_ptr_nonnull(buf);
    n = fread(buf, 1, (size_t)size, f);
    ck_assert_uint_eq(n, (size_t)size);
    for (i = 0; i + len <= n; i++)
        if (memcmp(buf + i, version, len) == 0) {
            memset(buf + i, '0', len - 1);
            for (size_t j = 1; j < len - 1; j += 2)
                buf[i + j] = '.';
            hits++;
        }
    ck_assert_uint_gt(hits, 0);
    rewind(f);
    ck_assert_uint_eq(fwrite(buf, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
    free(buf);
}

/* A copy of another emsguard version: its policy is not read, not guessed. */
START_TEST(enable_copy_of_other_version_fails_closed)
{
    char *copy = copy_module("other-version.so");
    char *body, *file;
    const char *needles[] = { "provider 'older' is emsguard 0.0.0, this library is emsguard "
                              EMSGUARD_VERSION_STR, "not used in its place", NULL };

    patch_version(copy);
    body = cu_xasprintf("module = %s\nactivate = 1\nRequireExtendedMasterSecret = 1", copy);
    file = write_conf("other-version.cnf", "older", "older_sect", body, NULL);
    use_conf(file);
    expect_server_fails_closed("older", 1, needles);
    free(file);
    free(body);
    free(copy);
}
END_TEST

/*
 * "identity" renames the provider, and without "module" OpenSSL loads
 * <OPENSSL_MODULES>/<name>.so: the entry "x" is emsguard.
 */
START_TEST(identity_without_module_used)
{
    char *file = write_conf("identity.cnf", "x", "x_sect",
        "identity = emsguard\nactivate = 1\nRequireExtendedMasterSecret = 1\nEventLogging = 6",
        NULL);

    ck_assert_int_eq(setenv("OPENSSL_MODULES", cu_build_dir, 1), 0);
    use_conf(file);
    expect_from_config_finds(NULL, 6);
    expect_server_applies("emsguard", 1, "6");
    free(file);
}
END_TEST

/* 3: the provider itself checks the section it finds only via identity. */
START_TEST(identity_misspelt_key_refused_by_provider)
{
    char *body = cu_xasprintf("identity = myguard\n" TYPO_BODY_FMT, cu_module_path);
    char *file = write_conf("identity-typo.cnf", "x", "x_sect", body, NULL);
    const char *needles[] = { "section [x_sect]: unknown key 'EventLoging'", NULL };
    SSL_CTX *ctx;

    use_conf(file);
    ctx = server_ctx();
    ck_assert_msg(OSSL_PROVIDER_available(NULL, "myguard") == 0,
        "the provider activated with a misspelt key in its section");
    expect_enable_fails(ctx, needles);
    SSL_CTX_free(ctx);
    free(file);
    free(body);
}
END_TEST

/*
 * A second line running the providers module ("providers.2": conf_mod.c
 * compares the part before the last '.'): OpenSSL runs both sections.
 */
START_TEST(second_providers_line_used)
{
    char *text = cu_xasprintf("openssl_conf = openssl_init\n"
                           "[openssl_init]\n"
                           "providers = provs_a\n"
                           "providers.2 = provs_b\n"
                           "[provs_a]\ndefault = default_sect\n"
                           "[provs_b]\nguard = guard_sect\n"
                           "[default_sect]\nactivate = 1\n"
                           "[guard_sect]\nmodule = %s\nactivate = 1\n"
                           "RequireExtendedMasterSecret = 1\nEventLogging = 2\n",
        cu_module_path);
    char *file = write_file("two-lines.cnf", text);
    SSL_CTX *ctx;

    use_conf(file);
    expect_from_config_finds(file, 2);
    ctx = server_ctx();
    ck_assert_int_eq(OSSL_PROVIDER_available(NULL, "guard"), 1);
    SSL_CTX_free(ctx);
    free(file);
    free(text);
}
END_TEST

/* The section in a file pulled in with .include; a misspelt key there too. */
START_TEST(included_section)
{
    char *good = cu_xasprintf("[eg_sect]\nmodule = %s\nactivate = 1\n"
                           "RequireExtendedMasterSecret = 1\nEventLogging = 7\n",
        cu_module_path);
    char *bad = cu_xasprintf("[eg_sect]\nmodule = %s\nactivate = 1\nEventLoging = 7\n",
        cu_module_path);
    char *good_inc = write_file("inc-good.cnf", good);
    char *bad_inc = write_file("inc-bad.cnf", bad);
    char *top = cu_xasprintf("openssl_conf = openssl_init\n[openssl_init]\n"
                          "providers = provider_sect\n[provider_sect]\n"
                          "default = default_sect\nsite = eg_sect\n"
                          "[default_sect]\nactivate = 1\n.include %s\n",
        good_inc);
    char *file = write_file("include-top.cnf", top);
    char *top_bad = cu_xasprintf("openssl_conf = openssl_init\n[openssl_init]\n"
                              "providers = provider_sect\n[provider_sect]\n"
                              "default = default_sect\nsite = eg_sect\n"
                              "[default_sect]\nactivate = 1\n.include %s\n",
        bad_inc);
    char *file_bad = write_file("include-top-bad.cnf", top_bad);
    const char *needles[] = { "unknown key 'EventLoging'", NULL };

    expect_from_config_finds(file, 7);
    use_conf(file_bad);
    expect_server_fails_closed(NULL, 0, needles);
    free(file_bad);
    free(top_bad);
    free(file);
    free(top);
    free(bad_inc);
    free(good_inc);
    free(bad);
    free(good);
}
END_TEST

/* ---- EMSGUARD_POLICY_from_config() and the module -------------------------------- */

/*
 * For the process's own configuration (file NULL) an emsguard provider
 * OpenSSL is to activate needs its module; a file named explicitly
 * (EMSGUARD_CONF: only parsed) does not.
 */
START_TEST(from_config_process_module_missing)
{
    char *missing = tmp_path("gone/emsguard.so");
    char *body = active_body(missing, 1);
    char *file = write_conf("fc-missing.cnf", "emsguard", "emsguard_sect", body, NULL);
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
    int found = -1;
    char *errs;

    use_conf(file);
    ck_assert_int_eq(EMSGUARD_POLICY_from_config(p, NULL, &found), 0);
    errs = cu_drain_errors();
    cu_expect_in(errs, "does not exist");
    cu_expect_in(errs, missing);
    free(errs);
    expect_from_config_finds(file, 1);
    EMSGUARD_POLICY_free(p);
    free(file);
    free(body);
    free(missing);
}
END_TEST

/* Controls: no emsguard anywhere: built-in defaults, no error. */
START_TEST(no_emsguard_defaults)
{
    char *file = write_file("default-only.cnf",
        "openssl_conf = openssl_init\n[openssl_init]\nproviders = provider_sect\n"
        "[provider_sect]\ndefault = default_sect\nlegacy = legacy_sect\n"
        "[default_sect]\nactivate = 1\n[legacy_sect]\n");
    EMSGUARD_POLICY *defaults = EMSGUARD_POLICY_new();
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
    SSL_CTX *ctx;
    int found = -1;

    use_conf(file);
    ck_assert_int_eq(EMSGUARD_POLICY_from_config(p, NULL, &found), 1);
    ck_assert_int_eq(found, 0);
    ctx = server_ctx();
    ck_assert_int_eq(EMSGUARD_enable(ctx), 1);
    ck_assert_int_eq(ERR_peek_error(), 0);
    ck_assert_int_eq(EMSGUARD_enable_policy(ctx, defaults), 1);
    SSL_CTX_free(ctx);
    EMSGUARD_POLICY_free(p);
    EMSGUARD_POLICY_free(defaults);
    free(file);
}
END_TEST

/* ---- suite ------------------------------------------------------------------- */

static Suite *failclosed_suite(void)
{
    Suite *s = suite_create("emsguard-config-failclosed");
    TCase *tc = tcase_create("enable-fails-closed");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, enable_misspelt_key_fails_closed);
    tcase_add_test(tc, enable_bad_value_fails_closed);
    tcase_add_test(tc, enable_renamed_copy_misspelt_key_fails_closed);
    tcase_add_test(tc, enable_module_missing_fails_closed);
    tcase_add_test(tc, enable_identified_by_keys_module_missing);
    tcase_add_test(tc, enable_configuration_not_loaded_fails_closed);
    tcase_add_test(tc, enable_app_config_file_failure_reported);
    tcase_add_test(tc, enable_app_config_file_not_held_to_openssl_conf);
    tcase_add_test(tc, enable_with_config_diagnostics);
    suite_add_tcase(s, tc);

    tc = tcase_create("found-under-any-name");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, enable_not_activated_section_applies);
    tcase_add_test(tc, renamed_symlink_module_used);
    tcase_add_test(tc, from_config_copy_with_unrelated_name);
    tcase_add_test(tc, enable_active_copy_used);
    tcase_add_test(tc, enable_copy_of_other_version_fails_closed);
    tcase_add_test(tc, identity_without_module_used);
    tcase_add_test(tc, identity_misspelt_key_refused_by_provider);
    tcase_add_test(tc, second_providers_line_used);
    tcase_add_test(tc, included_section);
    tcase_add_test(tc, from_config_process_module_missing);
    tcase_add_test(tc, no_emsguard_defaults);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cu_run_forked("check_config_failclosed", "emsguard-failclosed", failclosed_suite);
}
