/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The policy's rules, one function each (provider/policy_rules.c): the
 * Require-EMS rule, the DHE rule and the resumption verdict, as tables of
 * every combination of the keys they read.  The "old sites" tests pin that
 * each function answers exactly what the expression it replaces answered in
 * hooks_*.c, prf_guard.c, provider.c and report.c, so moving those call
 * sites onto the functions changes no behaviour.
 *
 * The rules are internal (the library exports only the public API), so this
 * suite links provider/policy_rules.o itself; the policies are made through
 * the public API, with the keys' real names.
 *
 *   build/test/check_policy_rules
 */
#include <stdio.h>
#include <stdlib.h>
#include <check.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include "emsguard.h"
#include "internal.h"

static EMSGUARD_POLICY *make_policy(int require, int disable_server, int disable_client,
    int allow_legacy, int disable_dhe)
{
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();

    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(EMSGUARD_POLICY_set_dword(p, EMSGUARD_REQUIRE_EMS, (uint32_t)require), 1);
    ck_assert_int_eq(EMSGUARD_POLICY_set_dword(p, EMSGUARD_DISABLE_SERVER_EMS,
                         (uint32_t)disable_server), 1);
    ck_assert_int_eq(EMSGUARD_POLICY_set_dword(p, EMSGUARD_DISABLE_CLIENT_EMS,
                         (uint32_t)disable_client), 1);
    ck_assert_int_eq(EMSGUARD_POLICY_set_dword(p, EMSGUARD_ALLOW_LEGACY_RESUMPTION,
                         (uint32_t)allow_legacy), 1);
    ck_assert_int_eq(EMSGUARD_POLICY_set_dword(p, EMSGUARD_DISABLE_DHE_WITHOUT_EMS,
                         (uint32_t)disable_dhe), 1);
    return p;
}

/* ---- Require-EMS ---------------------------------------------------------- */

START_TEST(test_requires_ems_default_policy)
{
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();

    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(emsguard_policy_requires_ems(p, EG_ROLE_CLIENT), 0);
    ck_assert_int_eq(emsguard_policy_requires_ems(p, EG_ROLE_SERVER), 0);
    ck_assert_int_eq(emsguard_policy_requires_ems(p, EG_ROLE_UNKNOWN), 0);
    EMSGUARD_POLICY_free(p);
}
END_TEST

/*
 * RequireExtendedMasterSecret binds a role only while that role does EMS;
 * the TLS1-PRF guard (no role) takes it alone.
 */
static const struct {
    int require, disable_server, disable_client;
    int client, server, unknown; /* expected */
} require_table[] = {
    { 0, 0, 0, 0, 0, 0 },
    { 0, 1, 0, 0, 0, 0 },
    { 0, 0, 1, 0, 0, 0 },
    { 0, 1, 1, 0, 0, 0 },
    { 1, 0, 0, 1, 1, 1 },
    { 1, 1, 0, 1, 0, 1 },
    { 1, 0, 1, 0, 1, 1 },
    { 1, 1, 1, 0, 0, 1 },
};

START_TEST(test_requires_ems_table)
{
    EMSGUARD_POLICY *p = make_policy(require_table[_i].require,
        require_table[_i].disable_server, require_table[_i].disable_client, 0, 1);

    ck_assert_int_eq(emsguard_policy_requires_ems(p, EG_ROLE_CLIENT), require_table[_i].client);
    ck_assert_int_eq(emsguard_policy_requires_ems(p, EG_ROLE_SERVER), require_table[_i].server);
    ck_assert_int_eq(emsguard_policy_requires_ems(p, EG_ROLE_UNKNOWN),
        require_table[_i].unknown);
    EMSGUARD_POLICY_free(p);
}
END_TEST

/* Every Require-EMS site, old expression against the function, all 32 policies. */
START_TEST(test_requires_ems_matches_old_sites)
{
    int bits = _i, role;
    EMSGUARD_POLICY *p = make_policy(bits & 1, (bits >> 1) & 1, (bits >> 2) & 1,
        (bits >> 3) & 1, (bits >> 4) & 1);

    /* hooks_hello.c client_hello_cb, require_ems_missed, client_role_requires_ems,
     * check_handshake_from_other_ctx, require_fits_options; report.c require_refused */
    for (role = EG_ROLE_CLIENT; role <= EG_ROLE_SERVER; role++)
        ck_assert_int_eq(emsguard_policy_requires_ems(p, (eg_role)role),
            p->values[EG_KEY_REQUIRE_EMS] && emsguard_role_uses_ems(p, (eg_role)role));
    /* prf_guard.c guard_derive, provider.c eg_get_capabilities */
    ck_assert_int_eq(emsguard_policy_requires_ems(p, EG_ROLE_UNKNOWN),
        p->values[EG_KEY_REQUIRE_EMS] != 0);
    EMSGUARD_POLICY_free(p);
}
END_TEST

/* ---- DHE without EMS ------------------------------------------------------ */

START_TEST(test_drops_dhe_default_policy)
{
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();

    ck_assert_ptr_nonnull(p);
    /* DisableDHEWithoutExtendedMasterSecret defaults to 1. */
    ck_assert_int_eq(emsguard_policy_drops_dhe(p, EG_ROLE_SERVER, 1), 1);
    ck_assert_int_eq(emsguard_policy_drops_dhe(p, EG_ROLE_CLIENT, 1), 1);
    ck_assert_int_eq(emsguard_policy_drops_dhe(p, EG_ROLE_SERVER, 0), 0);
    ck_assert_int_eq(emsguard_policy_drops_dhe(p, EG_ROLE_CLIENT, 0), 0);
    EMSGUARD_POLICY_free(p);
}
END_TEST

START_TEST(test_drops_dhe_table)
{
    int disable_dhe = _i & 1, ems_off = (_i >> 1) & 1, role;
    EMSGUARD_POLICY *p = make_policy(0, 0, 0, 0, disable_dhe);

    for (role = EG_ROLE_CLIENT; role <= EG_ROLE_SERVER; role++)
        ck_assert_int_eq(emsguard_policy_drops_dhe(p, (eg_role)role, ems_off),
            disable_dhe && ems_off);
    EMSGUARD_POLICY_free(p);
}
END_TEST

/* The two DHE sites of hooks_hello.c and hooks_handshake.c, old expression against the function. */
START_TEST(test_drops_dhe_matches_old_sites)
{
    int bits = _i;
    EMSGUARD_POLICY *p = make_policy(bits & 1, (bits >> 1) & 1, (bits >> 2) & 1,
        (bits >> 3) & 1, (bits >> 4) & 1);
    int ems_used, no_ems_option;

    /* client_hello_cb: DisableDHE && !ems_used */
    for (ems_used = 0; ems_used <= 1; ems_used++)
        ck_assert_int_eq(emsguard_policy_drops_dhe(p, EG_ROLE_SERVER, !ems_used),
            p->values[EG_KEY_DISABLE_DHE_WITHOUT_EMS] && !ems_used);
    /* on_handshake_start, client: SSL_OP_NO_EXTENDED_MASTER_SECRET set && DisableDHE */
    for (no_ems_option = 0; no_ems_option <= 1; no_ems_option++) {
        uint64_t options = no_ems_option ? SSL_OP_NO_EXTENDED_MASTER_SECRET : 0;

        ck_assert_int_eq(emsguard_policy_drops_dhe(p, EG_ROLE_CLIENT,
                             (options & SSL_OP_NO_EXTENDED_MASTER_SECRET) != 0),
            (options & SSL_OP_NO_EXTENDED_MASTER_SECRET) != 0
                && p->values[EG_KEY_DISABLE_DHE_WITHOUT_EMS]);
    }
    EMSGUARD_POLICY_free(p);
}
END_TEST

/* ---- the resumption verdict ----------------------------------------------- */

static const struct {
    int disable_role, allow_legacy, session_ems;
    eg_verdict expected;
} verdict_table[] = {
    { 0, 0, 1, EG_ALLOW },
    { 0, 0, 0, EG_REFUSE_NO_EMS },
    { 0, 0, -1, EG_REFUSE_UNREADABLE },
    { 0, 1, 1, EG_ALLOW },
    { 0, 1, 0, EG_ALLOW },
    { 0, 1, -1, EG_REFUSE_UNREADABLE },
    /* Schannel's legacy mode: this role does no EMS. */
    { 1, 0, 1, EG_REFUSE_EMS_DISABLED },
    { 1, 0, 0, EG_ALLOW },
    { 1, 0, -1, EG_REFUSE_UNREADABLE },
    { 1, 1, 1, EG_REFUSE_EMS_DISABLED },
    { 1, 1, 0, EG_ALLOW },
    { 1, 1, -1, EG_REFUSE_UNREADABLE },
};

START_TEST(test_verdict_table)
{
    int role;

    for (role = EG_ROLE_CLIENT; role <= EG_ROLE_SERVER; role++) {
        int d = verdict_table[_i].disable_role;
        /* Only the asking role's Disable*ExtendedMasterSecret counts. */
        EMSGUARD_POLICY *p = make_policy(0, role == EG_ROLE_SERVER ? d : !d,
            role == EG_ROLE_CLIENT ? d : !d, verdict_table[_i].allow_legacy, 1);

        ck_assert_int_eq(emsguard_resumption_verdict(p, (eg_role)role,
                             verdict_table[_i].session_ems),
            verdict_table[_i].expected);
        /* RequireExtendedMasterSecret is not part of the verdict. */
        ck_assert_int_eq(EMSGUARD_POLICY_set_dword(p, EMSGUARD_REQUIRE_EMS, 1), 1);
        ck_assert_int_eq(emsguard_resumption_verdict(p, (eg_role)role,
                             verdict_table[_i].session_ems),
            verdict_table[_i].expected);
        EMSGUARD_POLICY_free(p);
    }
}
END_TEST

static Suite *policy_rules_suite(void)
{
    Suite *s = suite_create("check_policy_rules");
    TCase *tc = tcase_create("require_ems");

    tcase_add_test(tc, test_requires_ems_default_policy);
    tcase_add_loop_test(tc, test_requires_ems_table, 0,
        (int)(sizeof(require_table) / sizeof(require_table[0])));
    tcase_add_loop_test(tc, test_requires_ems_matches_old_sites, 0, 32);
    suite_add_tcase(s, tc);

    tc = tcase_create("dhe");
    tcase_add_test(tc, test_drops_dhe_default_policy);
    tcase_add_loop_test(tc, test_drops_dhe_table, 0, 4);
    tcase_add_loop_test(tc, test_drops_dhe_matches_old_sites, 0, 32);
    suite_add_tcase(s, tc);

    tc = tcase_create("verdict");
    tcase_add_loop_test(tc, test_verdict_table, 0,
        (int)(sizeof(verdict_table) / sizeof(verdict_table[0])));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(policy_rules_suite());
    int failed;

    /* One process: leak checking sees everything. */
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
