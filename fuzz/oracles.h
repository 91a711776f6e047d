/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Checks shared by the fuzz targets: what the library promises beyond
 * memory safety.  A failed check prints why and aborts, which libFuzzer
 * reports as a crash with the input saved.
 */
#ifndef EMSGUARD_FUZZ_ORACLES_H
#define EMSGUARD_FUZZ_ORACLES_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include "internal.h"

#define FUZZ_CHECK(cond, ...) \
    do { \
        if (!(cond)) { \
            fprintf(stderr, "fuzz: check failed: %s: ", #cond); \
            fprintf(stderr, __VA_ARGS__); \
            fputc('\n', stderr); \
            abort(); \
        } \
    } while (0)

/* FUZZ_VERBOSE set: targets print what the library said (for triage). */
int fuzz_verbose(void);
/* Equal in every field but the warnings (a failed store may append). */
int fuzz_same_values(const EMSGUARD_POLICY *a, const EMSGUARD_POLICY *b);
/*
 * Every cipher suite / curve OpenSSL implements that Functions / EccCurves
 * names is an element of the translated list.
 */
void fuzz_check_lists(const EMSGUARD_POLICY *policy);
/* A policy with many keys set, so that deletions and failures show. */
const EMSGUARD_POLICY *fuzz_base_policy(void);
/*
 * emsguard_reg_apply() on a copy of the base policy, checked: a failure
 * raises an error and changes nothing; a success applies again to the same
 * result.  Returns the result; *out receives the policy.
 */
int fuzz_reg_apply_checked(const unsigned char *buf, size_t len,
    EMSGUARD_POLICY *out);

#endif
