/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared by the Check suites that write openssl.cnf files and load the
 * emsguard provider in the default library context (check_config_failclosed,
 * check_two_providers): a temp dir for the files, the path of the built
 * module, the error queue as text, and a runner that forks per test, so each
 * test loads its own OPENSSL_CONF into a fresh process.
 */
#ifndef EMSGUARD_TEST_CONF_UTIL_H
#define EMSGUARD_TEST_CONF_UTIL_H

#include <limits.h>
#include <check.h>

/* Set by cu_run_forked() before the suite runs. */
extern char cu_tmpdir[PATH_MAX]; /* a fresh temp dir, removed at the end */
extern char cu_build_dir[PATH_MAX]; /* $BUILD (default "build"), absolute */
extern char cu_module_path[PATH_MAX + 32]; /* cu_build_dir/emsguard.so */

/* vasprintf() that must succeed; free() the result. */
char *cu_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Every queued error, one line each, "emsguard:<reason> <data>" or
 * "other:<reason> <data>"; drains the queue.  free() the result.
 */
char *cu_drain_errors(void);

/* Fails the test unless |needle| occurs in |haystack| (shown if not). */
void cu_expect_in(const char *haystack, const char *needle);

/*
 * Finds the module in $BUILD, makes cu_tmpdir as $TMPDIR/<tmp_name>.XXXXXX,
 * unsets EMSGUARD_DEBUG (the messages are asserted) and OPENSSL_MODULES, then
 * runs |make_suite|() with one fork per test and removes the temp dir.
 * |prog| prefixes the setup errors.  Returns main()'s exit status.
 */
int cu_run_forked(const char *prog, const char *tmp_name, Suite *(*make_suite)(void));

#endif
