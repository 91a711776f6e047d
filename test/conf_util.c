/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Config-file suite helpers (see conf_util.h).
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <check.h>
#include <openssl/err.h>
#include "emsguard.h"
#include "conf_util.h"

char cu_tmpdir[PATH_MAX];
char cu_build_dir[PATH_MAX];
char cu_module_path[PATH_MAX + 32];

char *cu_xasprintf(const char *fmt, ...)
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

char *cu_drain_errors(void)
{
    char *all = cu_xasprintf("%s", "");
    const char *data;
    unsigned long e;
    int flags;

    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        char *next = cu_xasprintf("%s%s%d %s\n", all,
            ERR_GET_LIB(e) == EMSGUARD_get_error_lib() ? "emsguard:" : "other:",
            ERR_GET_REASON(e), (flags & ERR_TXT_STRING) && data != NULL ? data : "");
        free(all);
        all = next;
    }
    return all;
}

void cu_expect_in(const char *haystack, const char *needle)
{
    ck_assert_msg(strstr(haystack, needle) != NULL, "expected '%s' in:\n%s", needle, haystack);
}

/* Removes |dir| and everything in it, subdirectories too. */
static void remove_tmpdir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        char path[PATH_MAX + 300];

        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (unlink(path) != 0 && errno == EISDIR)
            remove_tmpdir(path);
    }
    closedir(d);
    rmdir(dir);
}

int cu_run_forked(const char *prog, const char *tmp_name, Suite *(*make_suite)(void))
{
    const char *build = getenv("BUILD");
    const char *tmp = getenv("TMPDIR");
    SRunner *sr;
    int failed;

    if (build == NULL || *build == '\0')
        build = "build";
    if (realpath(build, cu_build_dir) == NULL) {
        fprintf(stderr, "%s: build directory '%s': %s\n", prog, build, strerror(errno));
        return EXIT_FAILURE;
    }
    snprintf(cu_module_path, sizeof(cu_module_path), "%s/emsguard.so", cu_build_dir);
    if (access(cu_module_path, R_OK) != 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, cu_module_path, strerror(errno));
        return EXIT_FAILURE;
    }
    snprintf(cu_tmpdir, sizeof(cu_tmpdir), "%s/%s.XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp",
        tmp_name);
    if (mkdtemp(cu_tmpdir) == NULL) {
        fprintf(stderr, "%s: mkdtemp: %s\n", prog, strerror(errno));
        return EXIT_FAILURE;
    }
    /* The messages are asserted; no debug lines.  No OpenSSL call before the forks. */
    unsetenv("EMSGUARD_DEBUG");
    unsetenv("OPENSSL_MODULES");
    sr = srunner_create(make_suite());
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    remove_tmpdir(cu_tmpdir);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
