/* SPDX-License-Identifier: Apache-2.0 */
/*
 * check_two_providers -- two emsguard providers activated in one library
 * context (issue 15, round 2: R3).
 *
 * OpenSSL activates both, each with its own section.  EMSGUARD_enable()
 * used to take the first in OSSL_PROVIDER_do_all() order (sorted by name),
 * the preload and `emsguard policy` the first in file order: with
 * "zguard" (Require=1) before "aguard" (Require=0) in the file, the tool
 * printed Require=1 while the API let a legacy client through.  Now every
 * route refuses two emsguard providers with different policies, naming
 * both; equal policies under two names stay accepted, and a second section
 * OpenSSL does not activate changes nothing.
 *
 * Every test runs in its own process (CK_FORK, forced): OPENSSL_CONF is set
 * before OpenSSL reads any configuration in it.
 *
 *   BUILD=build build/test/check_two_providers
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
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>
#include "emsguard.h"
#include "conf_util.h"

/* OpenSSL 3.0 and 3.1 activate on any "activate" line: leave it out. */
static const char *activate_line(int on)
{
    return on ? "activate = 1\n" : "";
}

/*
 * A configuration with the default provider and two emsguard providers in
 * file order "zguard" then "aguard" (do_all order is the reverse).
 */
static char *write_two(const char *name, int z_activate, const char *z_keys, int a_activate,
    const char *a_keys)
{
    char *path = cu_xasprintf("%s/%s", cu_tmpdir, name);
    FILE *f = fopen(path, "w");

    ck_assert_msg(f != NULL, "cannot write %s: %s", path, strerror(errno));
    fprintf(f,
        "openssl_conf = openssl_init\n"
        "[openssl_init]\n"
        "providers = provider_sect\n"
        "[provider_sect]\n"
        "default = default_sect\n"
        "zguard = z_sect\n"
        "aguard = a_sect\n"
        "[default_sect]\n"
        "activate = 1\n"
        "[z_sect]\n"
        "module = %s\n"
        "%s"
        "EventLogging = 0\n"
        "%s\n"
        "[a_sect]\n"
        "module = %s\n"
        "%s"
        "EventLogging = 0\n"
        "%s\n",
        cu_module_path, activate_line(z_activate), z_keys, cu_module_path,
        activate_line(a_activate), a_keys);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(setenv("OPENSSL_CONF", path, 1), 0);
    return path;
}

static void expect_names_both(const char *errs)
{
    cu_expect_in(errs, "'zguard'");
    cu_expect_in(errs, "'aguard'");
    cu_expect_in(errs, "different");
}

static SSL_CTX *server_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    ck_assert_ptr_nonnull(ctx);
    return ctx;
}

static uint32_t require_of(const EMSGUARD_POLICY *p)
{
    uint32_t v = 99;

    ck_assert_int_eq(EMSGUARD_POLICY_get_dword(p, EMSGUARD_REQUIRE_EMS, &v), 1);
    return v;
}

/* |ctx| was enabled with Require=|want| (re-enabling with it is a no-op). */
static void expect_ctx_require(SSL_CTX *ctx, const char *want)
{
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();

    ck_assert_int_eq(EMSGUARD_CTX_is_enabled(ctx), 1);
    ck_assert_int_eq(EMSGUARD_POLICY_set(p, EMSGUARD_EVENT_LOGGING, "0"), 1);
    ck_assert_int_eq(EMSGUARD_POLICY_set(p, EMSGUARD_REQUIRE_EMS, want), 1);
    ck_assert_msg(EMSGUARD_enable_policy(ctx, p) == 1,
        "the SSL_CTX's policy is not Require=%s", want);
    EMSGUARD_POLICY_free(p);
}

/* ---- different policies: every route refuses ------------------------------- */

START_TEST(enable_refuses_two_differing_providers)
{
    char *file = write_two("differ.cnf", 1, "RequireExtendedMasterSecret = 1", 1,
        "RequireExtendedMasterSecret = 0");
    SSL_CTX *ctx = server_ctx();
    char *errs;
    int ret;

    ck_assert_int_eq(OSSL_PROVIDER_available(NULL, "zguard"), 1);
    ck_assert_int_eq(OSSL_PROVIDER_available(NULL, "aguard"), 1);
    ERR_clear_error();
    ret = EMSGUARD_enable(ctx);
    errs = cu_drain_errors();
    ck_assert_msg(ret == 0, "EMSGUARD_enable() succeeded with two differing emsguard "
                            "providers (Require=%s)", ret ? "?" : "-");
    ck_assert_int_eq(EMSGUARD_CTX_is_enabled(ctx), 0);
    expect_names_both(errs);
    free(errs);
    SSL_CTX_free(ctx);
    free(file);
}
END_TEST

START_TEST(from_provider_refuses_two_differing_providers)
{
    char *file = write_two("differ-prov.cnf", 1, "RequireExtendedMasterSecret = 1", 1,
        "RequireExtendedMasterSecret = 0");
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
    int found = -1, ret;
    char *errs;

    ck_assert_int_eq(OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, NULL), 1);
    ret = EMSGUARD_POLICY_from_provider(p, NULL, &found);
    errs = cu_drain_errors();
    ck_assert_msg(ret == 0, "from_provider succeeded: found=%d Require=%u", found,
        require_of(p));
    expect_names_both(errs);
    free(errs);
    EMSGUARD_POLICY_free(p);
    free(file);
}
END_TEST

/* The preload's and `emsguard policy`'s route, default file and named file. */
START_TEST(from_config_refuses_two_differing_sections)
{
    char *file = write_two("differ-conf.cnf", 1, "RequireExtendedMasterSecret = 1", 1,
        "RequireExtendedMasterSecret = 0");
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
    int found = -1, ret, i;
    char *errs;

    for (i = 0; i < 2; i++) {
        ret = EMSGUARD_POLICY_from_config(p, i == 0 ? NULL : file, &found);
        errs = cu_drain_errors();
        ck_assert_msg(ret == 0, "from_config(%s) succeeded: found=%d Require=%u",
            i == 0 ? "NULL" : file, found, require_of(p));
        ck_assert_int_eq(found, 0);
        expect_names_both(errs);
        cu_expect_in(errs, "[z_sect]");
        cu_expect_in(errs, "[a_sect]");
        free(errs);
    }
    EMSGUARD_POLICY_free(p);
    free(file);
}
END_TEST

/* A difference in any value counts, not only Require. */
START_TEST(from_config_refuses_other_difference)
{
    char *file = write_two("differ-other.cnf", 1,
        "RequireExtendedMasterSecret = 1\nClientCacheTime = 600000", 1,
        "RequireExtendedMasterSecret = 1");
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
    int found = -1;
    char *errs;

    ck_assert_int_eq(EMSGUARD_POLICY_from_config(p, NULL, &found), 0);
    errs = cu_drain_errors();
    expect_names_both(errs);
    free(errs);
    EMSGUARD_POLICY_free(p);
    free(file);
}
END_TEST

/* ---- what stays accepted ------------------------------------------------------ */

START_TEST(equal_policies_under_two_names_accepted)
{
    char *file = write_two("equal.cnf", 1, "RequireExtendedMasterSecret = 1", 1,
        "RequireExtendedMasterSecret = 1");
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
    SSL_CTX *ctx;
    int found = -1;
    char *errs;

    ck_assert_int_eq(EMSGUARD_POLICY_from_config(p, NULL, &found), 1);
    ck_assert_int_eq(found, 1);
    ck_assert_uint_eq(require_of(p), 1);
    ctx = server_ctx();
    ck_assert_int_eq(EMSGUARD_POLICY_from_provider(p, NULL, &found), 1);
    ck_assert_int_eq(found, 1);
    ck_assert_uint_eq(require_of(p), 1);
    ck_assert_int_eq(EMSGUARD_enable(ctx), 1);
    errs = cu_drain_errors();
    ck_assert_msg(errs[0] == '\0', "errors queued:\n%s", errs);
    free(errs);
    expect_ctx_require(ctx, "1");
    SSL_CTX_free(ctx);
    EMSGUARD_POLICY_free(p);
    free(file);
}
END_TEST

/* Only one of them is activated: OpenSSL runs that one, every route agrees. */
START_TEST(second_section_not_activated_accepted)
{
    char *file = write_two("one-active.cnf", 0, "RequireExtendedMasterSecret = 0", 1,
        "RequireExtendedMasterSecret = 1");
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
    SSL_CTX *ctx;
    int found = -1;

    ck_assert_int_eq(EMSGUARD_POLICY_from_config(p, NULL, &found), 1);
    ck_assert_int_eq(found, 1);
    ck_assert_uint_eq(require_of(p), 1);
    ctx = server_ctx();
    ck_assert_int_eq(OSSL_PROVIDER_available(NULL, "zguard"), 0);
    ck_assert_int_eq(EMSGUARD_enable(ctx), 1);
    expect_ctx_require(ctx, "1");
    SSL_CTX_free(ctx);
    EMSGUARD_POLICY_free(p);
    free(file);
}
END_TEST

/* ---- suite ------------------------------------------------------------------- */

static Suite *two_providers_suite(void)
{
    Suite *s = suite_create("emsguard-two-providers");
    TCase *tc = tcase_create("differing-refused");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, enable_refuses_two_differing_providers);
    tcase_add_test(tc, from_provider_refuses_two_differing_providers);
    tcase_add_test(tc, from_config_refuses_two_differing_sections);
    tcase_add_test(tc, from_config_refuses_other_difference);
    suite_add_tcase(s, tc);
    tc = tcase_create("accepted");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, equal_policies_under_two_names_accepted);
    tcase_add_test(tc, second_section_not_activated_accepted);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cu_run_forked("check_two_providers", "emsguard-two", two_providers_suite);
}
