/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The policy: errors, keys and values, the policy object, its rules and
 * warnings, and logging.
 * Included through internal.h, which every source file includes.
 */
#ifndef EMSGUARD_INTERNAL_POLICY_H
#define EMSGUARD_INTERNAL_POLICY_H

#include <stdarg.h>
#include <stdatomic.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include "emsguard.h"

/* ---- errors.c ---------------------------------------------------------- */
/*
 * Raises an emsguard error with |reason| (EMSGUARD_R_*, or an ERR_R_* code
 * such as ERR_R_MALLOC_FAILURE) and a formatted message on the error queue,
 * recording |file|:|line| in |func| as its origin.  Call it through
 * emsguard_raise(reason, fmt, ...), which passes the caller's call site as
 * OpenSSL's ERR_raise_data() does.
 */
void emsguard_raise_at(const char *file, int line, const char *func, int reason,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
#define emsguard_raise(reason, ...) \
    emsguard_raise_at(OPENSSL_FILE, OPENSSL_LINE, OPENSSL_FUNC, (reason), __VA_ARGS__)

/* ---- policy_keys.c ----------------------------------------------------- */
/*
 * Schannel's protocol, cipher, hash and key-exchange subkeys, as X-macro
 * lists: (identifier, registry subkey name).  Each expands to the keys
 * "<Group>\<subkey>\..." below.
 */
#define EG_PROTOCOLS(X) \
    X(SSL30, "SSL 3.0") X(TLS10, "TLS 1.0") X(TLS11, "TLS 1.1") \
    X(TLS12, "TLS 1.2") X(TLS13, "TLS 1.3") X(DTLS10, "DTLS 1.0") \
    X(DTLS12, "DTLS 1.2")
#define EG_CIPHERS(X) \
    X(NULL_, "NULL") X(DES56, "DES 56/56") X(RC2_40, "RC2 40/128") \
    X(RC2_56, "RC2 56/128") X(RC2_128, "RC2 128/128") X(RC4_40, "RC4 40/128") \
    X(RC4_56, "RC4 56/128") X(RC4_64, "RC4 64/128") X(RC4_128, "RC4 128/128") \
    X(TDES, "Triple DES 168") X(TDES168, "Triple DES 168/168") \
    X(AES128, "AES 128/128") X(AES256, "AES 256/256")
#define EG_HASHES(X) \
    X(MD5, "MD5") X(SHA, "SHA") X(SHA256, "SHA256") X(SHA384, "SHA384") \
    X(SHA512, "SHA512")
#define EG_KEXES(X) X(DH, "Diffie-Hellman") X(PKCS, "PKCS") X(ECDH, "ECDH")

typedef enum {
    EG_KEY_DISABLE_SERVER_EMS = 0,
    EG_KEY_DISABLE_CLIENT_EMS,
    EG_KEY_ALLOW_LEGACY_RESUMPTION,
    EG_KEY_EVENT_LOGGING,
    EG_KEY_LOG_TARGET,
    EG_KEY_REQUIRE_EMS,
    EG_KEY_DISABLE_DHE_WITHOUT_EMS,
    /* Schannel values that map to OpenSSL settings; unset = OpenSSL's own. */
    EG_KEY_CLIENT_CACHE_TIME,
    EG_KEY_SERVER_CACHE_TIME,
    EG_KEY_MAX_CACHE_SIZE,
    EG_KEY_INSECURE_RENEGO_CLIENTS,
    EG_KEY_INSECURE_RENEGO_SERVERS,
    EG_KEY_DISABLE_RENEGO_SERVER,
    EG_KEY_DISABLE_RENEGO_CLIENT,
    EG_KEY_FUNCTIONS,
    EG_KEY_ECC_CURVES,
#define EG_X_PROTO(id, reg) EG_KEY_P_##id##_CLIENT_ENABLED, \
    EG_KEY_P_##id##_CLIENT_DBD, EG_KEY_P_##id##_SERVER_ENABLED, \
    EG_KEY_P_##id##_SERVER_DBD,
    EG_PROTOCOLS(EG_X_PROTO)
#undef EG_X_PROTO
#define EG_X_CIPHER(id, reg) EG_KEY_C_##id,
    EG_CIPHERS(EG_X_CIPHER)
#undef EG_X_CIPHER
#define EG_X_HASH(id, reg) EG_KEY_H_##id,
    EG_HASHES(EG_X_HASH)
#undef EG_X_HASH
#define EG_X_KEX(id, reg) EG_KEY_K_##id##_ENABLED, EG_KEY_K_##id##_CLIENT_MIN, \
    EG_KEY_K_##id##_SERVER_MIN,
    EG_KEXES(EG_X_KEX)
#undef EG_X_KEX
    EG_KEY_COUNT
} eg_key;

#define EG_KEY_FIRST_PROTO EG_KEY_P_SSL30_CLIENT_ENABLED
#define EG_KEY_FIRST_CIPHER EG_KEY_C_NULL_
#define EG_KEY_FIRST_HASH EG_KEY_H_MD5
#define EG_KEY_FIRST_KEX EG_KEY_K_DH_ENABLED

typedef enum { EG_LOG_TO_STDERR = 0, EG_LOG_TO_SYSLOG = 1 } eg_log_target;

/* Where a value came from, for `emsguard policy` and diagnostics. */
typedef enum {
    EG_SRC_DEFAULT = 0,
    EG_SRC_REG, /* a .reg file: files[file], line */
    EG_SRC_CONF, /* openssl.cnf: files[file], section and key */
    EG_SRC_PROVIDER, /* the provider's parameters (its openssl.cnf section) */
    EG_SRC_API
} eg_source_kind;

typedef struct {
    uint8_t kind; /* eg_source_kind */
    uint8_t file; /* index into the policy's files[] */
    uint8_t section; /* EG_SRC_CONF: index into sections[] */
    uint32_t line;
} eg_source;

#define EG_MAX_FILES 4
#define EG_MAX_SECTIONS 8
#define EG_STRING_MAX 2048
#define EG_WARNINGS_MAX 4096

struct emsguard_policy_st {
    uint32_t values[EG_KEY_COUNT]; /* LogTarget holds an eg_log_target */
    uint8_t set[EG_KEY_COUNT]; /* given explicitly, not the default */
    eg_source source[EG_KEY_COUNT];
    /* Text keys: Functions and EccCurves as given, and translated. */
    char functions[EG_STRING_MAX];
    char ecc_curves[EG_STRING_MAX];
    char tls12_ciphers[EG_STRING_MAX]; /* Functions, OpenSSL names */
    char tls13_suites[512]; /* Functions, TLS 1.3 names */
    char groups[512]; /* EccCurves, OpenSSL names */
    char files[EG_MAX_FILES][256];
    char sections[EG_MAX_SECTIONS][64]; /* openssl.cnf sections, for reports */
    char warnings[EG_WARNINGS_MAX]; /* newline-separated, kept for reports */
    /*
     * Which registry cipher-suite list Functions holds when a .reg file set
     * it (eg_suite_list): Schannel reads the group-policy list when it is
     * present, else the local one.  For `emsguard policy`.
     */
    uint8_t functions_list;
    /* "file:line" of the last local list read ("" none): in force or overridden. */
    char local_list_at[300];
};

typedef enum {
    EG_LIST_NONE = 0,
    EG_LIST_POLICY, /* SOFTWARE\Policies\...\SSL\00010002 */
    EG_LIST_LOCAL /* SYSTEM\...\Cryptography\Configuration\Local\SSL\00010002 */
} eg_suite_list;

/* The table of keys; names in the order of eg_key. */
const char *emsguard_key_name(eg_key key);
/* What |key| accepts, for error messages ("0 or 1"). */
const char *emsguard_key_accepted(eg_key key);
/* True for keys whose value is a free-text list (Functions, EccCurves). */
int emsguard_key_is_text(eg_key key);
/* True for Schannel keys that mean "OpenSSL's default" while unset. */
int emsguard_key_is_optional(eg_key key);
/* |key|'s default value. */
uint32_t emsguard_key_default(eg_key key);
/* True for keys whose value is a DWORD (not LogTarget, Functions, EccCurves). */
int emsguard_key_is_dword(eg_key key);
/* True when the DWORD |v| is in |key|'s range. */
int emsguard_key_value_ok(eg_key key, uint32_t v);
/* The same, raising a precise error (prefixed by |where|) when it is not. */
int emsguard_key_check_dword(eg_key key, uint32_t v, const char *where);
/*
 * Looks up a key name; returns -1 if unknown.  Registry spelling
 * ("Protocols\TLS 1.2\Server\Enabled") and openssl.cnf spelling
 * ("Protocols.TLS_1.2.Server.Enabled") are both accepted; exact case.
 */
int emsguard_key_lookup(const char *name);
/* The same, ignoring case (registry names are case-insensitive). */
int emsguard_key_lookup_nocase(const char *name);
/* Writes the openssl.cnf spelling of |key| into |buf|. */
void emsguard_key_conf_name(eg_key key, char *buf, size_t len);
/* True if |prefix| (cnf spelling, e.g. "Protocols.TLS_1.2") is a subkey. */
int emsguard_key_is_group(const char *prefix);
/* Raises EMSGUARD_R_UNKNOWN_KEY for |name|, suggesting the closest key. */
void emsguard_raise_unknown_key(const char *where, const char *name);
/* Parses |text| for |key| into *out; raises a precise error on failure. */
int emsguard_parse_value(eg_key key, const char *text, uint32_t *out,
    const char *where);
/* The value text of |key| ("" when unset), for reports and params. */
int emsguard_policy_value_text(const EMSGUARD_POLICY *policy, eg_key key,
    char *buf, size_t len);

/* ---- policy.c ---------------------------------------------------------- */
/* True when |key| was given explicitly, not left at its default. */
static inline int emsguard_policy_is_set(const EMSGUARD_POLICY *p, eg_key key)
{
    return p->set[key];
}
/*
 * Parses and stores |text| as |key|'s value, recording |src| (file given
 * by name; NULL for none).  Text keys are translated (cipher and curve
 * names); names OpenSSL lacks become warnings naming |where|.
 */
int emsguard_policy_store(EMSGUARD_POLICY *policy, eg_key key,
    const char *text, eg_source_kind kind, const char *file,
    uint32_t line, const char *where);
/* Stores a DWORD that came from a binary form (.reg dword:/hex:). */
int emsguard_policy_store_dword(EMSGUARD_POLICY *policy, eg_key key,
    uint32_t value, eg_source_kind kind, const char *file, uint32_t line,
    const char *where);
/* Records the openssl.cnf section a just-stored value came from. */
void emsguard_policy_note_section(EMSGUARD_POLICY *policy, eg_key key,
    const char *section);
/* Marks |key| unset again (a .reg deletion). */
void emsguard_policy_unset(EMSGUARD_POLICY *policy, eg_key key);
/* True when the two policies enforce the same thing (sources ignored). */
int emsguard_policy_equal(const EMSGUARD_POLICY *a, const EMSGUARD_POLICY *b);
void emsguard_policy_defaults(EMSGUARD_POLICY *policy);

/* ---- policy_warnings.c ------------------------------------------------- */
/* Appends a warning line to the policy's report (and nothing else). */
void emsguard_policy_warn(EMSGUARD_POLICY *policy, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/*
 * Logs the stored warnings once per load, each at the level it names
 * ("warning:" or "info:"), so that EventLogging's 2 and 4 bits filter them.
 */
void emsguard_policy_log_warnings(const EMSGUARD_POLICY *policy);
/* Logs, once per load, each value that weakens the default policy. */
void emsguard_policy_log_weakenings(const EMSGUARD_POLICY *policy,
    const char *source);

/* ---- policy_names.c ---------------------------------------------------- */
/*
 * Translates the policy's Functions list (IANA names) into its OpenSSL
 * TLS 1.2 cipher list and TLS 1.3 suites, and EccCurves into its groups.
 * Names OpenSSL lacks become warnings naming |where|; 0 with an error
 * raised when nothing usable is left.
 */
int emsguard_policy_translate_functions(EMSGUARD_POLICY *policy,
    const char *where);
int emsguard_policy_translate_curves(EMSGUARD_POLICY *policy,
    const char *where);
/* True if |list| (':'-separated) holds exactly |item|. */
int emsguard_list_has(const char *list, const char *item);
/* Appends |item| to |buf|, after |sep| unless empty; 0 if it does not fit. */
int emsguard_list_append(char *buf, size_t len, const char *sep, const char *item);

/* ---- policy_rules.c ---------------------------------------------------- */
typedef enum {
    /*
     * The TLS1-PRF guard and the provider: a derivation does not say which
     * role asked for it, so only role-free parts of a rule apply.
     */
    EG_ROLE_UNKNOWN = -1,
    EG_ROLE_CLIENT = 0,
    EG_ROLE_SERVER = 1
} eg_role;

typedef enum {
    EG_ALLOW = 0,
    EG_REFUSE_NO_EMS, /* session lacks EMS, legacy resumption not allowed */
    EG_REFUSE_EMS_DISABLED, /* session has EMS, this role has EMS off */
    EG_REFUSE_UNREADABLE /* could not tell; refuse rather than guess */
} eg_verdict;

/*
 * The resumption rule in one pure function: may a TLS <= 1.2 session whose
 * EMS state is |session_ems| (1, 0, or -1 when unreadable) be resumed by
 * |role|?
 */
eg_verdict emsguard_resumption_verdict(const EMSGUARD_POLICY *policy,
    eg_role role, int session_ems);
/* True when |role| negotiates EMS under |policy|. */
int emsguard_role_uses_ems(const EMSGUARD_POLICY *policy, eg_role role);
/*
 * The Require-EMS rule: must a TLS <= 1.2 handshake of |role| be refused
 * when it has no EMS?  RequireExtendedMasterSecret=1 binds a role only
 * while that role does EMS (Disable{Server,Client}ExtendedMasterSecret=0).
 * EG_ROLE_UNKNOWN (the TLS1-PRF guard): RequireExtendedMasterSecret alone.
 */
int emsguard_policy_requires_ems(const EMSGUARD_POLICY *policy, eg_role role);
/*
 * The DHE rule: must |role| keep TLS_DHE_* suites out of a handshake that
 * negotiates no EMS (|ems_off| true)?  DisableDHEWithoutExtendedMasterSecret.
 */
int emsguard_policy_drops_dhe(const EMSGUARD_POLICY *policy, eg_role role,
    int ems_off);

/* ---- log.c ------------------------------------------------------------- */
typedef enum {
    EG_LEVEL_ERROR = EMSGUARD_LOG_ERRORS,
    EG_LEVEL_WARNING = EMSGUARD_LOG_WARNINGS,
    EG_LEVEL_INFO = EMSGUARD_LOG_INFO,
    EG_LEVEL_DEBUG = 0x100 /* only with EMSGUARD_DEBUG set */
} eg_level;

void emsguard_log(const EMSGUARD_POLICY *policy, eg_level level,
    const char *fmt, ...) __attribute__((format(printf, 3, 4), cold));
/* Whether emsguard_log() would print at |level|: skip costly arguments if not. */
int emsguard_log_wanted(const EMSGUARD_POLICY *policy, eg_level level);

/*
 * When |sess| was made.  The long-returning SSL_SESSION_get_time() is not
 * Y2038-safe and deprecated since 3.4; its time_t form came in 3.3.
 */
static inline time_t emsguard_session_time(const SSL_SESSION *sess)
{
#if OPENSSL_VERSION_NUMBER >= 0x30300000L
    return SSL_SESSION_get_time_ex(sess);
#else
    return (time_t)SSL_SESSION_get_time(sess);
#endif
}

#endif /* EMSGUARD_INTERNAL_POLICY_H */
