/*
 * check_config -- Check suite for emsguard's configuration:
 *
 *   1. EMSGUARD_POLICY_* : every class of bad input, with the exact error
 *      (library, reason, data string) that policy.c produces; good inputs
 *      read back; defaults; set_dword/get_dword/get_text; NULL arguments.
 *   2. the provider loaded through openssl.cnf into a fresh OSSL_LIB_CTX:
 *      valid files, provider parameters, EMSGUARD_enable_ex(), a library
 *      context without the provider, and bad files (which must never leave
 *      the provider available).
 *   3. EMSGUARD_SESSION_has_ems() argument checks.
 *   4. the stock `openssl list -providers` CLI with good and bad files.
 *
 * Environment: BUILD (default "build") names the build directory holding
 * emsguard.so; SANITIZE=1 says the module is built with ASan, so the stock
 * openssl binary is run with libasan preloaded; OPENSSL (default "openssl")
 * names the CLI.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/opensslv.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>
#include "emsguard.h"

/* ---- shared expectations (copied from provider/policy.c) ---------------- */

#define KNOWN_KEYS                                                       \
    "known keys: DisableServerExtendedMasterSecret, "                    \
    "DisableClientExtendedMasterSecret, AllowLegacyResumption, "         \
    "EventLogging, LogTarget, RequireExtendedMasterSecret, "             \
    "DisableDHEWithoutExtendedMasterSecret, and the Schannel values of " \
    "the README's registry table"
#define DWORD_FORMS " (decimal, 0x hex, or dword:XXXXXXXX)"
#define ACC_BOOL "accepted: 0 or 1" DWORD_FORMS
#define ACC_LOG \
    "accepted: 0 to 7 (bitmask: 1 errors, 2 warnings, 4 informational)" DWORD_FORMS
#define ACC_TARGET "accepted: stderr or syslog"

#define K_DSRV EMSGUARD_DISABLE_SERVER_EMS
#define K_DCLI EMSGUARD_DISABLE_CLIENT_EMS
#define K_ALR EMSGUARD_ALLOW_LEGACY_RESUMPTION
#define K_EVL EMSGUARD_EVENT_LOGGING
#define K_TGT EMSGUARD_LOG_TARGET

#define NOT_ACTIVATED "emsguard: error: provider not activated: "
#define PROV_WHERE "provider 'emsguard' configuration: "
#define SECTION "emsguard_sect"

static const char *const all_keys[] = { K_DSRV, K_DCLI, K_ALR, K_EVL, K_TGT };
#define NKEYS (sizeof(all_keys) / sizeof(all_keys[0]))

/* ---- global test environment (set up in main, inherited by forks) ------- */

static char tmpdir[PATH_MAX];
static char module_path[PATH_MAX + 32];

/* ---- small helpers -------------------------------------------------------- */

static char *xstrdup(const char *s)
{
    char *d = strdup(s);

    ck_assert_ptr_nonnull(d);
    return d;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    ck_assert_int_ge(n, 0);
    return s;
}

/*
 * Pops exactly one error from the queue and checks that it is emsguard's,
 * with |reason| and the exact data string |data|; the queue must then be
 * empty.
 */
static void expect_one_error(int reason, const char *data)
{
    const char *d = NULL;
    int flags = 0;
    unsigned long e = ERR_get_error_all(NULL, NULL, NULL, &d, &flags);
    char *copy;

    ck_assert_msg(e != 0, "expected an error with reason %d on the queue, found none",
        reason);
    copy = xstrdup(d != NULL ? d : "");
    ck_assert_int_eq(ERR_GET_LIB(e), EMSGUARD_get_error_lib());
    ck_assert_int_eq(ERR_GET_REASON(e), reason);
    ck_assert_msg((flags & ERR_TXT_STRING) != 0, "error data is not a string");
    ck_assert_str_eq(copy, data);
    free(copy);
    ck_assert_msg(ERR_peek_error() == 0, "more than one error on the queue");
}

static void expect_no_error(void)
{
    unsigned long e = ERR_peek_error();

    ck_assert_msg(e == 0, "unexpected error on the queue: %s",
        ERR_error_string(e, NULL));
}

/*
 * Drains the queue; there must be exactly one emsguard error, with |reason|
 * and |data|.  Errors of other libraries (libcrypto's "provider_init"
 * wrapper) are allowed.
 */
static void expect_emsguard_error_in_queue(int reason, const char *data)
{
    const char *d;
    int flags, count = 0, got_reason = 0;
    unsigned long e;
    char *got = NULL;

    while ((e = ERR_get_error_all(NULL, NULL, NULL, &d, &flags)) != 0) {
        if (ERR_GET_LIB(e) != EMSGUARD_get_error_lib())
            continue;
        if (count++ == 0) {
            got_reason = ERR_GET_REASON(e);
            got = xstrdup(d != NULL && (flags & ERR_TXT_STRING) ? d : "");
        }
    }
    ck_assert_msg(count == 1, "expected exactly one emsguard error, found %d", count);
    ck_assert_int_eq(got_reason, reason);
    ck_assert_str_eq(got, data);
    free(got);
}

/* Asserts that every key of |p| has the text form in |want| (NKEYS entries). */
static void expect_policy_texts(const EMSGUARD_POLICY *p, const char *const *want)
{
    char buf[64];
    size_t i;

    for (i = 0; i < NKEYS; i++) {
        ck_assert_msg(EMSGUARD_POLICY_get_text(p, all_keys[i], buf, sizeof(buf)) == 1,
            "get_text(%s) failed", all_keys[i]);
        ck_assert_msg(strcmp(buf, want[i]) == 0, "%s is '%s', expected '%s'",
            all_keys[i], buf, want[i]);
    }
    expect_no_error();
}

static const char *const default_texts[NKEYS] = { "0", "0", "0", "1", "stderr" };

/* ---- capturing stderr ------------------------------------------------------ */

static int saved_stderr = -1;
static int capture_fd = -1;

static void capture_stderr(void)
{
    char path[PATH_MAX + 32];

    ck_assert_int_eq(saved_stderr, -1);
    snprintf(path, sizeof(path), "%s/stderr.XXXXXX", tmpdir);
    fflush(stderr);
    capture_fd = mkstemp(path);
    ck_assert_int_ge(capture_fd, 0);
    unlink(path);
    saved_stderr = dup(STDERR_FILENO);
    ck_assert_int_ge(saved_stderr, 0);
    ck_assert_int_ge(dup2(capture_fd, STDERR_FILENO), 0);
}

static void restore_stderr(void)
{
    if (saved_stderr < 0)
        return;
    fflush(stderr);
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    saved_stderr = -1;
}

/* Restores stderr and returns what was written to it (caller frees). */
static char *captured_stderr(void)
{
    struct stat st;
    char *buf;
    ssize_t n;

    restore_stderr();
    ck_assert_int_ge(capture_fd, 0);
    ck_assert_int_eq(fstat(capture_fd, &st), 0);
    buf = malloc((size_t)st.st_size + 1);
    ck_assert_ptr_nonnull(buf);
    n = pread(capture_fd, buf, (size_t)st.st_size, 0);
    ck_assert_int_eq(n, st.st_size);
    buf[n] = '\0';
    close(capture_fd);
    capture_fd = -1;
    return buf;
}

static void teardown_capture(void)
{
    restore_stderr();
    if (capture_fd >= 0) {
        close(capture_fd);
        capture_fd = -1;
    }
    ERR_clear_error();
}

static void setup_clean(void)
{
    ERR_clear_error();
}

/* ---- 1. EMSGUARD_POLICY ------------------------------------------------ */

START_TEST(test_defaults)
{
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
    uint32_t v = 99;

    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(EMSGUARD_POLICY_get_dword(p, K_DSRV, &v), 1);
    ck_assert_uint_eq(v, 0);
    v = 99;
    ck_assert_int_eq(EMSGUARD_POLICY_get_dword(p, K_DCLI, &v), 1);
    ck_assert_uint_eq(v, 0);
    v = 99;
    ck_assert_int_eq(EMSGUARD_POLICY_get_dword(p, K_ALR, &v), 1);
    ck_assert_uint_eq(v, 0);
    v = 99;
    ck_assert_int_eq(EMSGUARD_POLICY_get_dword(p, K_EVL, &v), 1);
    ck_assert_uint_eq(v, EMSGUARD_LOG_ERRORS);
    expect_policy_texts(p, default_texts);
    EMSGUARD_POLICY_free(p);
}
END_TEST

struct bad_set {
    const char *name;
    const char *value;
    int reason;
    const char *data;
};

static const struct bad_set bad_sets[] = {
    /* unknown keys, with a suggestion */
    { "EventLoging", "1", EMSGUARD_R_UNKNOWN_KEY,
        "unknown key 'EventLoging' (did you mean 'EventLogging'?); " KNOWN_KEYS },
    { "disableserverextendedmastersecret", "1", EMSGUARD_R_UNKNOWN_KEY,
        "unknown key 'disableserverextendedmastersecret' (did you mean "
        "'DisableServerExtendedMasterSecret'?); " KNOWN_KEYS },
    { "DISABLECLIENTEXTENDEDMASTERSECRET", "1", EMSGUARD_R_UNKNOWN_KEY,
        "unknown key 'DISABLECLIENTEXTENDEDMASTERSECRET' (did you mean "
        "'DisableClientExtendedMasterSecret'?); " KNOWN_KEYS },
    { "eventlogging", "1", EMSGUARD_R_UNKNOWN_KEY,
        "unknown key 'eventlogging' (did you mean 'EventLogging'?); " KNOWN_KEYS },
    { "AllowLegacyResumptions", "1", EMSGUARD_R_UNKNOWN_KEY,
        "unknown key 'AllowLegacyResumptions' (did you mean "
        "'AllowLegacyResumption'?); " KNOWN_KEYS },
    { "LogTarge", "stderr", EMSGUARD_R_UNKNOWN_KEY,
        "unknown key 'LogTarge' (did you mean 'LogTarget'?); " KNOWN_KEYS },
    { "RequireExtendedMasterSecrets", "1", EMSGUARD_R_UNKNOWN_KEY,
        "unknown key 'RequireExtendedMasterSecrets' (did you mean "
        "'RequireExtendedMasterSecret'?); " KNOWN_KEYS },
    { " EventLogging", "1", EMSGUARD_R_UNKNOWN_KEY,
        "unknown key ' EventLogging' (did you mean 'EventLogging'?); " KNOWN_KEYS },
    /* unknown keys, nothing close enough to suggest */
    { "Colour", "1", EMSGUARD_R_UNKNOWN_KEY, "unknown key 'Colour'; " KNOWN_KEYS },
    { "", "1", EMSGUARD_R_UNKNOWN_KEY, "unknown key ''; " KNOWN_KEYS },
    { "DisableServerExtendedMasterSecretDisableServerExtendedMasterSecretX", "1",
        EMSGUARD_R_UNKNOWN_KEY,
        "unknown key 'DisableServerExtendedMasterSecretDisableServerExtended"
        "MasterSecretX'; " KNOWN_KEYS },
    /* empty values */
    { K_DSRV, "", EMSGUARD_R_EMPTY_VALUE,
        "key 'DisableServerExtendedMasterSecret': value '' is empty; " ACC_BOOL },
    { K_EVL, "", EMSGUARD_R_EMPTY_VALUE,
        "key 'EventLogging': value '' is empty; " ACC_LOG },
    /* not a number */
    { K_DSRV, "yes", EMSGUARD_R_BAD_VALUE,
        "key 'DisableServerExtendedMasterSecret': value 'yes' is not a number; " ACC_BOOL },
    { K_DCLI, "on", EMSGUARD_R_BAD_VALUE,
        "key 'DisableClientExtendedMasterSecret': value 'on' is not a number; " ACC_BOOL },
    { K_ALR, "true", EMSGUARD_R_BAD_VALUE,
        "key 'AllowLegacyResumption': value 'true' is not a number; " ACC_BOOL },
    { K_EVL, "-1", EMSGUARD_R_BAD_VALUE,
        "key 'EventLogging': value '-1' is not a number; " ACC_LOG },
    { K_EVL, "+1", EMSGUARD_R_BAD_VALUE,
        "key 'EventLogging': value '+1' is not a number; " ACC_LOG },
    { K_EVL, " 1", EMSGUARD_R_BAD_VALUE,
        "key 'EventLogging': value ' 1' is not a number; " ACC_LOG },
    { K_EVL, "0x", EMSGUARD_R_BAD_VALUE,
        "key 'EventLogging': value '0x' is not a number; " ACC_LOG },
    { K_EVL, "dword:", EMSGUARD_R_BAD_VALUE,
        "key 'EventLogging': value 'dword:' is not a number; " ACC_LOG },
    { K_EVL, "0xg", EMSGUARD_R_BAD_VALUE,
        "key 'EventLogging': value '0xg' is not a number; " ACC_LOG },
    { K_DSRV, "dword: 1", EMSGUARD_R_BAD_VALUE,
        "key 'DisableServerExtendedMasterSecret': value 'dword: 1' is not a number; "
        ACC_BOOL },
    /* trailing garbage */
    { K_DSRV, "1x", EMSGUARD_R_TRAILING_GARBAGE,
        "key 'DisableServerExtendedMasterSecret': value '1x' has trailing characters "
        "after the number; " ACC_BOOL },
    { K_EVL, "0x1g", EMSGUARD_R_TRAILING_GARBAGE,
        "key 'EventLogging': value '0x1g' has trailing characters after the number; "
        ACC_LOG },
    { K_DCLI, "dword:1 ", EMSGUARD_R_TRAILING_GARBAGE,
        "key 'DisableClientExtendedMasterSecret': value 'dword:1 ' has trailing "
        "characters after the number; " ACC_BOOL },
    { K_EVL, "1 ", EMSGUARD_R_TRAILING_GARBAGE,
        "key 'EventLogging': value '1 ' has trailing characters after the number; "
        ACC_LOG },
    { K_ALR, "1.0", EMSGUARD_R_TRAILING_GARBAGE,
        "key 'AllowLegacyResumption': value '1.0' has trailing characters after the "
        "number; " ACC_BOOL },
    { K_EVL, "dword:0x1", EMSGUARD_R_TRAILING_GARBAGE,
        "key 'EventLogging': value 'dword:0x1' has trailing characters after the "
        "number; " ACC_LOG },
    /* out of the key's range */
    { K_DSRV, "2", EMSGUARD_R_OUT_OF_RANGE,
        "key 'DisableServerExtendedMasterSecret': value '2' is out of range; " ACC_BOOL },
    { K_DCLI, "2", EMSGUARD_R_OUT_OF_RANGE,
        "key 'DisableClientExtendedMasterSecret': value '2' is out of range; " ACC_BOOL },
    { "RequireExtendedMasterSecret", "2", EMSGUARD_R_OUT_OF_RANGE,
        "key 'RequireExtendedMasterSecret': value '2' is out of range; " ACC_BOOL },
    { "RequireExtendedMasterSecret", "yes", EMSGUARD_R_BAD_VALUE,
        "key 'RequireExtendedMasterSecret': value 'yes' is not a number; " ACC_BOOL },
    { K_ALR, "0x2", EMSGUARD_R_OUT_OF_RANGE,
        "key 'AllowLegacyResumption': value '0x2' is out of range; " ACC_BOOL },
    { K_DSRV, "0xFFFFFFFF", EMSGUARD_R_OUT_OF_RANGE,
        "key 'DisableServerExtendedMasterSecret': value '0xFFFFFFFF' is out of range; "
        ACC_BOOL },
    { K_EVL, "8", EMSGUARD_R_OUT_OF_RANGE,
        "key 'EventLogging': value '8' is out of range; " ACC_LOG },
    { K_EVL, "dword:00000008", EMSGUARD_R_OUT_OF_RANGE,
        "key 'EventLogging': value 'dword:00000008' is out of range; " ACC_LOG },
    { K_EVL, "0xa", EMSGUARD_R_OUT_OF_RANGE,
        "key 'EventLogging': value '0xa' is out of range; " ACC_LOG },
    { K_EVL, "4294967295", EMSGUARD_R_OUT_OF_RANGE,
        "key 'EventLogging': value '4294967295' is out of range; " ACC_LOG },
    /* does not fit in a DWORD at all */
    { K_EVL, "4294967296", EMSGUARD_R_OUT_OF_RANGE,
        "key 'EventLogging': value '4294967296' does not fit in a DWORD; " ACC_LOG },
    { K_DSRV, "99999999999999999999999", EMSGUARD_R_OUT_OF_RANGE,
        "key 'DisableServerExtendedMasterSecret': value '99999999999999999999999' "
        "does not fit in a DWORD; " ACC_BOOL },
    { K_EVL, "dword:123456789", EMSGUARD_R_OUT_OF_RANGE,
        "key 'EventLogging': value 'dword:123456789' does not fit in a DWORD; " ACC_LOG },
    { K_EVL, "0x100000000", EMSGUARD_R_OUT_OF_RANGE,
        "key 'EventLogging': value '0x100000000' does not fit in a DWORD; " ACC_LOG },
    /* LogTarget */
    { K_TGT, "file", EMSGUARD_R_BAD_VALUE,
        "key 'LogTarget': value 'file' is not accepted; " ACC_TARGET },
    { K_TGT, "", EMSGUARD_R_EMPTY_VALUE,
        "key 'LogTarget': value '' is not accepted; " ACC_TARGET },
    { K_TGT, "Syslog", EMSGUARD_R_BAD_VALUE,
        "key 'LogTarget': value 'Syslog' is not accepted; " ACC_TARGET },
    { K_TGT, "stderr ", EMSGUARD_R_BAD_VALUE,
        "key 'LogTarget': value 'stderr ' is not accepted; " ACC_TARGET },
    { K_TGT, "1", EMSGUARD_R_BAD_VALUE,
        "key 'LogTarget': value '1' is not accepted; " ACC_TARGET },
};

/* A policy with every value away from its default, so "unchanged" means it. */
static EMSGUARD_POLICY *non_default_policy(void)
{
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();

    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(EMSGUARD_POLICY_set(p, K_DSRV, "1"), 1);
    ck_assert_int_eq(EMSGUARD_POLICY_set(p, K_DCLI, "1"), 1);
    ck_assert_int_eq(EMSGUARD_POLICY_set(p, K_ALR, "1"), 1);
    ck_assert_int_eq(EMSGUARD_POLICY_set(p, K_EVL, "6"), 1);
    ck_assert_int_eq(EMSGUARD_POLICY_set(p, K_TGT, "syslog"), 1);
    expect_no_error();
    return p;
}

static const char *const non_default_texts[NKEYS] = { "1", "1", "1", "6", "syslog" };

START_TEST(test_set_bad_input)
{
    const struct bad_set *b = &bad_sets[_i];
    EMSGUARD_POLICY *p = non_default_policy();

    ck_assert_msg(EMSGUARD_POLICY_set(p, b->name, b->value) == 0,
        "EMSGUARD_POLICY_set(\"%s\", \"%s\") was accepted", b->name, b->value);
    expect_one_error(b->reason, b->data);
    /* On error the policy is unchanged. */
    expect_policy_texts(p, non_default_texts);
    EMSGUARD_POLICY_free(p);
}
END_TEST

struct good_set {
    const char *name;
    const char *value;
    uint32_t dword; /* for DWORD keys */
    const char *text;
};

static const struct good_set good_sets[] = {
    { K_DSRV, "0", 0, "0" },
    { K_DSRV, "1", 1, "1" },
    { K_DCLI, "1", 1, "1" },
    { K_ALR, "1", 1, "1" },
    { K_DSRV, "0x1", 1, "1" },
    { K_DCLI, "0X01", 1, "1" },
    { K_ALR, "dword:00000001", 1, "1" },
    /* the dword: prefix is case-insensitive (strncasecmp in policy.c) */
    { K_EVL, "DWORD:00000007", 7, "7" },
    { K_EVL, "Dword:7", 7, "7" },
    { K_EVL, "0x00000007", 7, "7" },
    { K_EVL, "007", 7, "7" },
    { K_EVL, "0", 0, "0" },
    { K_EVL, "00000000000000000003", 3, "3" },
    { K_TGT, "syslog", 0, "syslog" },
    { K_TGT, "stderr", 0, "stderr" },
};

START_TEST(test_set_good_input)
{
    const struct good_set *g = &good_sets[_i];
    EMSGUARD_POLICY *p;
    char buf[32];
    uint32_t v = 12345;

    p = EMSGUARD_POLICY_new();
    ck_assert_ptr_nonnull(p);
    /* Start from the opposite value where there is one, so a no-op fails. */
    if (strcmp(g->name, K_TGT) == 0)
        ck_assert_int_eq(EMSGUARD_POLICY_set(p, K_TGT,
                             strcmp(g->value, "syslog") == 0 ? "stderr" : "syslog"), 1);
    else
        ck_assert_int_eq(EMSGUARD_POLICY_set_dword(p, g->name, g->dword == 0 ? 1 : 0), 1);
    ck_assert_msg(EMSGUARD_POLICY_set(p, g->name, g->value) == 1,
        "EMSGUARD_POLICY_set(\"%s\", \"%s\") rejected", g->name, g->value);
    expect_no_error();
    if (strcmp(g->name, K_TGT) != 0) {
        ck_assert_int_eq(EMSGUARD_POLICY_get_dword(p, g->name, &v), 1);
        ck_assert_uint_eq(v, g->dword);
    }
    ck_assert_int_eq(EMSGUARD_POLICY_get_text(p, g->name, buf, sizeof(buf)), 1);
    ck_assert_str_eq(buf, g->text);
    expect_no_error();
    EMSGUARD_POLICY_free(p);
}
END_TEST

START_TEST(test_set_leaves_other_keys)
{
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
    static const char *const want[NKEYS] = { "0", "0", "0", "5", "stderr" };

    ck_assert_int_eq(EMSGUARD_POLICY_set(p, K_EVL, "0x5"), 1);
    expect_policy_texts(p, want);
    /* a failed set after a good one keeps the good value */
    ck_assert_int_eq(EMSGUARD_POLICY_set(p, K_EVL, "8"), 0);
    expect_one_error(EMSGUARD_R_OUT_OF_RANGE,
        "key 'EventLogging': value '8' is out of range; " ACC_LOG);
    expect_policy_texts(p, want);
    EMSGUARD_POLICY_free(p);
}
END_TEST

START_TEST(test_dup)
{
    EMSGUARD_POLICY *p = non_default_policy();
    EMSGUARD_POLICY *d = EMSGUARD_POLICY_dup(p);

    ck_assert_ptr_nonnull(d);
    expect_policy_texts(d, non_default_texts);
    /* independent copies */
    ck_assert_int_eq(EMSGUARD_POLICY_set(d, K_EVL, "0"), 1);
    expect_policy_texts(p, non_default_texts);
    EMSGUARD_POLICY_free(d);
    EMSGUARD_POLICY_free(p);
}
END_TEST

START_TEST(test_set_dword)
{
    EMSGUARD_POLICY *p = non_default_policy();
    uint32_t v = 99;

    ck_assert_int_eq(EMSGUARD_POLICY_set_dword(p, K_DSRV, 0), 1);
    ck_assert_int_eq(EMSGUARD_POLICY_get_dword(p, K_DSRV, &v), 1);
    ck_assert_uint_eq(v, 0);
    ck_assert_int_eq(EMSGUARD_POLICY_set_dword(p, K_DSRV, 1), 1);
    ck_assert_int_eq(EMSGUARD_POLICY_set_dword(p, K_EVL, 7), 1);
    ck_assert_int_eq(EMSGUARD_POLICY_get_dword(p, K_EVL, &v), 1);
    ck_assert_uint_eq(v, 7);
    ck_assert_int_eq(EMSGUARD_POLICY_set_dword(p, K_EVL, 6), 1);
    expect_policy_texts(p, non_default_texts);

    ck_assert_int_eq(EMSGUARD_POLICY_set_dword(p, K_DSRV, 2), 0);
    expect_one_error(EMSGUARD_R_OUT_OF_RANGE,
        "key 'DisableServerExtendedMasterSecret': value '2' is out of range; "
        "accepted: 0 or 1");
    ck_assert_int_eq(EMSGUARD_POLICY_set_dword(p, K_DCLI, 2), 0);
    expect_one_error(EMSGUARD_R_OUT_OF_RANGE,
        "key 'DisableClientExtendedMasterSecret': value '2' is out of range; "
        "accepted: 0 or 1");
    ck_assert_int_eq(EMSGUARD_POLICY_set_dword(p, K_ALR, UINT32_MAX), 0);
    expect_one_error(EMSGUARD_R_OUT_OF_RANGE,
        "key 'AllowLegacyResumption': value '4294967295' is out of range; "
        "accepted: 0 or 1");
    ck_assert_int_eq(EMSGUARD_POLICY_set_dword(p, K_EVL, 8), 0);
    expect_one_error(EMSGUARD_R_OUT_OF_RANGE,
        "key 'EventLogging': value '8' is out of range; accepted: 0 to 7 "
        "(bitmask: 1 errors, 2 warnings, 4 informational)");
    ck_assert_int_eq(EMSGUARD_POLICY_set_dword(p, K_TGT, 1), 0);
    expect_one_error(EMSGUARD_R_INVALID_ARGUMENT,
        "key 'LogTarget' is not a DWORD; use EMSGUARD_POLICY_set() with stderr or syslog");
    ck_assert_int_eq(EMSGUARD_POLICY_set_dword(p, K_TGT, 0), 0);
    expect_one_error(EMSGUARD_R_INVALID_ARGUMENT,
        "key 'LogTarget' is not a DWORD; use EMSGUARD_POLICY_set() with stderr or syslog");
    ck_assert_int_eq(EMSGUARD_POLICY_set_dword(p, "EventLoging", 1), 0);
    expect_one_error(EMSGUARD_R_UNKNOWN_KEY,
        "unknown key 'EventLoging' (did you mean 'EventLogging'?); " KNOWN_KEYS);
    ck_assert_int_eq(EMSGUARD_POLICY_set_dword(p, "Colour", 1), 0);
    expect_one_error(EMSGUARD_R_UNKNOWN_KEY, "unknown key 'Colour'; " KNOWN_KEYS);
    /* nothing changed by the failures */
    expect_policy_texts(p, non_default_texts);
    EMSGUARD_POLICY_free(p);
}
END_TEST

START_TEST(test_get_dword_errors)
{
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
    uint32_t v = 42;

    ck_assert_int_eq(EMSGUARD_POLICY_get_dword(p, K_TGT, &v), 0);
    expect_one_error(EMSGUARD_R_INVALID_ARGUMENT,
        "key 'LogTarget' is not a DWORD; use EMSGUARD_POLICY_get_text()");
    ck_assert_uint_eq(v, 42);
    ck_assert_int_eq(EMSGUARD_POLICY_get_dword(p, "EventLoging", &v), 0);
    expect_one_error(EMSGUARD_R_UNKNOWN_KEY,
        "unknown key 'EventLoging' (did you mean 'EventLogging'?); " KNOWN_KEYS);
    ck_assert_int_eq(EMSGUARD_POLICY_get_dword(p, "Colour", &v), 0);
    expect_one_error(EMSGUARD_R_UNKNOWN_KEY, "unknown key 'Colour'; " KNOWN_KEYS);
    ck_assert_uint_eq(v, 42);
    EMSGUARD_POLICY_free(p);
}
END_TEST

START_TEST(test_get_text_buffers)
{
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
    char buf[16];

    /* exactly big enough */
    ck_assert_int_eq(EMSGUARD_POLICY_get_text(p, K_TGT, buf, 7), 1);
    ck_assert_str_eq(buf, "stderr");
    ck_assert_int_eq(EMSGUARD_POLICY_get_text(p, K_EVL, buf, 2), 1);
    ck_assert_str_eq(buf, "1");
    expect_no_error();
    /* one byte short */
    ck_assert_int_eq(EMSGUARD_POLICY_get_text(p, K_TGT, buf, 6), 0);
    expect_one_error(EMSGUARD_R_INVALID_ARGUMENT, "EMSGUARD_POLICY_get_text: buffer too small");
    ck_assert_int_eq(EMSGUARD_POLICY_get_text(p, K_EVL, buf, 1), 0);
    expect_one_error(EMSGUARD_R_INVALID_ARGUMENT, "EMSGUARD_POLICY_get_text: buffer too small");
    ck_assert_int_eq(EMSGUARD_POLICY_set(p, K_TGT, "syslog"), 1);
    ck_assert_int_eq(EMSGUARD_POLICY_get_text(p, K_TGT, buf, 6), 0);
    expect_one_error(EMSGUARD_R_INVALID_ARGUMENT, "EMSGUARD_POLICY_get_text: buffer too small");
    ck_assert_int_eq(EMSGUARD_POLICY_get_text(p, K_TGT, buf, 7), 1);
    ck_assert_str_eq(buf, "syslog");
    /* no buffer */
    ck_assert_int_eq(EMSGUARD_POLICY_get_text(p, K_EVL, buf, 0), 0);
    expect_one_error(EMSGUARD_R_INVALID_ARGUMENT, "EMSGUARD_POLICY_get_text: no buffer");
    ck_assert_int_eq(EMSGUARD_POLICY_get_text(p, K_EVL, NULL, 16), 0);
    expect_one_error(EMSGUARD_R_INVALID_ARGUMENT, "EMSGUARD_POLICY_get_text: no buffer");
    /* unknown key */
    ck_assert_int_eq(EMSGUARD_POLICY_get_text(p, "LogTarge", buf, sizeof(buf)), 0);
    expect_one_error(EMSGUARD_R_UNKNOWN_KEY,
        "unknown key 'LogTarge' (did you mean 'LogTarget'?); " KNOWN_KEYS);
    EMSGUARD_POLICY_free(p);
}
END_TEST

START_TEST(test_null_arguments)
{
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    uint32_t v = 0;
    char buf[16];
    int found = 7;

    ck_assert_ptr_nonnull(ctx);
    ERR_clear_error();
    ck_assert_int_eq(EMSGUARD_POLICY_set(NULL, K_EVL, "1"), 0);
    expect_one_error(EMSGUARD_R_INVALID_ARGUMENT, "EMSGUARD_POLICY_set: policy or name is NULL");
    ck_assert_int_eq(EMSGUARD_POLICY_set(p, NULL, "1"), 0);
    expect_one_error(EMSGUARD_R_INVALID_ARGUMENT, "EMSGUARD_POLICY_set: policy or name is NULL");
    ck_assert_int_eq(EMSGUARD_POLICY_set(p, K_EVL, NULL), 0);
    expect_one_error(EMSGUARD_R_INVALID_ARGUMENT,
        "EMSGUARD_POLICY_set: value for 'EventLogging' is NULL");
    ck_assert_int_eq(EMSGUARD_POLICY_set_dword(NULL, K_EVL, 1), 0);
    expect_one_error(EMSGUARD_R_INVALID_ARGUMENT,
        "EMSGUARD_POLICY_set_dword: policy or name is NULL");
    ck_assert_int_eq(EMSGUARD_POLICY_set_dword(p, NULL, 1), 0);
    expect_one_error(EMSGUARD_R_INVALID_ARGUMENT,
        "EMSGUARD_POLICY_set_dword: policy or name is NULL");
    ck_assert_int_eq(EMSGUARD_POLICY_get_dword(NULL, K_EVL, &v), 0);
    expect_one_error(EMSGUARD_R_INVALID_ARGUMENT,
        "EMSGUARD_POLICY_get_dword: policy or name is NULL");
    ck_assert_int_eq(EMSGUARD_POLICY_get_dword(p, NULL, &v), 0);
    expect_one_error(EMSGUARD_R_INVALID_ARGUMENT,
        "EMSGUARD_POLICY_get_dword: policy or name is NULL");
    ck_assert_int_eq(EMSGUARD_POLICY_get_dword(p, K_EVL, NULL), 0);
    expect_one_error(EMSGUARD_R_INVALID_ARGUMENT, "EMSGUARD_POLICY_get_dword: value is NULL");
    ck_assert_int_eq(EMSGUARD_POLICY_get_text(NULL, K_EVL, buf, sizeof(buf)), 0);
    expect_one_error(EMSGUARD_R_INVALID_ARGUMENT,
        "EMSGUARD_POLICY_get_text: policy or name is NULL");
    ck_assert_int_eq(EMSGUARD_POLICY_get_text(p, NULL, buf, sizeof(buf)), 0);
    expect_one_error(EMSGUARD_R_INVALID_ARGUMENT,
        "EMSGUARD_POLICY_get_text: policy or name is NULL");
    ck_assert_ptr_null(EMSGUARD_POLICY_dup(NULL));
    expect_one_error(EMSGUARD_R_INVALID_ARGUMENT, "EMSGUARD_POLICY_dup: policy is NULL");
    ck_assert_int_eq(EMSGUARD_POLICY_from_provider(NULL, NULL, &found), 0);
    expect_one_error(EMSGUARD_R_INVALID_ARGUMENT,
        "EMSGUARD_POLICY_from_provider: policy or found is NULL");
    ck_assert_int_eq(EMSGUARD_POLICY_from_provider(p, NULL, NULL), 0);
    expect_one_error(EMSGUARD_R_INVALID_ARGUMENT,
        "EMSGUARD_POLICY_from_provider: policy or found is NULL");
    ck_assert_int_eq(found, 7);
    ck_assert_int_eq(EMSGUARD_enable_policy(NULL, p), 0);
    expect_one_error(EMSGUARD_R_INVALID_ARGUMENT, "EMSGUARD_enable: ctx or policy is NULL");
    ck_assert_int_eq(EMSGUARD_enable_policy(ctx, NULL), 0);
    expect_one_error(EMSGUARD_R_INVALID_ARGUMENT, "EMSGUARD_enable: ctx or policy is NULL");
    ck_assert_int_eq(EMSGUARD_CTX_is_enabled(ctx), 0);
    ck_assert_int_eq(EMSGUARD_CTX_is_enabled(NULL), 0);
    EMSGUARD_POLICY_free(NULL); /* accepted */
    /* the policy survived all of that untouched */
    expect_policy_texts(p, default_texts);
    SSL_CTX_free(ctx);
    EMSGUARD_POLICY_free(p);
}
END_TEST

/* ---- 3. EMSGUARD_SESSION_has_ems arguments ----------------------------- */

START_TEST(test_session_has_ems_null)
{
    SSL_SESSION *sess = SSL_SESSION_new();
    int has = 5;

    ck_assert_ptr_nonnull(sess);
    ck_assert_int_eq(EMSGUARD_SESSION_has_ems(NULL, &has), 0);
    expect_one_error(EMSGUARD_R_INVALID_ARGUMENT,
        "EMSGUARD_SESSION_has_ems: session or result pointer is NULL");
    ck_assert_int_eq(has, 5);
    ck_assert_int_eq(EMSGUARD_SESSION_has_ems(sess, NULL), 0);
    expect_one_error(EMSGUARD_R_INVALID_ARGUMENT,
        "EMSGUARD_SESSION_has_ems: session or result pointer is NULL");
    ck_assert_int_eq(EMSGUARD_SESSION_has_ems(NULL, NULL), 0);
    expect_one_error(EMSGUARD_R_INVALID_ARGUMENT,
        "EMSGUARD_SESSION_has_ems: session or result pointer is NULL");
    SSL_SESSION_free(sess);
}
END_TEST

/* ---- EMSGUARD_POLICY_print ----------------------------------------------- */

/* The report of |p| with |flags|, NUL-terminated (caller frees). */
static char *report_of(const EMSGUARD_POLICY *p, unsigned int flags)
{
    BIO *mem = BIO_new(BIO_s_mem());
    char *data = NULL, *copy;
    long len;

    ck_assert_ptr_nonnull(mem);
    ck_assert_int_eq(EMSGUARD_POLICY_print(mem, p, flags), 1);
    len = BIO_get_mem_data(mem, &data);
    copy = OPENSSL_strndup(data, (size_t)len);
    ck_assert_ptr_nonnull(copy);
    BIO_free(mem);
    return copy;
}

START_TEST(test_policy_print)
{
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
    BIO *mem = BIO_new(BIO_s_mem());
    char *text, *json;

    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(EMSGUARD_POLICY_set(p, "AllowLegacyResumption", "1"), 1);
    ck_assert_int_eq(EMSGUARD_POLICY_set(p, "Protocols.TLS_1.3.Server.Enabled", "0"), 1);
    text = report_of(p, 0);
    ck_assert_ptr_nonnull(strstr(text, "  AllowLegacyResumption = 1\n      [API (EMSGUARD_POLICY_set)]\n"
                                       "      -> sessions without EMS are cached and resumed (stock OpenSSL)\n"));
    ck_assert_ptr_nonnull(strstr(text, "  RequireExtendedMasterSecret = 0\n      [built-in default]\n"));
    ck_assert_ptr_nonnull(strstr(text, "OpenSSL settings, server role:\n"
                                       "    Options           ExtendedMasterSecret\n"
                                       "    MinProtocol       TLSv1\n"
                                       "    MaxProtocol       TLSv1.2\n"));
    ck_assert_ptr_nonnull(strstr(text, "Warnings: none\n"));
    json = report_of(p, EMSGUARD_PRINT_JSON);
    ck_assert_ptr_nonnull(strstr(json, "{\"key\": \"AllowLegacyResumption\", \"conf_key\": "
                                       "\"AllowLegacyResumption\", \"value\": \"1\", \"source\": "
                                       "{\"kind\": \"api\"}"));
    ck_assert_ptr_nonnull(strstr(json, "\"key\": \"Protocols\\\\SSL 3.0\\\\Server\\\\Enabled\", "
                                       "\"conf_key\": \"Protocols.SSL_3.0.Server.Enabled\", \"value\": null"));
    OPENSSL_free(text);
    OPENSSL_free(json);
    {
        /* NULL BIO, NULL policy, unknown flag: each fails the same way. */
        const struct {
            BIO *out;
            const EMSGUARD_POLICY *policy;
            unsigned int flags;
        } bad[] = { { NULL, p, 0 }, { mem, NULL, 0 }, { mem, p, 0x80 } };
        size_t i;

        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            ck_assert_int_eq(EMSGUARD_POLICY_print(bad[i].out, bad[i].policy, bad[i].flags), 0);
            expect_one_error(EMSGUARD_R_INVALID_ARGUMENT,
                "EMSGUARD_POLICY_print: NULL BIO or policy, or unknown flags");
        }
    }
    BIO_free(mem);
    EMSGUARD_POLICY_free(p);
}
END_TEST

/* ---- 2. the provider through openssl.cnf ------------------------------- */

/* Path of a config file named |tag| in the temp dir (caller frees). */
static char *conf_path(const char *tag)
{
    return xasprintf("%s/%s.cnf", tmpdir, tag);
}

/*
 * Writes a configuration that activates the default provider and configures
 * emsguard (named |prov_name| in [provider_sect]) in [emsguard_sect], with an
 * "activate = 1" line when |activate|, followed by |body| (policy lines).
 */
static char *write_conf(const char *tag, const char *prov_name, int activate,
    const char *body)
{
    char *path = conf_path(tag);
    FILE *f = fopen(path, "w");

    ck_assert_msg(access(module_path, R_OK) == 0, "provider module %s: %s", module_path,
        strerror(errno));
    ck_assert_msg(f != NULL, "cannot write %s: %s", path, strerror(errno));
    fprintf(f,
        "openssl_conf = openssl_init\n"
        "[openssl_init]\n"
        "providers = provider_sect\n"
        "[provider_sect]\n"
        "default = default_sect\n"
        "%s = " SECTION "\n"
        "[default_sect]\n"
        "activate = 1\n"
        "[" SECTION "]\n"
        "module = %s\n"
        "%s"
        "%s\n",
        prov_name, module_path, activate ? "activate = 1\n" : "", body);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

/*
 * Points OPENSSL_CONF at |file| (conf_check.c re-reads the default config
 * file) and loads it into a fresh library context.  *ret gets the result of
 * OSSL_LIB_CTX_load_config(), *err what was written to stderr meanwhile.
 */
static OSSL_LIB_CTX *load_conf(const char *file, int *ret, char **err)
{
    OSSL_LIB_CTX *libctx;

    ck_assert_int_eq(setenv("OPENSSL_CONF", file, 1), 0);
    libctx = OSSL_LIB_CTX_new();
    ck_assert_ptr_nonnull(libctx);
    capture_stderr();
    *ret = OSSL_LIB_CTX_load_config(libctx, file);
    *err = captured_stderr();
    return libctx;
}

struct prov_search {
    const char *name;
    OSSL_PROVIDER *prov;
};

static int find_prov_cb(OSSL_PROVIDER *prov, void *arg)
{
    struct prov_search *s = arg;

    if (strcmp(OSSL_PROVIDER_get0_name(prov), s->name) == 0) {
        s->prov = prov;
        return 0;
    }
    return 1;
}

static OSSL_PROVIDER *find_provider(OSSL_LIB_CTX *libctx, const char *name)
{
    struct prov_search s = { name, NULL };

    OSSL_PROVIDER_do_all(libctx, find_prov_cb, &s);
    return s.prov;
}

/* Reads the policy the provider in |libctx| carries; asserts it is found. */
static void expect_provider_policy(OSSL_LIB_CTX *libctx, const char *const *want)
{
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
    int found = -1;

    ck_assert_int_eq(EMSGUARD_POLICY_from_provider(p, libctx, &found), 1);
    ck_assert_int_eq(found, 1);
    expect_no_error();
    expect_policy_texts(p, want);
    EMSGUARD_POLICY_free(p);
}

/* Asserts that |libctx| has no emsguard provider: found=0, policy untouched. */
static void expect_no_provider_policy(OSSL_LIB_CTX *libctx)
{
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
    EMSGUARD_POLICY *q = non_default_policy();
    int found = -1;

    ck_assert_int_eq(EMSGUARD_POLICY_from_provider(p, libctx, &found), 1);
    ck_assert_int_eq(found, 0);
    expect_policy_texts(p, default_texts);
    found = -1;
    ck_assert_int_eq(EMSGUARD_POLICY_from_provider(q, libctx, &found), 1);
    ck_assert_int_eq(found, 0);
    expect_policy_texts(q, non_default_texts);
    expect_no_error();
    EMSGUARD_POLICY_free(q);
    EMSGUARD_POLICY_free(p);
}

#define WEAK_SERVER_LOG                                                      \
    "emsguard: error: provider emsguard: DisableServerExtendedMasterSecret=1: " \
    "the server role neither offers nor accepts Extended Master Secret\n"

/* File A: the example of the brief, plus explicit values in every form. */
#define BODY_A                                      \
    "DisableServerExtendedMasterSecret = 1\n"       \
    "DisableClientExtendedMasterSecret = dword:00000000\n" \
    "AllowLegacyResumption = 0\n"                   \
    "EventLogging = 0x7\n"                          \
    "LogTarget = stderr"
static const char *const texts_a[NKEYS] = { "1", "0", "0", "7", "stderr" };

START_TEST(test_conf_valid_loads)
{
    char *file = write_conf("valid-a", "emsguard", 1, BODY_A);
    char *err;
    int ret;
    OSSL_LIB_CTX *libctx = load_conf(file, &ret, &err);

    ck_assert_int_eq(ret, 1);
    expect_no_error();
    ck_assert_int_eq(OSSL_PROVIDER_available(libctx, "emsguard"), 1);
    ck_assert_int_eq(OSSL_PROVIDER_available(libctx, "default"), 1);
    /* the one weakening value is logged once, at load */
    ck_assert_str_eq(err, WEAK_SERVER_LOG);
    expect_provider_policy(libctx, texts_a);
    free(err);
    OSSL_LIB_CTX_free(libctx);
    free(file);
}
END_TEST

START_TEST(test_conf_valid_other_values)
{
    /* every key away from its default, in several notations; silent */
    char *file = write_conf("valid-b", "emsguard", 1,
        "DisableServerExtendedMasterSecret = 0X0\n"
        "DisableClientExtendedMasterSecret = DWORD:00000001\n"
        "AllowLegacyResumption = 0x1\n"
        "EventLogging = 0\n"
        "LogTarget = syslog");
    static const char *const want[NKEYS] = { "0", "1", "1", "0", "syslog" };
    char *err;
    int ret;
    OSSL_LIB_CTX *libctx = load_conf(file, &ret, &err);

    ck_assert_int_eq(ret, 1);
    ck_assert_int_eq(OSSL_PROVIDER_available(libctx, "emsguard"), 1);
    ck_assert_str_eq(err, ""); /* EventLogging = 0: nothing logged */
    expect_provider_policy(libctx, want);
    free(err);
    OSSL_LIB_CTX_free(libctx);
    free(file);
}
END_TEST

START_TEST(test_conf_valid_no_keys)
{
    char *file = write_conf("valid-empty", "emsguard", 1, "");
    char *err;
    int ret;
    OSSL_LIB_CTX *libctx = load_conf(file, &ret, &err);

    ck_assert_int_eq(ret, 1);
    ck_assert_int_eq(OSSL_PROVIDER_available(libctx, "emsguard"), 1);
    ck_assert_str_eq(err, "");
    expect_provider_policy(libctx, default_texts);
    free(err);
    OSSL_LIB_CTX_free(libctx);
    free(file);
}
END_TEST

START_TEST(test_conf_renamed_provider)
{
    /* found by its parameters, not by the name it has in [provider_sect] */
    char *file = write_conf("valid-renamed", "guard", 1, "EventLogging = 3");
    static const char *const want[NKEYS] = { "0", "0", "0", "3", "stderr" };
    char *err;
    int ret;
    OSSL_LIB_CTX *libctx = load_conf(file, &ret, &err);

    ck_assert_int_eq(ret, 1);
    ck_assert_int_eq(OSSL_PROVIDER_available(libctx, "guard"), 1);
    ck_assert_str_eq(err, "");
    expect_provider_policy(libctx, want);
    free(err);
    OSSL_LIB_CTX_free(libctx);
    free(file);
}
END_TEST

START_TEST(test_conf_provider_params)
{
    char *file = write_conf("params", "emsguard", 1, BODY_A);
    char *err;
    int ret, status = -1;
    OSSL_LIB_CTX *libctx = load_conf(file, &ret, &err);
    OSSL_PROVIDER *prov;
    const char *name = NULL, *version = NULL, *buildinfo = NULL;
    char vals[NKEYS][32];
    OSSL_PARAM req[NKEYS + 5];
    const OSSL_PARAM *gettable;
    size_t i, n = 0;

    ck_assert_int_eq(ret, 1);
    ck_assert_str_eq(err, WEAK_SERVER_LOG);
    prov = find_provider(libctx, "emsguard");
    ck_assert_ptr_nonnull(prov);
    memset(vals, 0, sizeof(vals));
    req[n++] = OSSL_PARAM_construct_utf8_ptr(OSSL_PROV_PARAM_NAME, (char **)&name, 0);
    req[n++] = OSSL_PARAM_construct_utf8_ptr(OSSL_PROV_PARAM_VERSION, (char **)&version, 0);
    req[n++] = OSSL_PARAM_construct_utf8_ptr(OSSL_PROV_PARAM_BUILDINFO,
        (char **)&buildinfo, 0);
    req[n++] = OSSL_PARAM_construct_int(OSSL_PROV_PARAM_STATUS, &status);
    for (i = 0; i < NKEYS; i++)
        req[n++] = OSSL_PARAM_construct_utf8_string((char *)all_keys[i], vals[i],
            sizeof(vals[i]));
    req[n] = OSSL_PARAM_construct_end();
    ck_assert_int_eq(OSSL_PROVIDER_get_params(prov, req), 1);
    ck_assert_ptr_nonnull(name);
    ck_assert_str_eq(name, "emsguard");
    ck_assert_ptr_nonnull(version);
    ck_assert_str_eq(version, EMSGUARD_VERSION_STR);
    ck_assert_ptr_nonnull(buildinfo);
    ck_assert_str_eq(buildinfo,
        "emsguard " EMSGUARD_VERSION_STR " built with " OPENSSL_VERSION_TEXT);
    ck_assert_int_eq(status, 1);
    for (i = 0; i < NKEYS; i++) {
        ck_assert_msg(OSSL_PARAM_modified(&req[4 + i]), "%s not reported", all_keys[i]);
        ck_assert_msg(strcmp(vals[i], texts_a[i]) == 0, "param %s is '%s', expected '%s'",
            all_keys[i], vals[i], texts_a[i]);
    }
    /* every policy key is declared gettable */
    gettable = OSSL_PROVIDER_gettable_params(prov);
    ck_assert_ptr_nonnull(gettable);
    for (i = 0; i < NKEYS; i++) {
        const OSSL_PARAM *g = OSSL_PARAM_locate_const(gettable, all_keys[i]);

        ck_assert_msg(g != NULL, "%s not gettable", all_keys[i]);
        ck_assert_int_eq(g->data_type, OSSL_PARAM_UTF8_STRING);
    }
    ck_assert_ptr_nonnull(OSSL_PARAM_locate_const(gettable, OSSL_PROV_PARAM_NAME));
    ck_assert_ptr_nonnull(OSSL_PARAM_locate_const(gettable, OSSL_PROV_PARAM_VERSION));
    expect_no_error();
    free(err);
    OSSL_LIB_CTX_free(libctx);
    free(file);
}
END_TEST

START_TEST(test_conf_enable_ex)
{
    char *file = write_conf("enable-ex", "emsguard", 1, BODY_A);
    char *err;
    int ret;
    OSSL_LIB_CTX *libctx = load_conf(file, &ret, &err);
    SSL_CTX *ctx;
    EMSGUARD_POLICY *same = EMSGUARD_POLICY_new();
    EMSGUARD_POLICY *defaults = EMSGUARD_POLICY_new();
    EMSGUARD_POLICY *other;

    ck_assert_int_eq(ret, 1);
    free(err);
    ck_assert_int_eq(EMSGUARD_POLICY_set(same, K_DSRV, "1"), 1);
    ck_assert_int_eq(EMSGUARD_POLICY_set(same, K_EVL, "7"), 1);
    other = EMSGUARD_POLICY_dup(same);
    ck_assert_int_eq(EMSGUARD_POLICY_set(other, K_EVL, "3"), 1);

    ctx = SSL_CTX_new_ex(libctx, NULL, TLS_method());
    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(EMSGUARD_CTX_is_enabled(ctx), 0);
    capture_stderr();
    ret = EMSGUARD_enable_ex(ctx, libctx);
    err = captured_stderr();
    ck_assert_int_eq(ret, 1);
    expect_no_error();
    ck_assert_int_eq(EMSGUARD_CTX_is_enabled(ctx), 1);
    ck_assert_str_eq(err,
        "emsguard: error: SSL_CTX policy: DisableServerExtendedMasterSecret=1: "
        "the server role neither offers nor accepts Extended Master Secret\n");
    free(err);

    /* the same values again: a no-op success */
    ck_assert_int_eq(EMSGUARD_enable_policy(ctx, same), 1);
    expect_no_error();
    ck_assert_int_eq(EMSGUARD_enable_ex(ctx, libctx), 1);
    expect_no_error();
    /* different values (the defaults, or another EventLogging) are refused */
    ck_assert_int_eq(EMSGUARD_enable_policy(ctx, defaults), 0);
    expect_one_error(EMSGUARD_R_ALREADY_ENABLED,
        "this SSL_CTX already has an emsguard policy with other values");
    ck_assert_int_eq(EMSGUARD_enable_policy(ctx, other), 0);
    expect_one_error(EMSGUARD_R_ALREADY_ENABLED,
        "this SSL_CTX already has an emsguard policy with other values");
    ck_assert_int_eq(EMSGUARD_CTX_is_enabled(ctx), 1);

    SSL_CTX_free(ctx);
    EMSGUARD_POLICY_free(other);
    EMSGUARD_POLICY_free(defaults);
    EMSGUARD_POLICY_free(same);
    OSSL_LIB_CTX_free(libctx);
    free(file);
}
END_TEST

START_TEST(test_no_provider_libctx)
{
    OSSL_LIB_CTX *libctx = OSSL_LIB_CTX_new();
    EMSGUARD_POLICY *defaults = EMSGUARD_POLICY_new();
    EMSGUARD_POLICY *other = non_default_policy();
    SSL_CTX *ctx;

    ck_assert_ptr_nonnull(libctx);
    expect_no_provider_policy(libctx);
    ck_assert_int_eq(OSSL_PROVIDER_available(libctx, "emsguard"), 0);

    /* EMSGUARD_enable_ex() then applies the built-in defaults */
    ctx = SSL_CTX_new_ex(libctx, NULL, TLS_method());
    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(EMSGUARD_enable_ex(ctx, libctx), 1);
    expect_no_error();
    ck_assert_int_eq(EMSGUARD_enable_policy(ctx, defaults), 1);
    expect_no_error();
    ck_assert_int_eq(EMSGUARD_enable_policy(ctx, other), 0);
    expect_one_error(EMSGUARD_R_ALREADY_ENABLED,
        "this SSL_CTX already has an emsguard policy with other values");
    SSL_CTX_free(ctx);
    EMSGUARD_POLICY_free(other);
    EMSGUARD_POLICY_free(defaults);
    OSSL_LIB_CTX_free(libctx);
}
END_TEST

START_TEST(test_conf_without_emsguard)
{
    /* a configuration that loads only the default provider */
    char *file = conf_path("default-only");
    FILE *f = fopen(file, "w");
    char *err;
    int ret;
    OSSL_LIB_CTX *libctx;

    ck_assert_ptr_nonnull(f);
    fputs("openssl_conf = openssl_init\n[openssl_init]\nproviders = provider_sect\n"
          "[provider_sect]\ndefault = default_sect\n[default_sect]\nactivate = 1\n",
        f);
    ck_assert_int_eq(fclose(f), 0);
    libctx = load_conf(file, &ret, &err);
    ck_assert_int_eq(ret, 1);
    ck_assert_str_eq(err, "");
    ck_assert_int_eq(OSSL_PROVIDER_available(libctx, "default"), 1);
    ck_assert_int_eq(OSSL_PROVIDER_available(libctx, "emsguard"), 0);
    expect_no_provider_policy(libctx);
    free(err);
    OSSL_LIB_CTX_free(libctx);
    free(file);
}
END_TEST

/* Bad files.  |conf_check|: the error comes from the unknown-key check and
 * names the file and section; otherwise from the provider's value parser. */
struct bad_file {
    const char *tag;
    const char *prov_name;
    const char *body;
    int reason;
    int conf_check;
    const char *tail;
};

static const struct bad_file bad_files[] = {
    { "unknown-key", "emsguard", "EventLoging = 1", EMSGUARD_R_UNKNOWN_KEY, 1,
        "unknown key 'EventLoging' (did you mean 'EventLogging'?); " KNOWN_KEYS },
    { "wrong-case", "emsguard", "disableserverextendedmastersecret = 1",
        EMSGUARD_R_UNKNOWN_KEY, 1,
        "unknown key 'disableserverextendedmastersecret' (did you mean "
        "'DisableServerExtendedMasterSecret'?); " KNOWN_KEYS },
    { "wrong-case-2", "emsguard", "DisableServerExtendedMasterSecret = 1\neventLogging = 3",
        EMSGUARD_R_UNKNOWN_KEY, 1,
        "unknown key 'eventLogging' (did you mean 'EventLogging'?); " KNOWN_KEYS },
    { "unknown-no-hint", "emsguard", "Colour = blue", EMSGUARD_R_UNKNOWN_KEY, 1,
        "unknown key 'Colour'; " KNOWN_KEYS },
    { "empty-value", "emsguard", "EventLogging =", EMSGUARD_R_EMPTY_VALUE, 0,
        "key 'EventLogging': value '' is empty; " ACC_LOG },
    { "empty-target", "emsguard", "LogTarget =", EMSGUARD_R_EMPTY_VALUE, 0,
        "key 'LogTarget': value '' is not accepted; " ACC_TARGET },
    { "out-of-range", "emsguard", "DisableServerExtendedMasterSecret = 2",
        EMSGUARD_R_OUT_OF_RANGE, 0,
        "key 'DisableServerExtendedMasterSecret': value '2' is out of range; " ACC_BOOL },
    { "out-of-range-log", "emsguard", "EventLogging = 9", EMSGUARD_R_OUT_OF_RANGE, 0,
        "key 'EventLogging': value '9' is out of range; " ACC_LOG },
    { "no-dword", "emsguard", "EventLogging = 4294967296", EMSGUARD_R_OUT_OF_RANGE, 0,
        "key 'EventLogging': value '4294967296' does not fit in a DWORD; " ACC_LOG },
    { "trailing", "emsguard", "EventLogging = 1x", EMSGUARD_R_TRAILING_GARBAGE, 0,
        "key 'EventLogging': value '1x' has trailing characters after the number; "
        ACC_LOG },
    { "trailing-hex", "emsguard", "AllowLegacyResumption = 0x1g",
        EMSGUARD_R_TRAILING_GARBAGE, 0,
        "key 'AllowLegacyResumption': value '0x1g' has trailing characters after the "
        "number; " ACC_BOOL },
    { "not-a-number", "emsguard", "DisableClientExtendedMasterSecret = yes",
        EMSGUARD_R_BAD_VALUE, 0,
        "key 'DisableClientExtendedMasterSecret': value 'yes' is not a number; " ACC_BOOL },
    { "bad-target", "emsguard", "LogTarget = file", EMSGUARD_R_BAD_VALUE, 0,
        "key 'LogTarget': value 'file' is not accepted; " ACC_TARGET },
    /* good values do not excuse a bad one after them */
    { "good-then-bad", "emsguard",
        "DisableServerExtendedMasterSecret = 1\nEventLogging = 3\nLogTarget = sys_log",
        EMSGUARD_R_BAD_VALUE, 0,
        "key 'LogTarget': value 'sys_log' is not accepted; " ACC_TARGET },
    /* the message names the provider as [provider_sect] names it */
    { "renamed-bad-value", "guard", "EventLogging = 9", EMSGUARD_R_OUT_OF_RANGE, 0,
        "key 'EventLogging': value '9' is out of range; " ACC_LOG },
    { "renamed-unknown-key", "guard", "EventLoging = 1", EMSGUARD_R_UNKNOWN_KEY, 1,
        "unknown key 'EventLoging' (did you mean 'EventLogging'?); " KNOWN_KEYS },
};

static char *bad_file_data(const struct bad_file *b, const char *file)
{
    if (b->conf_check)
        return xasprintf("%s, section [" SECTION "]: %s", file, b->tail);
    return xasprintf("provider '%s' configuration: %s", b->prov_name, b->tail);
}

/*
 * With "activate = 1": OSSL_LIB_CTX_load_config() activates the provider.
 * OpenSSL 3.0 treats a failed activation as non-fatal: load_config returns 1
 * and pops the errors (observed, 3.0.22), so the proofs are that the provider
 * is NOT available, emsguard's line on stderr, and no policy to be found.
 */
START_TEST(test_conf_bad_file_activated)
{
    const struct bad_file *b = &bad_files[_i];
    char *file = write_conf(b->tag, b->prov_name, 1, b->body);
    char *data = bad_file_data(b, file);
    char *line = xasprintf(NOT_ACTIVATED "%s\n", data);
    char *err;
    int ret;
    OSSL_LIB_CTX *libctx = load_conf(file, &ret, &err);

    ck_assert_msg(OSSL_PROVIDER_available(libctx, b->prov_name) == 0,
        "a bad file (%s) left the provider available", b->tag);
    ck_assert_int_eq(ret, 1);
    ck_assert_str_eq(err, line);
    ERR_clear_error();
    expect_no_provider_policy(libctx);
    free(err);
    free(line);
    free(data);
    OSSL_LIB_CTX_free(libctx);
    free(file);
}
END_TEST

/*
 * Without "activate": the file only configures the provider; the application
 * loads it with OSSL_PROVIDER_load(), which fails with emsguard's error left
 * on the queue.
 */
START_TEST(test_conf_bad_file_explicit_load)
{
    const struct bad_file *b = &bad_files[_i];
    char *tag = xasprintf("%s-explicit", b->tag);
    char *file = write_conf(tag, b->prov_name, 0, b->body);
    char *data = bad_file_data(b, file);
    char *line = xasprintf(NOT_ACTIVATED "%s\n", data);
    char *err;
    int ret;
    OSSL_LIB_CTX *libctx = load_conf(file, &ret, &err);
    OSSL_PROVIDER *prov;

    ck_assert_int_eq(ret, 1);
    ck_assert_str_eq(err, ""); /* nothing activated yet */
    free(err);
    expect_no_error();
    ck_assert_int_eq(OSSL_PROVIDER_available(libctx, b->prov_name), 0);

    capture_stderr();
    prov = OSSL_PROVIDER_load(libctx, b->prov_name);
    err = captured_stderr();
    ck_assert_msg(prov == NULL, "a bad file (%s) let OSSL_PROVIDER_load succeed", b->tag);
    expect_emsguard_error_in_queue(b->reason, data);
    ck_assert_str_eq(err, line);
    ck_assert_int_eq(OSSL_PROVIDER_available(libctx, b->prov_name), 0);
    expect_no_provider_policy(libctx);

    free(err);
    free(line);
    free(data);
    OSSL_LIB_CTX_free(libctx);
    free(file);
    free(tag);
}
END_TEST

START_TEST(test_conf_good_file_explicit_load)
{
    /* the control for the test above: the same route works for a good file */
    char *file = write_conf("good-explicit", "emsguard", 0, BODY_A);
    char *err;
    int ret;
    OSSL_LIB_CTX *libctx = load_conf(file, &ret, &err);
    OSSL_PROVIDER *prov;

    ck_assert_int_eq(ret, 1);
    ck_assert_str_eq(err, "");
    free(err);
    ck_assert_int_eq(OSSL_PROVIDER_available(libctx, "emsguard"), 0);
    capture_stderr();
    prov = OSSL_PROVIDER_load(libctx, "emsguard");
    err = captured_stderr();
    ck_assert_ptr_nonnull(prov);
    expect_no_error();
    ck_assert_str_eq(err, WEAK_SERVER_LOG);
    ck_assert_int_eq(OSSL_PROVIDER_available(libctx, "emsguard"), 1);
    expect_provider_policy(libctx, texts_a);
    ck_assert_int_eq(OSSL_PROVIDER_unload(prov), 1);
    free(err);
    OSSL_LIB_CTX_free(libctx);
    free(file);
}
END_TEST

/*
 * A value that happens to name a section of the file.  OpenSSL's provider
 * configuration treats such a value as a nested section and hands the
 * provider "EventLogging.activate = 1" instead of "EventLogging"; the value
 * written for EventLogging must still not be silently replaced by the
 * default: the provider must not become available.
 */
START_TEST(test_conf_value_names_a_section)
{
    char *file = write_conf("value-is-section", "emsguard", 1,
        "EventLogging = default_sect");
    char *err;
    char msg[1024];
    int ret, avail, named;
    OSSL_LIB_CTX *libctx = load_conf(file, &ret, &err);

    avail = OSSL_PROVIDER_available(libctx, "emsguard");
    named = strstr(err, NOT_ACTIVATED) != NULL && strstr(err, "EventLogging") != NULL;
    snprintf(msg, sizeof(msg), "%s", err);
    ERR_clear_error();
    /* free first: this test is expected to fail until the library is fixed */
    free(err);
    OSSL_LIB_CTX_free(libctx);
    free(file);
    ck_assert_msg(avail == 0,
        "EventLogging = default_sect was silently ignored: the provider is "
        "available (stderr: '%s')", msg);
    ck_assert_msg(named,
        "no 'provider not activated' line naming EventLogging on stderr: '%s'", msg);
}
END_TEST


/* ---- 4. EMSGUARD_POLICY_from_config: the file read without a provider ---- */

/* Writes |text| verbatim to a file named after |tag|. */
static char *write_raw(const char *tag, const char *text)
{
    char *path = conf_path(tag);
    FILE *f = fopen(path, "w");

    ck_assert_msg(f != NULL, "cannot write %s: %s", path, strerror(errno));
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

START_TEST(test_from_config_valid)
{
    char *file = write_conf("fc-valid", "emsguard", 0, BODY_A);
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
    int found = -1;

    ck_assert_int_eq(EMSGUARD_POLICY_from_config(p, file, &found), 1);
    ck_assert_int_eq(found, 1);
    expect_no_error();
    expect_policy_texts(p, texts_a);
    EMSGUARD_POLICY_free(p);
    free(file);
}
END_TEST

/* Found by its module even under another name in [provider_sect]. */
START_TEST(test_from_config_by_module)
{
    char *file = write_conf("fc-renamed", "guard", 1, "EventLogging = 6");
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
    uint32_t v = 0;
    int found = -1;

    ck_assert_int_eq(EMSGUARD_POLICY_from_config(p, file, &found), 1);
    ck_assert_int_eq(found, 1);
    ck_assert_int_eq(EMSGUARD_POLICY_get_dword(p, K_EVL, &v), 1);
    ck_assert_uint_eq(v, 6);
    EMSGUARD_POLICY_free(p);
    free(file);
}
END_TEST

/* No emsguard provider: found 0, policy untouched, no error. */
START_TEST(test_from_config_absent)
{
    char *file = write_raw("fc-absent",
        "openssl_conf = openssl_init\n[openssl_init]\nproviders = provider_sect\n"
        "[provider_sect]\ndefault = default_sect\n[default_sect]\nactivate = 1\n");
    EMSGUARD_POLICY *p = non_default_policy();
    int found = -1;

    ck_assert_int_eq(EMSGUARD_POLICY_from_config(p, file, &found), 1);
    ck_assert_int_eq(found, 0);
    expect_no_error();
    expect_policy_texts(p, non_default_texts);
    EMSGUARD_POLICY_free(p);
    free(file);
}
END_TEST

/* Every bad file the provider rejects, rejected here with the same words. */
START_TEST(test_from_config_bad_file)
{
    const struct bad_file *b = &bad_files[_i];
    char *tag = xasprintf("fc-%s", b->tag);
    char *file = write_conf(tag, b->prov_name, 0, b->body);
    char *data = xasprintf("%s, section [" SECTION "]: %s", file, b->tail);
    EMSGUARD_POLICY *p = non_default_policy();
    int found = -1;

    ck_assert_int_eq(EMSGUARD_POLICY_from_config(p, file, &found), 0);
    ck_assert_int_eq(found, 0);
    expect_one_error(b->reason, data);
    expect_policy_texts(p, non_default_texts);
    EMSGUARD_POLICY_free(p);
    free(data);
    free(file);
    free(tag);
}
END_TEST

START_TEST(test_from_config_value_is_section)
{
    char *file = write_conf("fc-section", "emsguard", 0, "EventLogging = default_sect");
    char *data = xasprintf("%s, section [" SECTION "]: key 'EventLogging': value "
        "'default_sect' is the name of a section, which OpenSSL would read as a "
        "nested section instead of a value; accepted: 0 to 7 (bitmask: 1 errors, "
        "2 warnings, 4 informational)", file);
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
    int found = -1;

    ck_assert_int_eq(EMSGUARD_POLICY_from_config(p, file, &found), 0);
    expect_one_error(EMSGUARD_R_BAD_VALUE, data);
    EMSGUARD_POLICY_free(p);
    free(data);
    free(file);
}
END_TEST

START_TEST(test_from_config_syntax_error)
{
    char *file = write_raw("fc-syntax",
        "openssl_conf = openssl_init\n[openssl_init]\nthis line has no equals sign\n");
    char *data = xasprintf("%s:3: syntax error (missing equal sign)", file);
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
    int found = -1;

    ck_assert_int_eq(EMSGUARD_POLICY_from_config(p, file, &found), 0);
    expect_one_error(EMSGUARD_R_CONFIG_FILE, data);
    EMSGUARD_POLICY_free(p);
    free(data);
    free(file);
}
END_TEST

START_TEST(test_from_config_missing_file)
{
    char *file = conf_path("fc-does-not-exist");
    char *data = xasprintf("%s: cannot read (no such file)", file);
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
    int found = -1;

    ck_assert_int_eq(EMSGUARD_POLICY_from_config(p, file, &found), 0);
    expect_one_error(EMSGUARD_R_CONFIG_FILE, data);
    ck_assert_int_eq(EMSGUARD_POLICY_from_config(NULL, file, &found), 0);
    expect_one_error(EMSGUARD_R_INVALID_ARGUMENT,
        "EMSGUARD_POLICY_from_config: policy or found is NULL");
    EMSGUARD_POLICY_free(p);
    free(data);
    free(file);
}
END_TEST

/* NULL file: the one OpenSSL reads, OPENSSL_CONF. */
START_TEST(test_from_config_default_file)
{
    char *file = write_conf("fc-default", "emsguard", 0, BODY_A);
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
    int found = -1;

    ck_assert_int_eq(setenv("OPENSSL_CONF", file, 1), 0);
    ck_assert_int_eq(EMSGUARD_POLICY_from_config(p, NULL, &found), 1);
    ck_assert_int_eq(found, 1);
    expect_policy_texts(p, texts_a);
    EMSGUARD_POLICY_free(p);
    free(file);
}
END_TEST

/* A missing default file is no configuration; a named missing file fails. */
START_TEST(test_from_config_missing_default_file)
{
    char *file = conf_path("fc-no-default");
    EMSGUARD_POLICY *p = non_default_policy();
    int found = -1;

    ck_assert_int_eq(setenv("OPENSSL_CONF", file, 1), 0);
    ck_assert_int_eq(EMSGUARD_POLICY_from_config(p, NULL, &found), 1);
    ck_assert_int_eq(found, 0);
    expect_no_error();
    expect_policy_texts(p, non_default_texts);
    EMSGUARD_POLICY_free(p);
    free(file);
}
END_TEST

/* ---- 5. the stock openssl CLI ------------------------------------------ */

/* Single-quotes |s| for /bin/sh (caller frees). */
static char *shell_quote(const char *s)
{
    size_t n = 3;
    const char *p;
    char *out, *w;

    for (p = s; *p; p++)
        n += *p == '\'' ? 4 : 1;
    out = malloc(n);
    ck_assert_ptr_nonnull(out);
    w = out;
    *w++ = '\'';
    for (p = s; *p; p++) {
        if (*p == '\'') {
            memcpy(w, "'\\''", 4);
            w += 4;
        } else {
            *w++ = *p;
        }
    }
    *w++ = '\'';
    *w = '\0';
    return out;
}

/* Runs |cmd| through popen; returns its output, *status the wait status. */
static char *run_capture(const char *cmd, int *status)
{
    FILE *f = popen(cmd, "r");
    size_t cap = 4096, len = 0, n;
    char *buf = malloc(cap);

    ck_assert_msg(f != NULL, "popen(%s) failed", cmd);
    ck_assert_ptr_nonnull(buf);
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            char *nb = realloc(buf, cap * 2);

            ck_assert_ptr_nonnull(nb);
            buf = nb;
            cap *= 2;
        }
    }
    buf[len] = '\0';
    *status = pclose(f);
    return buf;
}

/*
 * Environment prefix for running the stock openssl binary on our module:
 * under SANITIZE=1 the module needs the ASan runtime preloaded.
 */
static char *cli_env_prefix(void)
{
    const char *san = getenv("SANITIZE");
    char *out, *q;
    int status;
    size_t len;

    if (san == NULL || strcmp(san, "1") != 0)
        return xstrdup("");
    out = run_capture("gcc -print-file-name=libasan.so", &status);
    ck_assert_int_eq(status, 0);
    len = strlen(out);
    while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == ' '))
        out[--len] = '\0';
    ck_assert_msg(out[0] == '/' && access(out, R_OK) == 0,
        "SANITIZE=1 but libasan.so not found (gcc says '%s')", out);
    q = shell_quote(out);
    free(out);
    out = xasprintf("LD_PRELOAD=%s ASAN_OPTIONS=detect_leaks=0 ", q);
    free(q);
    return out;
}

static char *run_openssl_list(const char *file, int *status)
{
    const char *openssl = getenv("OPENSSL");
    char *env = cli_env_prefix();
    char *qf = shell_quote(file);
    char *qo = shell_quote(openssl != NULL && *openssl ? openssl : "openssl");
    char *cmd = xasprintf("OPENSSL_CONF=%s %s%s list -providers 2>&1", qf, env, qo);
    char *out = run_capture(cmd, status);

    free(cmd);
    free(qo);
    free(qf);
    free(env);
    return out;
}

START_TEST(test_cli_good_file)
{
    char *file = write_conf("cli-good", "emsguard", 1, "EventLogging = dword:00000003");
    int status;
    char *out = run_openssl_list(file, &status);

    ck_assert_msg(status == 0, "openssl list failed (%d): %s", status, out);
    ck_assert_msg(strstr(out, "  emsguard\n    name: emsguard\n    version: "
                              EMSGUARD_VERSION_STR "\n    status: active\n")
            != NULL,
        "emsguard not listed as active:\n%s", out);
    ck_assert_msg(strstr(out, "emsguard: error") == NULL, "unexpected error:\n%s", out);
    free(out);
    free(file);
}
END_TEST

struct cli_bad {
    const char *tag;
    const char *body;
    const char *key;
    int conf_check;
    const char *tail;
};

static const struct cli_bad cli_bads[] = {
    { "cli-bad-value", "EventLogging = 9", "EventLogging", 0,
        "key 'EventLogging': value '9' is out of range; " ACC_LOG },
    { "cli-unknown-key", "DisableServerExtendedMasterSecert = 1",
        "DisableServerExtendedMasterSecert", 1,
        "unknown key 'DisableServerExtendedMasterSecert' (did you mean "
        "'DisableServerExtendedMasterSecret'?); " KNOWN_KEYS },
    { "cli-trailing", "AllowLegacyResumption = 1x", "AllowLegacyResumption", 0,
        "key 'AllowLegacyResumption': value '1x' has trailing characters after the "
        "number; " ACC_BOOL },
};

START_TEST(test_cli_bad_file)
{
    const struct cli_bad *b = &cli_bads[_i];
    char *file = write_conf(b->tag, "emsguard", 1, b->body);
    char *line = b->conf_check
        ? xasprintf(NOT_ACTIVATED "%s, section [" SECTION "]: %s\n", file, b->tail)
        : xasprintf(NOT_ACTIVATED PROV_WHERE "%s\n", b->tail);
    int status;
    char *out = run_openssl_list(file, &status);

    ck_assert_msg(strstr(out, NOT_ACTIVATED) != NULL,
        "no 'provider not activated' line:\n%s", out);
    ck_assert_msg(strstr(out, b->key) != NULL, "key %s not named:\n%s", b->key, out);
    ck_assert_msg(strstr(out, line) != NULL, "expected line\n%s\nnot in:\n%s", line, out);
    ck_assert_msg(strstr(out, "  emsguard\n") == NULL
            && strstr(out, "name: emsguard\n") == NULL,
        "emsguard listed despite the bad file:\n%s", out);
    /* the default provider is still listed: the CLI ran */
    ck_assert_msg(strstr(out, "  default\n") != NULL, "CLI output unexpected:\n%s", out);
    free(out);
    free(line);
    free(file);
}
END_TEST

/* ---- suite --------------------------------------------------------------- */

static Suite *config_suite(void)
{
    Suite *s = suite_create("emsguard-config");
    TCase *tc;

    tc = tcase_create("policy");
    tcase_add_checked_fixture(tc, setup_clean, teardown_capture);
    tcase_add_test(tc, test_defaults);
    tcase_add_loop_test(tc, test_set_bad_input, 0,
        (int)(sizeof(bad_sets) / sizeof(bad_sets[0])));
    tcase_add_loop_test(tc, test_set_good_input, 0,
        (int)(sizeof(good_sets) / sizeof(good_sets[0])));
    tcase_add_test(tc, test_set_leaves_other_keys);
    tcase_add_test(tc, test_dup);
    tcase_add_test(tc, test_set_dword);
    tcase_add_test(tc, test_get_dword_errors);
    tcase_add_test(tc, test_get_text_buffers);
    tcase_add_test(tc, test_null_arguments);
    tcase_add_test(tc, test_session_has_ems_null);
    tcase_add_test(tc, test_policy_print);
    suite_add_tcase(s, tc);

    tc = tcase_create("provider-conf");
    tcase_add_checked_fixture(tc, setup_clean, teardown_capture);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_conf_valid_loads);
    tcase_add_test(tc, test_conf_valid_other_values);
    tcase_add_test(tc, test_conf_valid_no_keys);
    tcase_add_test(tc, test_conf_renamed_provider);
    tcase_add_test(tc, test_conf_provider_params);
    tcase_add_test(tc, test_conf_enable_ex);
    tcase_add_test(tc, test_no_provider_libctx);
    tcase_add_test(tc, test_conf_without_emsguard);
    tcase_add_loop_test(tc, test_conf_bad_file_activated, 0,
        (int)(sizeof(bad_files) / sizeof(bad_files[0])));
    tcase_add_loop_test(tc, test_conf_bad_file_explicit_load, 0,
        (int)(sizeof(bad_files) / sizeof(bad_files[0])));
    tcase_add_test(tc, test_conf_good_file_explicit_load);
    tcase_add_test(tc, test_conf_value_names_a_section);
    suite_add_tcase(s, tc);

    tc = tcase_create("from-config");
    tcase_add_checked_fixture(tc, setup_clean, teardown_capture);
    tcase_add_test(tc, test_from_config_valid);
    tcase_add_test(tc, test_from_config_by_module);
    tcase_add_test(tc, test_from_config_absent);
    tcase_add_loop_test(tc, test_from_config_bad_file, 0,
        (int)(sizeof(bad_files) / sizeof(bad_files[0])));
    tcase_add_test(tc, test_from_config_value_is_section);
    tcase_add_test(tc, test_from_config_syntax_error);
    tcase_add_test(tc, test_from_config_missing_file);
    tcase_add_test(tc, test_from_config_default_file);
    tcase_add_test(tc, test_from_config_missing_default_file);
    suite_add_tcase(s, tc);

    tc = tcase_create("openssl-cli");
    tcase_add_checked_fixture(tc, setup_clean, teardown_capture);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_cli_good_file);
    tcase_add_loop_test(tc, test_cli_bad_file, 0,
        (int)(sizeof(cli_bads) / sizeof(cli_bads[0])));
    suite_add_tcase(s, tc);
    return s;
}

static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        char path[PATH_MAX + 300];

        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(tmpdir);
}

int main(void)
{
    const char *build = getenv("BUILD");
    const char *tmp = getenv("TMPDIR");
    char absbuild[PATH_MAX];
    SRunner *sr;
    int failed;

    if (build == NULL || *build == '\0')
        build = "build";
    if (realpath(build, absbuild) == NULL) {
        fprintf(stderr, "check_config: build directory '%s': %s\n", build, strerror(errno));
        snprintf(absbuild, sizeof(absbuild), "%s", build);
    }
    snprintf(module_path, sizeof(module_path), "%s/emsguard.so", absbuild);
    if (access(module_path, R_OK) != 0)
        /* not fatal here: the policy tests still run, the provider tests fail */
        fprintf(stderr, "check_config: %s: %s (make %s/emsguard.so)\n", module_path,
            strerror(errno), build);
    snprintf(tmpdir, sizeof(tmpdir), "%s/emsguard-check-config.XXXXXX",
        tmp != NULL && *tmp ? tmp : "/tmp");
    if (mkdtemp(tmpdir) == NULL) {
        perror("check_config: mkdtemp");
        return EXIT_FAILURE;
    }
    /* Exact stderr assertions: no debug lines. */
    unsetenv("EMSGUARD_DEBUG");
    /*
     * Keep the default library context out of it: every test loads its
     * configuration into its own OSSL_LIB_CTX, and OPENSSL_CONF changes from
     * test to test.
     */
    OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
    OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);

    sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_ENV); /* CK_NORMAL unless CK_VERBOSITY says otherwise */
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    remove_tmpdir();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
