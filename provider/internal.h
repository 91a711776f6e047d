/* SPDX-License-Identifier: Apache-2.0 */
/* Internal declarations shared by emsguard's source files. */
#ifndef EMSGUARD_INTERNAL_H
#define EMSGUARD_INTERNAL_H

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

/* ---- reg_file.c -------------------------------------------------------- */
/*
 * Applies a Windows Registry Editor export (REGEDIT4 or version 5.00, ANSI,
 * UTF-8 or UTF-16LE with BOM) to |policy|.  |name| names the file in
 * messages.  Returns 0 with "name:line: ..." raised on a syntax error or a
 * bad value; |policy| is then unchanged.
 */
int emsguard_reg_apply(EMSGUARD_POLICY *policy, const unsigned char *buf,
    size_t len, const char *name);

/* ---- schannel_map.c ---------------------------------------------------- */
/* The OpenSSL settings one role gets from the Schannel values. */
struct eg_role_cfg {
    int versions_touched;
    int min_version, max_version; /* 0: none left */
    int dtls_touched;
    int dtls_min, dtls_max;
    uint64_t opts_set, opts_clear;
    char ciphers[EG_STRING_MAX + 256]; /* "" leaves OpenSSL's */
    char suites[512];
    int suites_touched;
    const char *groups; /* NULL leaves OpenSSL's */
};
void emsguard_schannel_role_config(const EMSGUARD_POLICY *p, int role,
    struct eg_role_cfg *c);
/* True if the two roles' settings differ (a both-roles ctx then needs them
 * per connection). */
int emsguard_schannel_roles_differ(const EMSGUARD_POLICY *policy);
/* True if any Schannel mapping value is set. */
int emsguard_schannel_any(const EMSGUARD_POLICY *policy);
/* A MinKeyBitLength value, 0 when unset. */
uint32_t emsguard_schannel_min_bits(const EMSGUARD_POLICY *p, eg_key key);
/*
 * Why TLS 1.3 is off though the version range of a role allows it (the
 * suite list leaves no TLS 1.3 suite), as a warning; "" when it is not.
 */
void emsguard_schannel_tls13_off(const EMSGUARD_POLICY *p, char *buf, size_t len);

/* ---- schannel_apply.c -------------------------------------------------- */
/*
 * Applies the Schannel values of |policy| that concern |role| to |ctx| (if
 * |ssl| is NULL) or to |ssl|.  Returns 0 with an error raised if OpenSSL
 * refuses a setting.
 */
int emsguard_schannel_apply(const EMSGUARD_POLICY *policy, int role,
    SSL_CTX *ctx, SSL *ssl);
/* The server settings that exist only per SSL_CTX (cache, DH group). */
int emsguard_schannel_apply_server_ctx(const EMSGUARD_POLICY *policy,
    SSL_CTX *ctx);
/* Security-callback check (DH group a client accepts); 0 refuses. */
int emsguard_schannel_security_ok(const EMSGUARD_POLICY *p, int role, int op,
    void *other);
/* The peer certificate's RSA key size against PKCS MinKeyBitLength. */
int emsguard_schannel_peer_key_ok(const EMSGUARD_POLICY *p, int role,
    X509 *cert);
/*
 * The settings both roles share (cipher suites, groups) on |ctx|: a
 * both-roles ctx whose roles differ in the rest gets these once here.
 */
int emsguard_schannel_apply_shared(const EMSGUARD_POLICY *policy, SSL_CTX *ctx);
/* Raises EMSGUARD_R_OPENSSL_SETTING: OpenSSL refused |what| = |value|; 0. */
int emsguard_schannel_refused(const char *what, const char *value);
/* The ffdhe group a server uses when it must be at least |bits| strong. */
EVP_PKEY *emsguard_schannel_ffdhe_at_least(uint32_t bits);

/* ---- schannel_hold.c --------------------------------------------------- */
/*
 * What the Schannel values hold on every connection, whatever the
 * application sets on the SSL_CTX or the SSL after EMSGUARD_enable() (it
 * replaces what the policy put on the ctx: nginx sets its own protocols,
 * cipher list, session timeout and cache).  The policy only restricts: the
 * application may narrow further, never widen.  Built once at enable.
 *  - At handshake start (emsguard_schannel_hold_ssl): the SSL's protocol
 *    range is intersected with the policy's, the options the policy sets or
 *    clears as a restriction are put back, the server's DH group is the
 *    policy's.
 *  - In the security callback (emsguard_schannel_hold_allows): suites and
 *    groups outside the policy's, and versions outside its range, are
 *    refused wherever libssl asks, also after an SNI switch or a change the
 *    application makes during the handshake.
 */
#define EG_HOLD_MAX_CIPHERS 512
#define EG_HOLD_MAX_GROUPS 16
struct eg_hold_range {
    int touched;
    int min, max; /* 0 min: no version left */
};
struct eg_schannel_hold {
    int active; /* something below is set: on_handshake_start looks */
    int filter; /* the security callback must filter */
    struct {
        struct eg_hold_range tls, dtls;
        uint64_t opts_set, opts_clear; /* put back at handshake start */
        /*
         * A both-roles ctx whose roles differ: options the policy only
         * loosens (AllowInsecureRenego* = 1, DisableRenego* = 0), applied to
         * a connection only where its option is still as the ctx had it at
         * enable, i.e. the application has not chosen since.
         */
        uint64_t loosen_set, loosen_clear;
    } role[2]; /* by eg_role */
    uint64_t opts_at_enable; /* the ctx's options before the policy's */
    int tls12_held, tls13_held; /* the suite lists are the policy's */
    size_t n_ciphers;
    uint16_t ciphers[EG_HOLD_MAX_CIPHERS]; /* allowed protocol IDs, sorted */
    size_t n_groups;
    uint16_t groups[EG_HOLD_MAX_GROUPS]; /* allowed TLS group IDs; none: any */
    uint32_t server_dh_min; /* ServerMinKeyBitLength */
    EVP_PKEY *server_dh; /* the group the server uses, at least that big */
    EVP_PKEY *server_dh_larger[4]; /* the larger ffdhe groups, by size; NULL: none */
    /* Size of the DH group the application set on the ctx after enable (security_cb). */
    _Atomic uint32_t app_dh_bits;
    long server_lifetime; /* ServerCacheTime in s; 0: no limit */
    int server_cache_off; /* ServerCacheTime=0 or MaximumCacheSize=0 */
    long server_cache_max; /* MaximumCacheSize > 0; 0: no limit */
};
/* What had to be put back (or was refused), for the warning. */
#define EG_HELD_VERSIONS 0x1 /* the SSL's protocol range was wider */
#define EG_HELD_OPTIONS 0x2
#define EG_HELD_SUITES 0x4 /* a suite outside the policy's was asked for */
#define EG_HELD_GROUPS 0x8
#define EG_HELD_LATE_VERSION 0x10 /* a version outside the range, during a handshake */
#define EG_HELD_DH 0x20 /* a server DH group below ServerMinKeyBitLength */
#define EG_HELD_LIFETIME 0x40 /* a session lifetime above ServerCacheTime */
#define EG_HELD_CACHE 0x80 /* a server session cache the policy has not */
#define EG_HELD_CACHE_SIZE 0x100 /* ... or one larger than MaximumCacheSize */
#define EG_HELD_NO_CALLBACK 0x200 /* the security callback is not emsguard's */
#define EG_HELD_VERIFY 0x400 /* ... nor the verify callback (PKCS MinKeyBitLength) */
#define EG_HELD_LAST EG_HELD_VERIFY
/*
 * Builds |h| for |ctx| (an SSL of it tells which suites the policy's lists
 * give).  |per_ssl|: the roles differ and nothing role-specific went on the
 * ctx, so every option of the role is put on each connection.  Returns 0
 * with an error raised (allocation, or OpenSSL refused a list).
 */
int emsguard_schannel_hold_init(const EMSGUARD_POLICY *policy, SSL_CTX *ctx,
    int per_ssl, struct eg_schannel_hold *h);
void emsguard_schannel_hold_clear(struct eg_schannel_hold *h);
/* At handshake start: puts the policy back on |ssl|; returns EG_HELD_* bits. */
unsigned emsguard_schannel_hold_ssl(const struct eg_schannel_hold *h, int role,
    SSL *ssl);
/*
 * A TLS <= 1.2 session offered to a server for resumption that the server
 * did not necessarily make under the policy (another fleet member's ticket
 * or cache entry, or one from before a policy change): 1 if its suite and
 * protocol version are the policy's and it is not older than
 * ServerCacheTime.
 */
int emsguard_schannel_hold_session_ok(const struct eg_schannel_hold *h, const SSL *ssl,
    const SSL_SESSION *sess);
/* The same for the age alone (TLS 1.3 tickets). */
int emsguard_schannel_hold_session_fresh(const struct eg_schannel_hold *h,
    const SSL_SESSION *sess);
/* Security-callback check: 0 refuses, with *what set to an EG_HELD_* bit. */
int emsguard_schannel_hold_allows(const struct eg_schannel_hold *h, const SSL *ssl,
    int op, int nid, void *other, unsigned *what);
/*
 * When the security callback that filters suites and groups was replaced:
 * |ssl|'s own suite lists become its current ones minus what the policy
 * leaves out, its groups the policy's.  0 with an error raised.
 */
int emsguard_schannel_hold_suites(const struct eg_schannel_hold *h,
    const EMSGUARD_POLICY *policy, SSL *ssl);
/* |ssl| can negotiate no protocol version at all (fail closed). */
void emsguard_schannel_no_version(SSL *ssl);


/* ---- session_flags.c --------------------------------------------------- */
/*
 * Reads the session flags ([13] EXPLICIT INTEGER) from a DER-encoded
 * SSL_SESSION. Returns 1 and sets *flags (0 when the field is absent), or 0
 * if the encoding is malformed.
 */
int emsguard_der_session_flags(const unsigned char *der, size_t len,
    uint64_t *flags);
/*
 * The EMS bit of |sess|, its own flag as libssl reads it: 1 EMS, 0 no EMS,
 * -1 unreadable (allocation failure, bad encoding).  From the peer memo
 * (keyed by the session's peer certificate object) when it knows the
 * session, else from the session's encoding, which costs a DER encoding of
 * the whole session.  No memo keyed by the master secret answers here: a
 * copy can carry a genuine EMS session's secret with the flag cleared.
 */
int emsguard_session_ems(const SSL_SESSION *sess);
/*
 * The same for a client session about to be offered (and for
 * EMSGUARD_SESSION_has_ems): a bit read from the encoding is remembered for
 * the session's peer certificate, so the next offer is cheap.
 */
int emsguard_session_ems_offered(const SSL_SESSION *sess);
/*
 * Remembers |ems| as the flag of |sess| in the peer memo: only a flag libssl
 * established (a full handshake) or checked (a resumption: against the
 * server's EMS extension) for this object.
 */
void emsguard_session_ems_note_peer(const SSL_SESSION *sess, int ems);
/*
 * Server, a session libssl is about to resume from a ticket or the
 * application's cache (a new object each time): its EMS bit, and the
 * fingerprint of its master secret in *fp for a note at handshake end.
 * A remembered "non-EMS" answers at once.  A remembered "EMS" answers only
 * if |ems_answer_safe|: the ClientHello has EMS and this server did not
 * switch it off, so libssl itself refuses a session whose flag lacks EMS
 * (a full handshake), or the policy refuses EMS sessions anyway.  Otherwise
 * the session's encoding is read.
 */
int emsguard_session_ems_lookup(const SSL_SESSION *sess, int ems_answer_safe,
    uint64_t *fp);
/*
 * A full handshake's new session: remembers |ems|, how its master secret
 * was derived, for the secret's fingerprint.
 */
void emsguard_session_ems_note(const SSL_SESSION *sess, int ems);
/* emsguard_session_ems_note() with the fingerprint already known. */
void emsguard_session_ems_note_fp(uint64_t fp, int ems);
/*
 * A resumption libssl completed with EMS (|ems| 1): puts back an "EMS"
 * entry for the secret if the table lost it, never over a "non-EMS" one
 * (libssl checked the flag against the hello, not the secret's derivation).
 * |fp| 0: computed here.  Does nothing for |ems| != 1.
 */
void emsguard_session_ems_note_resumed(const SSL_SESSION *sess, uint64_t fp, int ems);
/*
 * The EMS bit of a session a handshake just made, read from its encoding
 * (no memo), with the fingerprint of its master secret in *fp.
 */
int emsguard_session_ems_fp(const SSL_SESSION *sess, uint64_t *fp);
/* Only the fingerprint of the session's master secret (0 without a session). */
uint64_t emsguard_session_secret_fp(const SSL_SESSION *sess);

/* ---- records.c -------------------------------------------------------- */
typedef void (*emsguard_info_fn)(const SSL *, int, int);
/*
 * What emsguard keeps per connection.  records.c only stores it; what the
 * fields mean is the hooks' (provider/hooks.h: the CONN_* flags).
 */
struct eg_conn {
    /*
     * The hooks' state that saw the handshake start (struct eg_ctx_state),
     * opaque here.  It holds a reference, which the callback given to
     * emsguard_conn_register() releases when the record goes.
     */
    void *st;
    uintptr_t flags; /* CONN_* */
    emsguard_info_fn app_info_cb; /* the application's per-SSL info callback */
    uintptr_t finished_tag; /* 8 bytes of the last Finished sent */
    /* The session whose EMS bit this handshake looked up, and its fingerprint. */
    const SSL_SESSION *fp_sess;
    uint64_t fp;
};
/*
 * The policy state of |ctx| (opaque here): from the table if it is there,
 * else from |ctx|'s ex_data (where it always is as well).
 */
void *emsguard_ctx_state_find(const SSL_CTX *ctx);
/*
 * Lists |st| (already in |ctx|'s ex_data at |ex_data_idx|, the same index
 * for every ctx) in the table, when a slot is free.
 */
void emsguard_ctx_state_publish(const SSL_CTX *ctx, void *st, int ex_data_idx);
/* Takes |ctx|'s state out of the table: |ctx| is being freed. */
void emsguard_ctx_state_withdraw(const SSL_CTX *ctx);
/* Called with a record that goes (its SSL is freed): releases conn->st. */
typedef void (*emsguard_conn_release_fn)(struct eg_conn *conn);
/*
 * Registers the SSL ex_data index whose callbacks free records, and the
 * function that releases what a record holds; 1 or 0.
 */
int emsguard_conn_register(emsguard_conn_release_fn on_release);
/* |ssl|'s record, or NULL if it has none. */
struct eg_conn *emsguard_conn_find(const SSL *ssl);
/* |ssl|'s record, made (zeroed) if it has none; NULL only out of memory. */
struct eg_conn *emsguard_conn_get(SSL *ssl);
/* The same, for a record that SSL_dup() must copy. */
struct eg_conn *emsguard_conn_get_durable(SSL *ssl);

/* ---- fingerprint.c ----------------------------------------------------- */
/* A keyed 64-bit fingerprint of |secret|; 0 (only) if the RNG failed. */
uint64_t emsguard_fingerprint(const unsigned char *secret, size_t len);

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

/* ---- peer_text.c ------------------------------------------------------- */
/* The peer address of |bio|'s socket ("unknown" without one), for log lines. */
void emsguard_peer_address(BIO *bio, char *buf, size_t len);
/* The SNI host name, from the raw ClientHello on a server ("-": none). */
void emsguard_sni_name(SSL *ssl, char *buf, size_t len);

/* ---- reuse_diagnosis.c ------------------------------------------------- */
/*
 * Client, handshake done after a withheld session: watch the connection
 * until SSL_free(), which prints the diagnosis if the peer then ended it
 * without sending data.  |policy| lives in |policy_ctx| (referenced).
 */
void emsguard_reuse_watch(SSL *ssl, SSL_CTX *policy_ctx, const EMSGUARD_POLICY *policy);
/* A new connection on |ssl| (SSL_clear()): the watched one is over. */
void emsguard_reuse_end(SSL *ssl);
/* This side sent close_notify: if the peer had not, it did not end the connection. */
void emsguard_reuse_close_sent(SSL *ssl);

/* ---- conf_providers.c -------------------------------------------------- */
/* The openssl.cnf key naming emsguard's .reg file in its section. */
#define EG_POLICY_FILE_KEY "PolicyFile"

/* What OpenSSL takes from one line of a providers section. */
struct eg_prov_entry {
    const char *name; /* "identity", else the key after its first '.' */
    const char *section; /* the line's value: the provider's own section */
    const char *module; /* its "module" line, NULL if none */
    char path[PATH_MAX]; /* the file OpenSSL loads for it */
    int has_section; /* |section| exists */
    int activate; /* OpenSSL activates it while loading the file */
    int builtin; /* a provider built into libcrypto: no module is loaded */
};
/*
 * |name| in |section| (NULL: the unnamed one), from the section's list as
 * OpenSSL's module loader reads it; NULL if absent.
 */
const char *emsguard_conf_string(CONF *conf, const char *section, const char *name);
/*
 * Calls |fn| for each provider line of every providers section that
 * openssl_conf leads to, in OpenSSL's order; stops (returning 0) when |fn|
 * or reading a line fails.
 */
typedef int (*eg_conf_entry_fn)(void *arg, CONF *conf, const struct eg_prov_entry *e);
int emsguard_conf_each_provider(CONF *conf, eg_conf_entry_fn fn, void *arg);
/* True when the provider |e| is emsguard; *exists: its module file exists. */
int emsguard_conf_is_emsguard_entry(CONF *conf, const struct eg_prov_entry *e, int *exists);

/* ---- conf_file.c ------------------------------------------------------- */
/*
 * Validates every key of the openssl.cnf section that configures the
 * provider named |prov_name|. Returns 1 when the section was found and valid
 * or could not be found, 0 (with an error raised) when it has a bad key.
 * *checked is set to 1 when the section was found; present[k] to 1 for
 * each key the section sets.  An existing file that cannot be read for
 * lack of memory is an error: the check must not be skipped quietly.
 */
int emsguard_conf_check_section(const char *prov_name, int *checked,
    unsigned char present[EG_KEY_COUNT]);
/*
 * The same for a provider the core passed |passed| (by key, NULL: not
 * passed) and |passed_policy_file|: a section that does not set every
 * passed value as passed is not the one OpenSSL loaded the provider with
 * (the program loaded another file), and is not checked (*checked 0).
 */
int emsguard_conf_check_loaded_section(const char *prov_name,
    const char *const passed[EG_KEY_COUNT], const char *passed_policy_file, int *checked,
    unsigned char present[EG_KEY_COUNT]);
/* Keys OpenSSL itself consumes in a provider section. */
int emsguard_conf_is_reserved_key(const char *name);

/* One emsguard provider line of a configuration file, for messages. */
struct eg_conf_entry {
    char name[128]; /* the provider's name, as OpenSSL names it */
    char section[128];
    char file[512];
    char module[512]; /* its module line, "" if none */
    char path[4096]; /* the file OpenSSL loads for it */
};
struct eg_conf_origin {
    int found; /* an emsguard provider is configured */
    int activated; /* ... and OpenSSL activates it while loading the file */
    struct eg_conf_entry chosen; /* the one whose policy was read */
    struct eg_conf_entry failed; /* the one that stopped the read; name "" if none */
};
/*
 * EMSGUARD_POLICY_from_config() with the details: every provider line of
 * |file| (NULL: the process's own, OPENSSL_CONF or the default; a missing
 * default file is no configuration) that is emsguard has its section
 * parsed as the provider parses it; the first one OpenSSL activates, else
 * the first, replaces |policy|.  For the process's own file an emsguard
 * provider OpenSSL is to activate must also have its module file.  Returns
 * 0 with the reason raised (|policy| unchanged, origin->failed naming the
 * provider when a section or module is at fault).
 */
int emsguard_conf_read_policy(EMSGUARD_POLICY *policy, const char *file,
    struct eg_conf_origin *origin);

/* ---- provider.c -------------------------------------------------------- */
/* Parameter that marks emsguard among a library context's providers. */
#define EMSGUARD_PARAM_MARKER "emsguard-policy-version"
/*
 * Parameter (octet pointer, not gettable) through which a provider instance
 * hands its policy, as it parsed it from the core's parameters, to the
 * library (EMSGUARD_POLICY_from_provider()): an EMSGUARD_POLICY of the
 * emsguard version its marker gives.
 */
#define EMSGUARD_PARAM_POLICY "emsguard-policy"

/* 1 for the default library context (NULL or the global one). */
int emsguard_is_default_libctx(const OSSL_LIB_CTX *libctx);
/*
 * 1 and the provider's name and reason if this image's provider last
 * failed to activate in the default library context, 0 if it did not.
 */
int emsguard_prov_init_failure(char *name, size_t name_len, char *why, size_t why_len);

/* ---- provider_params.c ------------------------------------------------- */
/*
 * Reads and validates every policy key the core has for the provider
 * |handle| into |policy| (defaults first, then the PolicyFile, then the
 * section's keys).  0 with the reason raised.
 */
int emsguard_prov_read_policy(OSSL_FUNC_core_get_params_fn *core_get_params,
    const OSSL_CORE_HANDLE *handle, EMSGUARD_POLICY *policy);
/* The provider's gettable parameters: its own and one per policy key. */
const OSSL_PARAM *emsguard_prov_gettable_params(void);
/*
 * Sets every policy key of |params| that is asked for to its text from
 * |policy| (unset Schannel values as "").  0 on failure.
 */
int emsguard_prov_export_policy(const EMSGUARD_POLICY *policy, OSSL_PARAM params[]);

/* ---- prf_guard.c ------------------------------------------------------- */
typedef enum {
    EG_AUDIT_EMS_DERIVATIONS = 0,
    EG_AUDIT_NON_EMS_DERIVATIONS,
    EG_AUDIT_RESUMED_EXPANSIONS,
    EG_AUDIT_REFUSED,
    EG_AUDIT_LOST_FINGERPRINTS,
    EG_AUDIT_COUNT
} eg_audit;

/*
 * Guard contexts kept for reuse: libssl makes and frees a TLS1-PRF context
 * for every derivation (six per resumed handshake), and making the inner
 * one costs more than the guard's own work.  Lock-free; emptied at teardown.
 */
#define EG_GUARD_POOL_SLOTS 8
typedef struct {
    _Atomic(void *) slot[EG_GUARD_POOL_SLOTS];
} eg_guard_pool;

/*
 * What the TLS1-PRF guard needs of the provider instance that offers it,
 * given at activation.  OpenSSL hands the KDF functions the provider's
 * context: that context must begin with its eg_guard.
 */
typedef struct {
    const EMSGUARD_POLICY *policy; /* the instance's; lives as long as it */
    OSSL_LIB_CTX *child; /* sees the providers of the loading library context */
    _Atomic(EVP_KDF *) inner_prf; /* another provider's, fetched on first use */
    eg_guard_pool pool; /* its contexts use inner_prf */
} eg_guard;

extern const OSSL_DISPATCH emsguard_prf_guard_functions[];
void emsguard_guard_init(eg_guard *guard, const EMSGUARD_POLICY *policy,
    OSSL_LIB_CTX *child);
/* Frees the guard's contexts and KDF (the audit summary waits for process exit). */
void emsguard_guard_teardown(eg_guard *guard);
void emsguard_audit_read(uint64_t out[EG_AUDIT_COUNT]);
/* Logs the one-line audit summary (nothing if EventLogging is 0). */
void emsguard_audit_summary(const EMSGUARD_POLICY *policy, const char *when);

/* ---- fingerprint.c: master secrets between derivation and key expansion -- */
/*
 * Remembers |fp| (from emsguard_fingerprint()), derived when the process's
 * derivation count was |seq|.  Memory is fixed: when the table is full the
 * oldest entry goes (an abandoned handshake's, most likely).  Returns 1 if
 * no fingerprint was lost, 0 if one was (evicted, or |fp| not kept).
 */
int emsguard_fp_remember(uint64_t fp, uint32_t seq);
/* 1 if |fp| was remembered (and forgets it), 0 if not. */
int emsguard_fp_take(uint64_t fp);

/* ---- stats_publish.c: live counters for `emsguard stats` --------------- */
/*
 * Where this process adds its counts: its mapped stats file, or a private
 * page; never NULL.  EMSGUARD_COUNTER and eg_audit order.
 */
extern _Atomic(_Atomic uint64_t *) eg_stats_hooks;
extern _Atomic(_Atomic uint64_t *) eg_stats_audit;
/*
 * Starts publishing (once per process; later calls add |source|,
 * EG_STATS_SRC_* of stats_file.h).  Never fails: without a usable
 * directory it logs one line through |policy| (NULL: defaults).
 */
void emsguard_stats_start(const EMSGUARD_POLICY *policy, unsigned source);

#endif /* EMSGUARD_INTERNAL_H */
