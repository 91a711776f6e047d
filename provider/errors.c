/* SPDX-License-Identifier: Apache-2.0 */
/*
 * emsguard's errors on OpenSSL's error queue, the OpenSSL way: one
 * dynamically allocated library code, registered under the name "emsguard"
 * (so ERR_print_errors() and ERR_error_string() say "emsguard", not
 * "lib(128)"), a reason string per EMSGUARD_R_*, and the raising call site
 * as the error's origin (the emsguard_raise() macro in internal.h passes it).
 *
 * The same code serves the library linked into an application and the
 * provider module loaded by libcrypto: they are one image (emsguard.so is
 * libemsguard.so), linked to libcrypto, whose ERR_new(), ERR_set_debug() and
 * ERR_vset_error() are what the core's new_error, set_error_debug and
 * vset_error run when that libcrypto loads the module.
 */
#include <stdio.h>
#include <openssl/crypto.h>
#include "internal.h"

static CRYPTO_ONCE err_once = CRYPTO_ONCE_STATIC_INIT;
static int err_lib;

static ERR_STRING_DATA reason_strings[] = {
    { EMSGUARD_R_UNKNOWN_KEY, "unknown policy key" },
    { EMSGUARD_R_EMPTY_VALUE, "empty policy value" },
    { EMSGUARD_R_BAD_VALUE, "invalid policy value" },
    { EMSGUARD_R_TRAILING_GARBAGE, "trailing characters in policy value" },
    { EMSGUARD_R_OUT_OF_RANGE, "policy value out of range" },
    { EMSGUARD_R_ALREADY_ENABLED, "emsguard already enabled with another policy" },
    { EMSGUARD_R_INVALID_ARGUMENT, "invalid argument" },
    { EMSGUARD_R_CONFIG_FILE, "configuration file error" },
    { EMSGUARD_R_PROVIDER, "emsguard provider error" },
    { EMSGUARD_R_NOT_ENABLED, "emsguard not enabled on this SSL_CTX" },
    { EMSGUARD_R_SESSION, "session could not be inspected" },
    { EMSGUARD_R_EMS_REQUIRED, "Extended Master Secret required" },
    { EMSGUARD_R_GUARD, "TLS1-PRF guard cannot delegate" },
    { EMSGUARD_R_NOT_SET, "policy value not set" },
    { EMSGUARD_R_REG_FILE, "registry file error" },
    { EMSGUARD_R_OPENSSL_SETTING, "OpenSSL refused a mapped setting" },
    { EMSGUARD_R_GUARD_MISSING, "TLS1-PRF guard not in effect" },
    { 0, NULL }
};

/*
 * The library's name is the entry ERR_PACK(lib, 0, 0).  Its code is known
 * only at run time, and it cannot stay 0 in the table: ERR_load_strings()
 * stops at the first entry whose code is 0, taking it for the terminator.
 */
static ERR_STRING_DATA lib_strings[] = {
    { 0, "emsguard" },
    { 0, NULL }
};

/*
 * ERR_load_strings() ORs the library code into each entry and keeps pointers
 * to these tables, which is why the library is linked with -z nodelete.
 */
static void err_init(void)
{
    err_lib = ERR_get_next_error_library();
    lib_strings[0].error = ERR_PACK(err_lib, 0, 0);
    ERR_load_strings(err_lib, lib_strings);
    ERR_load_strings(err_lib, reason_strings);
}

int EMSGUARD_get_error_lib(void)
{
    if (!CRYPTO_THREAD_run_once(&err_once, err_init))
        return 0;
    return err_lib;
}

void emsguard_raise_at(const char *file, int line, const char *func, int reason,
    const char *fmt, ...)
{
    va_list ap;
    int lib = EMSGUARD_get_error_lib();

    ERR_new();
    ERR_set_debug(file, line, func);
    va_start(ap, fmt);
    ERR_vset_error(lib, reason, fmt, ap);
    va_end(ap);
}
