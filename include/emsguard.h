/* SPDX-License-Identifier: Apache-2.0 */
/*
 * emsguard -- Schannel's "resume TLS 1.2 only with Extended Master Secret"
 * policy (CVE-2019-1318, KB4528489, RFC 7627 section 5.3) for OpenSSL 3.
 *
 * emsguard.h - public API of libemsguard.  One short comment per function;
 * docs/api.md has the details (what enabling installs, callback chaining,
 * SNI, threads, memory), docs/policy.md the keys and their values.
 *
 * Every function returns 1 on success and 0 on failure unless its comment
 * says otherwise; on failure the reason is on OpenSSL's error queue (library
 * EMSGUARD_get_error_lib(), an EMSGUARD_R_* reason) and the policy or
 * SSL_CTX it was given is unchanged.  An EMSGUARD_POLICY is not locked; an
 * enabled SSL_CTX may be used by any number of threads.
 */
#ifndef EMSGUARD_H
#define EMSGUARD_H

#include <stdint.h>
#include <openssl/ssl.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EMSGUARD_VERSION_STR "0.1.0"

/* Policy value names, as the Schannel registry spells them. */
#define EMSGUARD_DISABLE_SERVER_EMS "DisableServerExtendedMasterSecret"
#define EMSGUARD_DISABLE_CLIENT_EMS "DisableClientExtendedMasterSecret"
#define EMSGUARD_ALLOW_LEGACY_RESUMPTION "AllowLegacyResumption"
#define EMSGUARD_EVENT_LOGGING "EventLogging"
#define EMSGUARD_LOG_TARGET "LogTarget"
#define EMSGUARD_REQUIRE_EMS "RequireExtendedMasterSecret"
#define EMSGUARD_DISABLE_DHE_WITHOUT_EMS "DisableDHEWithoutExtendedMasterSecret"

/* EventLogging bits. */
#define EMSGUARD_LOG_ERRORS 0x1
#define EMSGUARD_LOG_WARNINGS 0x2
#define EMSGUARD_LOG_INFO 0x4

/*
 * Reason codes raised on the OpenSSL error queue (ERR_GET_REASON()), by the
 * library named "emsguard" (ERR_GET_LIB() == EMSGUARD_get_error_lib()).
 * ERR_reason_error_string() gives each its text; the error's data string
 * names the key, value, file or function concerned.  Test for the code,
 * not for the words.
 */
#define EMSGUARD_R_UNKNOWN_KEY 100 /* name is not a policy key */
#define EMSGUARD_R_EMPTY_VALUE 101 /* value is empty */
#define EMSGUARD_R_BAD_VALUE 102 /* not decimal, 0x hex or dword:hex */
#define EMSGUARD_R_TRAILING_GARBAGE 103 /* a number followed by junk */
#define EMSGUARD_R_OUT_OF_RANGE 104 /* a number the key does not allow */
#define EMSGUARD_R_ALREADY_ENABLED 105 /* ctx has a different policy */
#define EMSGUARD_R_INVALID_ARGUMENT 106 /* NULL or unknown argument */
#define EMSGUARD_R_CONFIG_FILE 107 /* openssl.cnf could not be checked */
#define EMSGUARD_R_PROVIDER 108 /* provider params could not be read */
#define EMSGUARD_R_NOT_ENABLED 109 /* ctx has no emsguard policy */
#define EMSGUARD_R_SESSION 110 /* session could not be inspected */
#define EMSGUARD_R_EMS_REQUIRED 111 /* peer without EMS, and it is required */
#define EMSGUARD_R_GUARD 112 /* the TLS1-PRF guard cannot delegate */
#define EMSGUARD_R_NOT_SET 113 /* a Schannel value left to OpenSSL's default */
#define EMSGUARD_R_REG_FILE 114 /* a .reg file cannot be read or parsed */
#define EMSGUARD_R_OPENSSL_SETTING 115 /* OpenSSL refused a mapped setting */
#define EMSGUARD_R_GUARD_MISSING 116 /* the TLS1-PRF guard is not in effect */

/* The OpenSSL library code of emsguard's errors (ERR_GET_LIB()). */
int EMSGUARD_get_error_lib(void);

/*
 * Policies (keys and values: docs/policy.md).
 *
 * EMSGUARD_POLICY_new() returns a policy with the built-in defaults, or NULL
 * on allocation failure; the caller owns it.  EMSGUARD_POLICY_dup() copies
 * one (NULL on failure).  EMSGUARD_POLICY_free() accepts NULL.
 *
 * EMSGUARD_POLICY_set() sets |name| (exact, case-sensitive registry name, or
 * its openssl.cnf spelling) from its text form, parsed exactly as in
 * openssl.cnf.  EMSGUARD_POLICY_set_dword() does the same from a number (not
 * for LogTarget, Functions, EccCurves).
 *
 * EMSGUARD_POLICY_get_dword() reads a DWORD value (EMSGUARD_R_NOT_SET for an
 * unset Schannel value); EMSGUARD_POLICY_get_text() writes any value's text
 * form ("1", "stderr", ...) to |buf|, NUL-terminated.
 *
 * EMSGUARD_POLICY_from_provider() replaces |policy| with the policy of the
 * emsguard provider activated in |libctx| (NULL: the default library
 * context): 1 with *found 1 when there is one, 1 with *found 0 (policy
 * unchanged) when none is configured, 0 when one is configured but not in
 * force (bad section, missing module, failed or missing activation,
 * unreadable file, or an active emsguard provider of another emsguard
 * version, whose policy cannot be read).  For the default library context
 * it first has OpenSSL load the process's configuration.  Details:
 * docs/api.md.
 *
 * EMSGUARD_POLICY_from_config() reads the policy from an openssl.cnf-style
 * |file| (NULL: OPENSSL_CONF or OpenSSL's default) without loading any
 * provider, finding the emsguard section the way OpenSSL finds providers
 * (renamed sections and modules, .include).  1 with *found 1 when an
 * emsguard section exists, 1 with *found 0 when none does, 0 with the reason
 * (file:line for a syntax error) otherwise.  Details: docs/api.md.
 */
typedef struct emsguard_policy_st EMSGUARD_POLICY;

EMSGUARD_POLICY *EMSGUARD_POLICY_new(void);
EMSGUARD_POLICY *EMSGUARD_POLICY_dup(const EMSGUARD_POLICY *policy);
void EMSGUARD_POLICY_free(EMSGUARD_POLICY *policy);
int EMSGUARD_POLICY_set(EMSGUARD_POLICY *policy, const char *name,
    const char *value);
int EMSGUARD_POLICY_set_dword(EMSGUARD_POLICY *policy, const char *name,
    uint32_t value);
int EMSGUARD_POLICY_get_dword(const EMSGUARD_POLICY *policy, const char *name,
    uint32_t *value);
int EMSGUARD_POLICY_get_text(const EMSGUARD_POLICY *policy, const char *name,
    char *buf, size_t buflen);
int EMSGUARD_POLICY_from_provider(EMSGUARD_POLICY *policy,
    OSSL_LIB_CTX *libctx, int *found);
int EMSGUARD_POLICY_from_config(EMSGUARD_POLICY *policy, const char *file,
    int *found);

/*
 * EMSGUARD_POLICY_equal() returns 1 when |a| and |b| have the same values
 * (where a value came from does not count), 0 otherwise or when either is
 * NULL.
 *
 * EMSGUARD_provider_generation() returns a number that changes whenever an
 * emsguard provider of this copy of the library is initialised or torn down
 * in any library context; a caller that keeps a policy read with
 * EMSGUARD_POLICY_from_provider() reads it again when the number changed.
 * One atomic load; thread-safe.
 */
int EMSGUARD_POLICY_equal(const EMSGUARD_POLICY *a, const EMSGUARD_POLICY *b);
uint64_t EMSGUARD_provider_generation(void);

/*
 * Schannel registry exports.
 *
 * EMSGUARD_POLICY_load_reg() applies a Windows Registry Editor export
 * ("REGEDIT4" or "Windows Registry Editor Version 5.00", UTF-16LE or UTF-8)
 * to |policy|.  Only the SCHANNEL key and the cipher suite order policy key
 * (SSL\\00010002) count.  A syntax error or a bad value fails with
 * "file:line: ..." on the error queue (EMSGUARD_R_REG_FILE or the value's own
 * reason) and leaves |policy| unchanged.  Formats, mapping and precedence:
 * docs/policy.md.
 *
 * EMSGUARD_POLICY_get0_warnings() returns the policy's warnings (values with
 * no OpenSSL meaning, unknown suites...), newline-separated, "" if none; the
 * string belongs to the policy.
 */
int EMSGUARD_POLICY_load_reg(EMSGUARD_POLICY *policy, const char *file);
const char *EMSGUARD_POLICY_get0_warnings(const EMSGUARD_POLICY *policy);

/*
 * Reports.
 *
 * EMSGUARD_POLICY_print() writes |policy| to |out| the way `emsguard policy`
 * shows it: every value with its source and effect, the OpenSSL settings
 * each role gets, as in effect in this process, and the warnings.  |flags| 0
 * writes text (for people; may change), EMSGUARD_PRINT_JSON one JSON object
 * (docs/policy.schema.json; member names are stable).  0 with
 * EMSGUARD_R_INVALID_ARGUMENT for a NULL argument, an unknown flag, or a
 * failed write.  Format: docs/api.md.
 */
#define EMSGUARD_PRINT_JSON 0x1
int EMSGUARD_POLICY_print(BIO *out, const EMSGUARD_POLICY *policy,
    unsigned int flags);

/*
 * Enabling the policy on an SSL_CTX.
 *
 * EMSGUARD_enable() applies the policy of the emsguard provider activated in
 * the default library context, or the built-in defaults when no emsguard
 * provider is configured; it never falls back to the defaults for a
 * configured provider that is not in force.  EMSGUARD_enable_ex() names the
 * library context (for an SSL_CTX made with SSL_CTX_new_ex(): OpenSSL 3.0
 * cannot tell it).  EMSGUARD_enable_policy() applies |policy| (copied; the
 * caller keeps it).
 *
 * On failure they return 0 and leave |ctx| exactly as it was.  Enabling again
 * with the same policy changes nothing and returns 1; with a different one
 * it fails with EMSGUARD_R_ALREADY_ENABLED.
 *
 * Set session and info callbacks before enabling, or later through the
 * EMSGUARD_* setters below: a plain libssl setter replaces emsguard's
 * callback.  Enabling empties a server ctx's internal session cache, takes
 * the session-ticket callback slot and always installs a ClientHello
 * callback.  What is installed and what each role does: docs/api.md.
 */
int EMSGUARD_enable(SSL_CTX *ctx);
int EMSGUARD_enable_ex(SSL_CTX *ctx, OSSL_LIB_CTX *libctx);
int EMSGUARD_enable_policy(SSL_CTX *ctx, const EMSGUARD_POLICY *policy);

/* 1 if the policy is enabled on |ctx|, 0 if not. */
int EMSGUARD_CTX_is_enabled(const SSL_CTX *ctx);

/*
 * Chains the application's session-ticket callbacks (the arguments of
 * SSL_CTX_set_session_ticket_cb()) behind emsguard's on a ctx where the
 * policy is enabled.  The application's decrypt callback is asked first; the
 * policy may then only make its answer stricter.
 */
int EMSGUARD_CTX_set_session_ticket_cb(SSL_CTX *ctx,
    SSL_CTX_generate_session_ticket_fn gen_cb,
    SSL_CTX_decrypt_session_ticket_fn dec_cb, void *arg);

/*
 * Setting the application's callbacks after EMSGUARD_enable(), without
 * removing the policy: each stores |cb| where emsguard's own callback calls
 * it, as if it had been set before.  NULL removes the application's
 * callback.  EMSGUARD_R_NOT_ENABLED on a ctx without the policy.
 * EMSGUARD_set_info_callback() is the per-SSL variant.
 */
int EMSGUARD_CTX_sess_set_new_cb(SSL_CTX *ctx,
    int (*new_session_cb)(SSL *ssl, SSL_SESSION *sess));
int EMSGUARD_CTX_sess_set_get_cb(SSL_CTX *ctx,
    SSL_SESSION *(*get_session_cb)(SSL *ssl, const unsigned char *id,
        int idlen, int *copy));
int EMSGUARD_CTX_set_info_callback(SSL_CTX *ctx,
    void (*cb)(const SSL *ssl, int where, int ret));
/*
 * Chains the application's ClientHello callback in front of emsguard's
 * checks; on a ctx without the policy it is SSL_CTX_set_client_hello_cb().
 */
int EMSGUARD_CTX_set_client_hello_cb(SSL_CTX *ctx, SSL_client_hello_cb_fn cb,
    void *arg);
int EMSGUARD_set_info_callback(SSL *ssl,
    void (*cb)(const SSL *ssl, int where, int ret));

/*
 * Reading the application's callbacks back.  On a ctx with the policy
 * OpenSSL's getters return emsguard's own callbacks; these return the
 * application's callback that emsguard calls (NULL if none), so that
 * "prev = get(); set(mine)" chaining works.  Elsewhere they return what
 * libssl holds; NULL for a NULL ctx or ssl.  EMSGUARD_get_info_callback() is
 * the per-SSL variant (NULL: the ctx's callback is used).
 */
int (*EMSGUARD_CTX_sess_get_new_cb(SSL_CTX *ctx))(SSL *ssl, SSL_SESSION *sess);
SSL_SESSION *(*EMSGUARD_CTX_sess_get_get_cb(SSL_CTX *ctx))(SSL *ssl,
    const unsigned char *id, int idlen, int *copy);
void (*EMSGUARD_CTX_get_info_callback(SSL_CTX *ctx))(const SSL *ssl, int where,
    int ret);
void (*EMSGUARD_get_info_callback(const SSL *ssl))(const SSL *ssl, int where,
    int ret);

/*
 * The verify and security callbacks.  emsguard installs its own where
 * KeyExchangeAlgorithms PKCS or Diffie-Hellman MinKeyBitLength values, or a
 * client role with RequireExtendedMasterSecret=1, need them; a plain libssl
 * setter would replace it and remove the check.  These setters take libssl's
 * arguments and store |cb| where emsguard's callback calls it (the plain
 * libssl setters where emsguard installed none).  1, or 0 for a NULL ctx or
 * ssl (EMSGUARD_R_INVALID_ARGUMENT) or when a per-SSL callback cannot be
 * stored.  A callback set on the ctx later also reaches its existing SSLs
 * that have none of their own.  The getters return the application's
 * callback where libssl holds emsguard's, libssl's answer elsewhere; NULL
 * for a NULL ctx or ssl.  Details: docs/api.md.
 */
int EMSGUARD_CTX_set_verify(SSL_CTX *ctx, int mode, SSL_verify_cb cb);
int EMSGUARD_set_verify(SSL *ssl, int mode, SSL_verify_cb cb);
int EMSGUARD_CTX_set_security_callback(SSL_CTX *ctx,
    int (*cb)(const SSL *ssl, const SSL_CTX *ctx, int op, int bits, int nid,
        void *other, void *ex));
/*
 * Where emsguard's verify callback is installed, runs the application's
 * certificate check |cb| from emsguard's, which then checks the peer's key
 * size; elsewhere, and for a NULL |cb|, SSL_CTX_set_cert_verify_callback().
 * 1, or 0 for a NULL ctx.
 */
int EMSGUARD_CTX_set_cert_verify_callback(SSL_CTX *ctx,
    int (*cb)(X509_STORE_CTX *store, void *arg), void *arg);
int EMSGUARD_set_security_callback(SSL *ssl,
    int (*cb)(const SSL *ssl, const SSL_CTX *ctx, int op, int bits, int nid,
        void *other, void *ex));
SSL_verify_cb EMSGUARD_CTX_get_verify_callback(const SSL_CTX *ctx);
SSL_verify_cb EMSGUARD_get_verify_callback(const SSL *ssl);
int (*EMSGUARD_CTX_get_security_callback(const SSL_CTX *ctx))(const SSL *ssl,
    const SSL_CTX *ctx, int op, int bits, int nid, void *other, void *ex);
int (*EMSGUARD_get_security_callback(const SSL *ssl))(const SSL *ssl,
    const SSL_CTX *ctx, int op, int bits, int nid, void *other, void *ex);

/*
 * Counters, per SSL_CTX, since EMSGUARD_enable() (atomic).  Handshakes are
 * counted when they complete; refusals when emsguard refuses a session.
 * What each means and how to read them: docs/operations.md.
 */
typedef enum {
    EMSGUARD_CNT_FULL_HANDSHAKES = 0, /* completed full handshakes */
    EMSGUARD_CNT_RESUMPTIONS, /* completed resumed handshakes */
    EMSGUARD_CNT_REFUSED_NO_EMS, /* session without EMS refused */
    EMSGUARD_CNT_REFUSED_EMS_DISABLED, /* EMS session, role has EMS off */
    EMSGUARD_CNT_REFUSED_UNREADABLE, /* session flags unreadable */
    EMSGUARD_CNT_FULL_WITHOUT_EMS, /* completed TLS<=1.2 full, no EMS */
    EMSGUARD_CNT_ABORTED_INCONSISTENT, /* EMS session, no-EMS ClientHello */
    EMSGUARD_CNT_SESSIONS_NOT_CACHED, /* new non-EMS session not cached */
    EMSGUARD_CNT_TICKETS_WITHHELD, /* no ticket for a non-EMS session */
    EMSGUARD_CNT_POLICY_BYPASSED, /* resumed a forbidden session anyway */
    EMSGUARD_CNT_REJECTED_NO_EMS, /* Client- or ServerHello without EMS, EMS required */
    /* Server: refused after the handshake; the SSL's initial SSL_CTX (before
     * an SNI switch to this one) let through what this ctx refuses. */
    EMSGUARD_CNT_REFUSED_SNI_SWITCH,
    /* Server: a ticket or external-cache session outside the policy's
     * Schannel values (suite, version, age): full handshake instead. */
    EMSGUARD_CNT_REFUSED_SCHANNEL,
    EMSGUARD_CNT_MAX
} EMSGUARD_COUNTER;

/* Reads one counter into *value. */
int EMSGUARD_CTX_get_counter(const SSL_CTX *ctx, EMSGUARD_COUNTER which,
    uint64_t *value);
/* A stable lower-case name for a counter ("full_handshakes"), or NULL. */
const char *EMSGUARD_counter_name(EMSGUARD_COUNTER which);

/*
 * Sets *has_ems to 1 if |sess| was established with Extended Master Secret,
 * 0 if not (read from the session's own flags; OpenSSL 3.0 has no getter).
 */
int EMSGUARD_SESSION_has_ems(const SSL_SESSION *sess, int *has_ems);

/*
 * The provider's TLS1-PRF guard (docs/guard.md): selected in openssl.cnf with
 * default_properties = ?emsguard.guard=yes, it counts every TLS <= 1.2
 * master secret of the process and, with RequireExtendedMasterSecret=1,
 * refuses those without EMS.
 *
 * EMSGUARD_audit_get() reads one process-wide counter (0 until the guard has
 * run).  EMSGUARD_audit_log() writes the summary line now, through the
 * policy of the emsguard provider in the default library context; it is
 * also written once when the process exits, if the guard was used.
 */
typedef enum {
    EMSGUARD_AUDIT_EMS_DERIVATIONS = 0, /* master secrets with EMS */
    EMSGUARD_AUDIT_NON_EMS_DERIVATIONS, /* master secrets without EMS */
    EMSGUARD_AUDIT_RESUMPTIONS, /* key expansions without a derivation */
    EMSGUARD_AUDIT_REFUSED, /* derivations refused (EMS required) */
    /* Fingerprints the guard's fixed table had to drop (abandoned handshakes,
     * or more in flight than it holds): RESUMPTIONS is high by at most this;
     * exact while it is 0. */
    EMSGUARD_AUDIT_LOST_FINGERPRINTS,
    EMSGUARD_AUDIT_MAX
} EMSGUARD_AUDIT_COUNTER;

int EMSGUARD_audit_get(EMSGUARD_AUDIT_COUNTER which, uint64_t *value);
int EMSGUARD_audit_log(void);

#ifdef __cplusplus
}
#endif
#endif /* EMSGUARD_H */
