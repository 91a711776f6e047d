/*
 * emsguard's errors on OpenSSL's error queue: one dynamically allocated
 * library code, named "emsguard", with a reason string per EMSGUARD_R_*.
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
    ERR_load_strings(err_lib, lib_strings);
    ERR_load_strings(err_lib, reason_strings);
}

int EMSGUARD_get_error_lib(void)
{
    if (!CRYPTO_THREAD_run_once(&err_once, err_init))
        return 0;
    return err_lib;
}

void emsguard_raise(int reason, const char *fmt, ...)
{
    va_list ap;
    int lib = EMSGUARD_get_error_lib();

    ERR_new();
    ERR_set_debug(OPENSSL_FILE, OPENSSL_LINE, "emsguard");
    va_start(ap, fmt);
    ERR_vset_error(lib, reason, fmt, ap);
    va_end(ap);
}
