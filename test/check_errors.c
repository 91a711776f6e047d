/* SPDX-License-Identifier: Apache-2.0 */
/*
 * check_errors -- emsguard's errors follow OpenSSL's conventions (issue 17):
 *  - the library code is registered with its name, so ERR_lib_error_string(),
 *    ERR_error_string_n() (what `openssl errstr` prints) and ERR_print_errors()
 *    say "emsguard" instead of "lib(128)", next to the reason text;
 *  - every EMSGUARD_R_* code has a reason string of its own;
 *  - the error records the call site that raised it (file, line, function),
 *    not the raise helper in provider/errors.c.
 * Both routes are checked: an error raised through the public API (library
 * linked directly) and one raised inside the provider module while
 * OSSL_PROVIDER_load() initialises it from a bad configuration.
 *
 *   BUILD=build build/test/check_errors
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <openssl/err.h>
#include <openssl/provider.h>
#include "emsguard.h"
#include "conf_util.h"

/* One emsguard error, copied off the queue. */
struct queued {
    unsigned long code;
    char *file, *func;
    int line;
};

static char *dup_or_null(const char *s)
{
    return s != NULL ? cu_xasprintf("%s", s) : NULL;
}

/*
 * Drains the queue and returns the last emsguard error on it (others, such
 * as libcrypto's "init fail" wrapper after a failed provider, are skipped).
 */
static struct queued take_last_emsguard_error(void)
{
    struct queued q = { 0 };
    const char *file, *func;
    unsigned long e;
    int line;

    while ((e = ERR_get_error_all(&file, &line, &func, NULL, NULL)) != 0) {
        if (ERR_GET_LIB(e) != EMSGUARD_get_error_lib())
            continue;
        free(q.file);
        free(q.func);
        q.code = e;
        q.file = dup_or_null(file);
        q.func = dup_or_null(func);
        q.line = line;
    }
    ck_assert_msg(q.code != 0, "no emsguard error on the queue");
    return q;
}

static void add_problem(char **problems, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void add_problem(char **problems, const char *fmt, ...)
{
    char *one = NULL, *all;
    va_list ap;

    va_start(ap, fmt);
    ck_assert_int_ge(vasprintf(&one, fmt, ap), 0);
    va_end(ap);
    all = cu_xasprintf("%s\n  %s", *problems, one);
    free(one);
    free(*problems);
    *problems = all;
}

static int print_cb(const char *str, size_t len, void *arg)
{
    char **out = arg;
    char *next = cu_xasprintf("%s%.*s", *out, (int)len, str);

    free(*out);
    *out = next;
    return 1;
}

/*
 * |trigger| (run twice: once to print the queue, once to inspect it) raises
 * an emsguard error with |reason|.  It must carry the registered text; its
 * library name must show in every printed form; its origin must be the
 * raising file, not errors.c.
 */
static void expect_convention(void (*trigger)(void), int reason, const char *reason_text)
{
    char *printed = cu_xasprintf("%s", "");
    char *problems = cu_xasprintf("%s", "");
    char *want;
    const char *lib, *why;
    struct queued q;
    char buf[256];

    ERR_clear_error();
    trigger();
    /* ERR_print_errors(): "<tid>:error:<code>:<lib>:<func>:<reason>:<file>:<line>:<data>" */
    ERR_print_errors_cb(print_cb, &printed);
    trigger();
    q = take_last_emsguard_error();

    /* every broken convention at once, so one run shows them all */
    ck_assert_int_eq(ERR_GET_REASON(q.code), reason);
    lib = ERR_lib_error_string(q.code);
    why = ERR_reason_error_string(q.code);
    if (lib == NULL || strcmp(lib, "emsguard") != 0)
        add_problem(&problems, "library name is '%s', expected 'emsguard'",
            lib != NULL ? lib : "(none)");
    if (why == NULL || strcmp(why, reason_text) != 0)
        add_problem(&problems, "reason string is '%s', expected '%s'",
            why != NULL ? why : "(none)", reason_text);

    /* `openssl errstr <code>`, in-process: "error:<code>:emsguard::<reason>" */
    ERR_error_string_n(q.code, buf, sizeof(buf));
    if (strstr(buf, ":emsguard:") == NULL || strstr(buf, reason_text) == NULL)
        add_problem(&problems, "ERR_error_string_n gives '%s'", buf);

#ifndef OPENSSL_NO_FILENAMES /* else OPENSSL_FILE is "" and OPENSSL_LINE 0 */
    if (q.file == NULL || strstr(q.file, "errors.c") != NULL
        || strstr(q.file, "provider/") == NULL || q.line <= 0)
        add_problem(&problems, "error origin is %s:%d, not the file that raised it",
            q.file != NULL ? q.file : "(none)", q.line);
    if (q.func == NULL || *q.func == '\0' || strcmp(q.func, "emsguard") == 0
        || strcmp(q.func, "emsguard_raise") == 0 || strcmp(q.func, "emsguard_raise_at") == 0)
        add_problem(&problems, "error function is '%s', not the caller's",
            q.func != NULL ? q.func : "(none)");
#endif

    /* ERR_print_errors(), same trigger, same error: library and call site */
    want = cu_xasprintf(":error:%08lX:emsguard:%s:%s:%s:%d:", q.code, q.func != NULL ? q.func : "",
        reason_text, q.file != NULL ? q.file : "", q.line);
    if (strstr(printed, want) == NULL)
        add_problem(&problems, "ERR_print_errors printed no '%s' but: %s", want, printed);
    free(want);
    ck_assert_msg(*problems == '\0', "%s", problems);
    free(problems);
    free(printed);
    free(q.file);
    free(q.func);
}

START_TEST(test_every_reason_has_a_string)
{
    int lib = EMSGUARD_get_error_lib();
    const char *name = ERR_lib_error_string(ERR_PACK(lib, 0, 0));
    int r, s;

    ck_assert_int_gt(lib, 0);
    ck_assert_msg(name != NULL && strcmp(name, "emsguard") == 0,
        "library %d is named '%s', expected 'emsguard'", lib, name != NULL ? name : "(none)");
    for (r = EMSGUARD_R_UNKNOWN_KEY; r <= EMSGUARD_R_GUARD_MISSING; r++) {
        const char *a = ERR_reason_error_string(ERR_PACK(lib, 0, r));

        ck_assert_msg(a != NULL && *a != '\0', "reason %d has no string", r);
        for (s = EMSGUARD_R_UNKNOWN_KEY; s < r; s++)
            ck_assert_msg(strcmp(a, ERR_reason_error_string(ERR_PACK(lib, 0, s))) != 0,
                "reasons %d and %d share the string '%s'", s, r, a);
    }
}
END_TEST

/* Library route, an unknown key: raised by the key lookup. */
static void set_unknown_key(void)
{
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();

    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(EMSGUARD_POLICY_set(p, "Colour", "1"), 0);
    EMSGUARD_POLICY_free(p);
}

START_TEST(test_api_unknown_key)
{
    expect_convention(set_unknown_key, EMSGUARD_R_UNKNOWN_KEY, "unknown policy key");
}
END_TEST

/* Library route, a bad value: raised by the value parser. */
static void set_out_of_range(void)
{
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();

    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(EMSGUARD_POLICY_set(p, EMSGUARD_EVENT_LOGGING, "8"), 0);
    EMSGUARD_POLICY_free(p);
}

START_TEST(test_api_bad_value)
{
    expect_convention(set_out_of_range, EMSGUARD_R_OUT_OF_RANGE, "policy value out of range");
}
END_TEST

/* Library route, a file that is not there: raised by the file reader. */
static void read_missing_file(void)
{
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
    char *file = cu_xasprintf("%s/does-not-exist.cnf", cu_tmpdir);
    int found = -1;

    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(EMSGUARD_POLICY_from_config(p, file, &found), 0);
    EMSGUARD_POLICY_free(p);
    free(file);
}

START_TEST(test_api_missing_file)
{
    expect_convention(read_missing_file, EMSGUARD_R_CONFIG_FILE, "configuration file error");
}
END_TEST

/*
 * Module route: OSSL_PROVIDER_load() runs OSSL_provider_init() in the
 * module, which rejects the configured value and raises before the core
 * gives up (and adds its own error after ours).
 */
static void load_provider_with_bad_value(void)
{
    char *file = cu_xasprintf("%s/bad-value.cnf", cu_tmpdir);
    FILE *f = fopen(file, "w");
    OSSL_LIB_CTX *libctx;

    ck_assert_ptr_nonnull(f);
    fprintf(f,
        "openssl_conf = openssl_init\n"
        "[openssl_init]\nproviders = provider_sect\n"
        "[provider_sect]\ndefault = default_sect\nemsguard = emsguard_sect\n"
        "[default_sect]\nactivate = 1\n"
        "[emsguard_sect]\nmodule = %s\nEventLogging = 9\n",
        cu_module_path);
    ck_assert_int_eq(fclose(f), 0);
    /* the library may consult the process's default file too */
    ck_assert_int_eq(setenv("OPENSSL_CONF", file, 1), 0);
    libctx = OSSL_LIB_CTX_new();
    ck_assert_ptr_nonnull(libctx);
    ck_assert_int_eq(OSSL_LIB_CTX_load_config(libctx, file), 1);
    ck_assert_ptr_null(OSSL_PROVIDER_load(libctx, "emsguard"));
    OSSL_LIB_CTX_free(libctx);
    free(file);
}

START_TEST(test_provider_init_bad_value)
{
    expect_convention(load_provider_with_bad_value, EMSGUARD_R_OUT_OF_RANGE,
        "policy value out of range");
}
END_TEST

static Suite *errors_suite(void)
{
    Suite *s = suite_create("errors");
    TCase *tc = tcase_create("convention");

    tcase_add_test(tc, test_every_reason_has_a_string);
    tcase_add_test(tc, test_api_unknown_key);
    tcase_add_test(tc, test_api_bad_value);
    tcase_add_test(tc, test_api_missing_file);
    tcase_add_test(tc, test_provider_init_bad_value);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cu_run_forked("check_errors", "check_errors", errors_suite);
}
