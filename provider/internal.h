/* Internal declarations shared by emsguard's source files. */
#ifndef EMSGUARD_INTERNAL_H
#define EMSGUARD_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/core.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include "emsguard.h"

/* ---- errors.c ---------------------------------------------------------- */
/* Raises an emsguard error with a formatted message on the error queue. */
void emsguard_raise(int reason, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- policy.c ---------------------------------------------------------- */
typedef enum {
    EG_KEY_DISABLE_SERVER_EMS = 0,
    EG_KEY_DISABLE_CLIENT_EMS,
    EG_KEY_ALLOW_LEGACY_RESUMPTION,
    EG_KEY_EVENT_LOGGING,
    EG_KEY_LOG_TARGET,
    EG_KEY_REQUIRE_EMS,
    EG_KEY_COUNT
} eg_key;

typedef enum { EG_LOG_TO_STDERR = 0, EG_LOG_TO_SYSLOG = 1 } eg_log_target;

struct emsguard_policy_st {
    uint32_t values[EG_KEY_COUNT]; /* LogTarget holds an eg_log_target */
};

/* The table of keys; names in the order of eg_key. */
const char *emsguard_key_name(eg_key key);
/* What |key| accepts, for error messages ("0 or 1"). */
const char *emsguard_key_accepted(eg_key key);
/* Looks up an exact, case-sensitive key name; returns -1 if unknown. */
int emsguard_key_lookup(const char *name);
/* Raises EMSGUARD_R_UNKNOWN_KEY for |name|, suggesting the closest key. */
void emsguard_raise_unknown_key(const char *where, const char *name);
/* Parses |text| for |key| into *out; raises a precise error on failure. */
int emsguard_parse_value(eg_key key, const char *text, uint32_t *out,
    const char *where);
void emsguard_policy_defaults(EMSGUARD_POLICY *policy);
/* Logs, once per load, each value that weakens the default policy. */
void emsguard_policy_log_weakenings(const EMSGUARD_POLICY *policy,
    const char *source);

typedef enum { EG_ROLE_CLIENT = 0, EG_ROLE_SERVER = 1 } eg_role;

typedef enum {
    EG_ALLOW = 0,
    EG_REFUSE_NO_EMS, /* session lacks EMS, legacy resumption not allowed */
    EG_REFUSE_EMS_DISABLED, /* session has EMS, this role has EMS off */
    EG_REFUSE_UNREADABLE /* could not tell; refuse rather than guess */
} eg_verdict;

/*
 * The whole policy in one pure function: may a TLS <= 1.2 session whose EMS
 * state is |session_ems| (1, 0, or -1 when unreadable) be resumed by |role|?
 */
eg_verdict emsguard_resumption_verdict(const EMSGUARD_POLICY *policy,
    eg_role role, int session_ems);
/* True when |role| negotiates EMS under |policy|. */
int emsguard_role_uses_ems(const EMSGUARD_POLICY *policy, eg_role role);

/* ---- session_flags.c --------------------------------------------------- */
/*
 * Reads the session flags ([13] EXPLICIT INTEGER) from a DER-encoded
 * SSL_SESSION. Returns 1 and sets *flags (0 when the field is absent), or 0
 * if the encoding is malformed.
 */
int emsguard_der_session_flags(const unsigned char *der, size_t len,
    uint64_t *flags);
/* 1 EMS, 0 no EMS, -1 unreadable (allocation failure, bad encoding). */
int emsguard_session_ems(const SSL_SESSION *sess);

/* ---- log.c ------------------------------------------------------------- */
typedef enum {
    EG_LEVEL_ERROR = EMSGUARD_LOG_ERRORS,
    EG_LEVEL_WARNING = EMSGUARD_LOG_WARNINGS,
    EG_LEVEL_INFO = EMSGUARD_LOG_INFO,
    EG_LEVEL_DEBUG = 0x100 /* only with EMSGUARD_DEBUG set */
} eg_level;

void emsguard_log(const EMSGUARD_POLICY *policy, eg_level level,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- conf_file.c ------------------------------------------------------- */
/*
 * Validates every key of the openssl.cnf section that configures the
 * provider named |prov_name|. Returns 1 when the section was found and valid
 * or could not be found, 0 (with an error raised) when it has a bad key.
 * *checked is set to 1 when the section was found.
 */
int emsguard_conf_check_section(const char *prov_name, int *checked);
/* Keys OpenSSL itself consumes in a provider section. */
int emsguard_conf_is_reserved_key(const char *name);

/* ---- provider.c -------------------------------------------------------- */
/* Parameter that marks emsguard among a library context's providers. */
#define EMSGUARD_PARAM_MARKER "emsguard-policy-version"

typedef struct eg_provctx_st eg_provctx;
const EMSGUARD_POLICY *emsguard_prov_policy(const eg_provctx *prov);
/*
 * The TLS1-PRF the guard delegates to: another provider's, fetched once
 * from the provider's child library context.  NULL (error raised) if none.
 */
EVP_KDF *emsguard_prov_inner_prf(eg_provctx *prov);

/* ---- prf_guard.c ------------------------------------------------------- */
typedef enum {
    EG_AUDIT_EMS_DERIVATIONS = 0,
    EG_AUDIT_NON_EMS_DERIVATIONS,
    EG_AUDIT_RESUMED_EXPANSIONS,
    EG_AUDIT_REFUSED,
    EG_AUDIT_COUNT
} eg_audit;

extern const OSSL_DISPATCH emsguard_prf_guard_functions[];
void emsguard_audit_read(uint64_t out[EG_AUDIT_COUNT]);
/* Logs the one-line audit summary (nothing if EventLogging is 0). */
void emsguard_audit_summary(const EMSGUARD_POLICY *policy, const char *when);

#endif /* EMSGUARD_INTERNAL_H */
