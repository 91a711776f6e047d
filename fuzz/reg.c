/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the .reg parser, emsguard_reg_apply(), on the raw
 * bytes: REGEDIT4 / version 5.00 text in ANSI or UTF-8, or UTF-16LE behind
 * a byte-order mark (the corpus holds both), applied to a policy with many
 * keys already set so that deletions and failed files show.  Checks are in
 * oracles.c: errors are raised, a failed file changes nothing, a file
 * applied twice gives what it gave once, translated lists are complete.
 */
#include <stdint.h>
#include "oracles.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    EMSGUARD_POLICY result;

    (void)fuzz_reg_apply_checked(data, size, &result);
    return 0;
}
