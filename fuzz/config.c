/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the openssl.cnf walk, EMSGUARD_POLICY_from_config(),
 * from the file OpenSSL parses to the provider section, its nested
 * subkey sections and the values, and the .reg file PolicyFile names.
 *
 * Input: the openssl.cnf text, optionally followed by a NUL byte and the
 * contents of the .reg file.  Both go to scratch files; this target's copy
 * of reg_file.o calls fuzz_fopen() instead of fopen() (objcopy, see
 * mk/fuzz.mk), which opens the scratch .reg whatever PolicyFile says, so no
 * input makes the library read other files.  For the same reason inputs
 * that could spell ".include" are skipped: OpenSSL would follow it.
 *
 * The same file is also the one OpenSSL itself would read (OPENSSL_CONF),
 * for the provider's key check at activation, emsguard_conf_check_section().
 *
 * Checks: a failure raises an error and leaves the policy unchanged, as
 * does "no emsguard provider in this file"; a success leaves complete
 * translated lists; a failed key check raises an error.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/err.h>
#include "oracles.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
FILE *fuzz_fopen(const char *path, const char *mode);

static char dir[64], cnf_path[96], reg_path[96];

static void cleanup(void)
{
    unlink(cnf_path);
    unlink(reg_path);
    rmdir(dir);
}

static void scratch_files(void)
{
    if (dir[0] != '\0')
        return;
    snprintf(dir, sizeof(dir), "%s", "/tmp/emsguard-fuzz-config.XXXXXX");
    FUZZ_CHECK(mkdtemp(dir) != NULL, "mkdtemp failed");
    snprintf(cnf_path, sizeof(cnf_path), "%s/fuzz.cnf", dir);
    snprintf(reg_path, sizeof(reg_path), "%s/policy.reg", dir);
    FUZZ_CHECK(setenv("OPENSSL_CONF", cnf_path, 1) == 0, "setenv failed");
    atexit(cleanup);
}

FILE *fuzz_fopen(const char *path, const char *mode)
{
    (void)path;
    return fopen(reg_path, mode);
}

static void write_file(const char *path, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wb");

    FUZZ_CHECK(f != NULL && fwrite(buf, 1, len, f) == len && fclose(f) == 0,
        "cannot write %s", path);
}

/* True if |buf| could name ".include" once line continuations are joined. */
static int may_include(const uint8_t *buf, size_t len)
{
    static const char word[] = "include";
    size_t i, m = 0;

    for (i = 0; i < len; i++) {
        int c = tolower(buf[i]);

        if (c == '\\' || c == '\r' || c == '\n')
            continue;
        m = c == word[m] ? m + 1 : c == word[0] ? 1 : 0;
        if (m == sizeof(word) - 1)
            return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    size_t cnf_len = nul != NULL ? (size_t)(nul - data) : size;
    EMSGUARD_POLICY policy;
    int found = -1, ok, raised;

    if (may_include(data, cnf_len))
        return -1; /* not added to the corpus */
    scratch_files();
    write_file(cnf_path, data, cnf_len);
    write_file(reg_path, nul != NULL ? nul + 1 : data, nul != NULL ? size - cnf_len - 1 : 0);
    policy = *fuzz_base_policy();
    ERR_clear_error();
    ok = EMSGUARD_POLICY_from_config(&policy, cnf_path, &found);
    raised = ERR_peek_error() != 0;
    if (fuzz_verbose()) {
        fprintf(stderr, "from_config: ok %d found %d\n%s", ok, found,
            EMSGUARD_POLICY_get0_warnings(&policy));
        ERR_print_errors_fp(stderr);
    }
    if (!ok) {
        FUZZ_CHECK(raised, "EMSGUARD_POLICY_from_config failed without an error");
        FUZZ_CHECK(memcmp(&policy, fuzz_base_policy(), sizeof(policy)) == 0,
            "a failed EMSGUARD_POLICY_from_config changed the policy");
    } else if (!found) {
        FUZZ_CHECK(memcmp(&policy, fuzz_base_policy(), sizeof(policy)) == 0,
            "no emsguard section, yet the policy changed");
    } else {
        fuzz_check_lists(&policy);
    }
    {
        unsigned char present[EG_KEY_COUNT] = { 0 };
        int checked = -1;

        ERR_clear_error();
        ok = emsguard_conf_check_section("emsguard", &checked, present);
        FUZZ_CHECK(ok || ERR_peek_error() != 0,
            "emsguard_conf_check_section failed without an error");
        FUZZ_CHECK(checked == 0 || checked == 1, "checked not set");
    }
    ERR_clear_error();
    return 0;
}
