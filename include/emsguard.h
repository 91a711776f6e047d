/*
 * emsguard -- Schannel's "resume TLS 1.2 only with Extended Master Secret"
 * policy (CVE-2019-1318, KB4528489, RFC 7627 section 5.3) for OpenSSL 3.
 *
 * NAME
 *   emsguard.h - public API of libemsguard
 *
 * DESCRIPTION
 *   A TLS 1.2 (or DTLS 1.2) session is resumed only if it was established
 *   with the Extended Master Secret extension.  A peer without EMS still
 *   connects, but always with a full handshake and without an alert; the
 *   non-EMS session it gets is never made resumable (not cached, no ticket).
 *   TLS 1.3 is not affected: EMS is part of its key schedule.
 *
 *   The policy is a handful of registry-style DWORD values, named as in
 *   HKLM\System\CurrentControlSet\Control\SecurityProviders\Schannel:
 *
 *     DisableServerExtendedMasterSecret  default 0. 1: the server role
 *                                         neither offers nor accepts EMS;
 *                                         it then resumes only non-EMS
 *                                         sessions (Schannel's legacy mode)
 *                                         and gives EMS sessions a full
 *                                         handshake instead of an abort.
 *     DisableClientExtendedMasterSecret  default 0. The same for the
 *                                         client role.
 *     AllowLegacyResumption               default 0. 1: stock OpenSSL
 *                                         behaviour (non-EMS sessions may
 *                                         resume). An interop exception,
 *                                         logged when the policy is loaded.
 *     EventLogging                        default 1. Schannel bitmask of
 *                                         what is logged: 1 errors,
 *                                         2 warnings, 4 informational.
 *
 *   and one emsguard-specific key that is not a DWORD:
 *
 *     LogTarget                           "stderr" (default) or "syslog".
 *
 *   DWORD values are written in decimal, as 0x-prefixed hex, or in the
 *   regedit form dword:XXXXXXXX (1 to 8 hex digits).  Anything else -- an
 *   unknown name, an empty value, trailing garbage, a value out of the key's
 *   range -- is an error; emsguard never falls back to a weaker policy.
 *
 * WHAT IS LOGGED, AND AT WHICH EVENTLOGGING LEVEL
 *   1 (error)   an aborted resumption (EMS session offered without EMS),
 *               a resumption that bypassed the policy, and load-time notices
 *               that a policy value weakens the default (AllowLegacyResumption,
 *               Disable...ExtendedMasterSecret).
 *   2 (warning) every refused resumption: one line with role, reason, peer
 *               address (when the transport has one) and SNI.
 *   4 (info)    a non-EMS session that was not cached, a withheld ticket.
 *   Setting the environment variable EMSGUARD_DEBUG=1 adds debug lines.
 *
 * ERRORS
 *   Every function returns 1 on success and 0 on failure unless said
 *   otherwise.  On failure the reason is on OpenSSL's error queue, raised by
 *   the library "emsguard" (see EMSGUARD_get_error_lib()) with one of the
 *   EMSGUARD_R_* reason codes and a message naming the key, the value and
 *   what is accepted.
 *
 * THREADS
 *   An EMSGUARD_POLICY is not locked: do not change one that another thread
 *   reads.  An SSL_CTX with the policy enabled may be used by any number of
 *   threads, as usual with OpenSSL; the counters are atomic.
 *
 * MEMORY
 *   emsguard keeps nothing per session: a cached session is as large as
 *   without it.  Per connection it keeps a 56-byte record, in a fixed
 *   process-wide table of 1024 (64 KiB, allocated nothing per connection)
 *   or, for connections beyond that and for one given a per-SSL callback
 *   with EMSGUARD_set_info_callback(), on the heap as the SSL's ex_data.
 *   The record holds a reference on the SSL_CTX whose policy it applies,
 *   and goes, with the reference, when the SSL is freed.  A per-SSL verify or security
 *   callback set with EMSGUARD_set_verify() or
 *   EMSGUARD_set_security_callback() takes 24 bytes more, in ex_data.  The
 *   policy state of each SSL_CTX lives in the SSL_CTX's ex_data and goes
 *   with it.
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

/* Reason codes raised on the OpenSSL error queue. */
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
 * Policies.
 *
 * EMSGUARD_POLICY_new() returns a policy with the built-in defaults, or NULL
 * on allocation failure.  EMSGUARD_POLICY_dup() copies one.
 * EMSGUARD_POLICY_free() accepts NULL.
 *
 * EMSGUARD_POLICY_set() sets |name| (exact, case-sensitive registry name) from
 * its text form, exactly as a value in openssl.cnf is parsed.  On error the
 * policy is unchanged.  EMSGUARD_POLICY_set_dword() does the same from a
 * number (not for LogTarget).
 *
 * EMSGUARD_POLICY_get_dword() reads a DWORD value; EMSGUARD_POLICY_get_text()
 * writes any value's text form ("1", "stderr", ...) to |buf|, NUL-terminated.
 *
 * EMSGUARD_POLICY_from_provider() replaces |policy| with the policy of the
 * emsguard provider activated in |libctx| (NULL: the default library
 * context).  It returns 1 and sets *found to 1 when such a provider exists,
 * returns 1 and sets *found to 0 (policy unchanged) when none does.
 * For the default library context (NULL, or the one
 * OSSL_LIB_CTX_get0_global_default() returns) it first has OpenSSL load the
 * process's configuration, as SSL_CTX_new() would, and, when no emsguard
 * provider is active there, lets that configuration decide instead of
 * answering "none": it fails (returns 0, the reason on the error queue,
 * |policy| unchanged) when this library's provider failed to activate in
 * that context (whatever file configured it), when the configuration file
 * (OPENSSL_CONF or OpenSSL's default) has an emsguard provider with a bad
 * section (unknown key, bad value, unreadable PolicyFile: file, section,
 * key and what is accepted are named) or a module file that does not
 * exist, when that file activates an emsguard provider that is not active
 * (OpenSSL could not load it, the program did not load the configuration,
 * or unloaded the provider), and when the file cannot be read; an emsguard
 * section that OpenSSL does not activate (no "activate" line) gives its
 * values (*found 1), as it does to the preload library.  Other library
 * contexts are answered from their active providers only: OpenSSL 3.0
 * cannot say which file was loaded into them.
 *
 * EMSGUARD_POLICY_from_config() reads the policy from an openssl.cnf-style
 * file (NULL: the file OpenSSL itself would read, OPENSSL_CONF or the
 * default; a missing default file counts as no configuration, as in
 * OpenSSL) without loading any provider.  It finds the providers as
 * OpenSSL 3 does: every [openssl_init] line that runs the providers module
 * ("providers", "providers.2", ...), every line of those sections, the
 * provider named by the key (after its first '.') or by "identity", its
 * module from "module" or <name>.so, a relative path under OPENSSL_MODULES
 * or libcrypto's modules directory; .include directives are followed.  A
 * provider is emsguard when it is named "emsguard", its module file is
 * named emsguard* or libemsguard*, its section has a key only emsguard
 * has (RequireExtendedMasterSecret, AllowLegacyResumption, PolicyFile, any
 * ...ExtendedMasterSecret), or its module file is this library (through
 * any link) or a copy of emsguard under another name.  Every emsguard
 * section is parsed exactly as the provider parses it (unknown keys and bad
 * values fail); the first one OpenSSL activates, else the first one, gives
 * the policy.  With |file| NULL (the process's own configuration) an
 * emsguard provider that OpenSSL is to activate must also have its module
 * file, or the call fails naming it; a file named explicitly (the preload's
 * EMSGUARD_CONF) is only parsed.  It returns 1 and sets *found to 1 when an
 * emsguard section exists, 1 with *found 0 (policy unchanged) when the file
 * configures no emsguard provider, and 0 with the reason -- file:line for a
 * syntax error -- on the error queue otherwise; |policy| is unchanged on
 * error.
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
 * (what EMSGUARD_enable_policy() compares before it answers
 * EMSGUARD_R_ALREADY_ENABLED; where a value came from does not count), 0
 * otherwise or when either is NULL.
 *
 * EMSGUARD_provider_generation() returns a number that changes whenever an
 * emsguard provider of this copy of the library is initialised (loaded or
 * activated, successfully or not) or torn down (unloaded) in any library
 * context of this process; it says nothing else.  A caller that keeps a
 * policy read with EMSGUARD_POLICY_from_provider() reads it again when the
 * number differs from the one it saw before reading (libemsguard-preload.so
 * does, at every SSL_CTX_new()).  An emsguard module loaded from another
 * file than this library (a copy, not a link) has its own number.  One
 * atomic load; thread-safe.
 */
int EMSGUARD_POLICY_equal(const EMSGUARD_POLICY *a, const EMSGUARD_POLICY *b);
uint64_t EMSGUARD_provider_generation(void);

/*
 * Schannel registry exports.
 *
 * EMSGUARD_POLICY_load_reg() applies a Windows Registry Editor export to
 * |policy|: "REGEDIT4" (ANSI) or "Windows Registry Editor Version 5.00"
 * (UTF-16LE with a byte-order mark, as regedit writes it, or UTF-8).  CRLF,
 * ';' comments, '\' continuations, [-KEY] and "Value"=- deletions, and
 * dword:, hex:, hex(b): (QWORD) and hex(7): (multi-string) data are read as
 * regedit writes them; key paths and value names are case-insensitive.
 * Only two keys matter:
 *   HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL
 *   HKEY_LOCAL_MACHINE\SOFTWARE\Policies\Microsoft\Cryptography\Configuration\SSL\00010002
 * (HKLM may be abbreviated).  Values elsewhere are ignored, with one
 * informational line; a value inside them that has no OpenSSL meaning is a
 * warning naming file:line; a syntax error or a bad value fails with
 * EMSGUARD_R_REG_FILE (or the value's own reason) and "file:line: ..." on
 * the error queue, and leaves |policy| unchanged.  Warnings are logged when
 * the policy is enabled or the provider loads, and kept in the policy
 * (EMSGUARD_POLICY_get0_warnings(): newline-separated, "" if none).
 *
 * The Schannel values that map to OpenSSL settings (the README has the
 * table) use registry paths relative to the SCHANNEL key as names, e.g.
 * "Protocols\\TLS 1.2\\Server\\Enabled", "Ciphers\\RC4 128/128\\Enabled",
 * "KeyExchangeAlgorithms\\Diffie-Hellman\\ClientMinKeyBitLength",
 * "ClientCacheTime", "Functions", "EccCurves"; EMSGUARD_POLICY_set() also
 * accepts the openssl.cnf spelling ("Protocols.TLS_1.2.Server.Enabled").
 * While unset they leave OpenSSL's own settings alone, and
 * EMSGUARD_POLICY_get_dword() fails for them with EMSGUARD_R_NOT_SET.
 *
 * Precedence, lowest first: built-in defaults, the provider's PolicyFile,
 * the provider's openssl.cnf keys, then API calls in the order made.
 */
int EMSGUARD_POLICY_load_reg(EMSGUARD_POLICY *policy, const char *file);
const char *EMSGUARD_POLICY_get0_warnings(const EMSGUARD_POLICY *policy);

/*
 * Reports.
 *
 * EMSGUARD_POLICY_print() writes |policy| to |out| the way `emsguard
 * policy` shows it: every value (Schannel values only when set) with its
 * source -- "built-in default", "FILE [SECTION] KEY" for openssl.cnf,
 * "FILE:LINE" for a .reg file, the provider's parameters, or the API -- and
 * what it makes emsguard or OpenSSL do; then the OpenSSL settings each role
 * gets (Options, MinProtocol/MaxProtocol, CipherString, Ciphersuites,
 * Groups, session cache, DH and key-size checks), in openssl.cnf terms; then
 * the warnings.  Extended Master Secret is reported as in effect in this
 * process: a fresh SSL_CTX of each role shows whether OpenSSL's own
 * configuration (openssl.cnf ssl_conf system_default, "Options =
 * -ExtendedMasterSecret") switches it off, which emsguard does not undo; the
 * role's settings then show "-ExtendedMasterSecret" and an
 * "ExtendedMasterSecret" entry saying why, plus a warning.  |flags| 0 writes
 * text; EMSGUARD_PRINT_JSON writes one JSON
 * object instead:
 *   {"values": [{"key", "conf_key", "value" (string, or null while a
 *                Schannel value is unset), "source": {"kind":
 *                "default"|"reg"|"conf"|"provider"|"api", "file", "line"
 *                (reg), "section" (conf)}, "maps_to"}, ...],
 *    "openssl": {"server": {NAME: VALUE, ...}, "client": {...}},
 *    "warnings": [LINE, ...]}
 * The text form is for people and may change; the JSON member names are
 * stable.  Returns 0 with EMSGUARD_R_INVALID_ARGUMENT for a NULL argument,
 * an unknown flag, or a failed write.
 */
#define EMSGUARD_PRINT_JSON 0x1
int EMSGUARD_POLICY_print(BIO *out, const EMSGUARD_POLICY *policy,
    unsigned int flags);

/*
 * Enabling the policy on an SSL_CTX.
 *
 * EMSGUARD_enable() applies the policy of the emsguard provider activated in
 * the default library context, or the built-in defaults when neither an
 * active provider nor the process's openssl.cnf configures one.  It never
 * falls back to the defaults for a configured emsguard provider that is not
 * in force: with a bad section, a missing module, a failed activation or a
 * configuration the program did not load, it fails with the reason (see
 * EMSGUARD_POLICY_from_provider()).  OpenSSL 3.0 has no way to ask an
 * SSL_CTX for its library context, so an SSL_CTX made with SSL_CTX_new_ex()
 * on another library context should use EMSGUARD_enable_ex() and name it;
 * for such a context only its active providers count.
 *
 * EMSGUARD_enable_policy() applies an explicit policy (copied; the caller
 * keeps |policy|).
 *
 * All three return 1 on success.  On failure they return 0, leave |ctx|
 * exactly as it was and put the reason on the error queue.  Enabling a ctx a
 * second time with the same policy changes nothing and returns 1; with a
 * different policy it fails with EMSGUARD_R_ALREADY_ENABLED.
 *
 * What it installs on |ctx|, and how the application's own callbacks fare:
 *  - new-session, get-session and info callbacks: the ones already set are
 *    chained (called by emsguard's).  To set them after EMSGUARD_enable(),
 *    use EMSGUARD_CTX_sess_set_new_cb(), EMSGUARD_CTX_sess_set_get_cb() and
 *    EMSGUARD_CTX_set_info_callback(): a plain SSL_CTX_sess_set_*_cb() or
 *    SSL_CTX_set_info_callback() call replaces emsguard's and removes the
 *    policy.  (libemsguard-preload.so redirects those calls for you.)
 *  - the remove-session callback and ticket key callbacks are not touched.
 *  - the internal session cache of a server ctx is emptied (without calling
 *    the remove-session callback), because libssl resumes from it without
 *    asking any callback: a session cached before the policy could otherwise
 *    bypass it.  Enable the policy before the ctx serves connections.
 *  - the session-ticket callbacks (SSL_CTX_set_session_ticket_cb()):
 *    OpenSSL 3.0 offers no way to read them back, so emsguard takes that slot;
 *    applications that need them call EMSGUARD_CTX_set_session_ticket_cb()
 *    after EMSGUARD_enable(), which chains them.
 *  - a per-SSL info callback set with SSL_set_info_callback() hides the
 *    ctx's, and with it the client-side session filter and the counters:
 *    set it with EMSGUARD_set_info_callback() instead.
 *  - verify and security callbacks, where a Schannel minimum key size or
 *    RequireExtendedMasterSecret=1 needs them: the ones already set are
 *    chained; set them later with EMSGUARD_CTX_set_verify(),
 *    EMSGUARD_set_verify(), EMSGUARD_CTX_set_security_callback(),
 *    EMSGUARD_set_security_callback() and, for a certificate check of the
 *    application's own, EMSGUARD_CTX_set_cert_verify_callback() (the
 *    preload redirects the plain setters).
 *
 * Server role: a non-EMS session (internal cache, external cache callbacks or
 * a ticket, including tickets from other processes sharing the ticket keys)
 * is never resumed; the client gets a full handshake.  A ClientHello without
 * EMS that offers an EMS session is aborted with handshake_failure, as RFC
 * 7627 section 5.3 requires.  A new session without EMS is removed from the
 * cache, not passed to the application's new-session callback, and gets no
 * ticket.
 *
 * Client role: a non-EMS session set with SSL_set_session() is not offered;
 * the connection does a full handshake instead.
 *
 * A client whose refused non-EMS resumption is followed by the peer closing
 * the connection without sending data logs, at error level, that the peer
 * requires session reuse (FTPS servers with require_ssl_reuse do this).
 * A connection the client itself ends first (it sends close_notify before
 * the peer does) is not diagnosed: that is an ordinary close.
 *
 * Server role, from the ClientHello callback emsguard always installs
 * (OpenSSL 3.0 cannot read back a ClientHello callback set before, so an
 * application sets its own with EMSGUARD_CTX_set_client_hello_cb(); one set
 * before EMSGUARD_enable() is replaced):
 *  - a renegotiation ClientHello that adds or drops EMS relative to the
 *    connection's previous ClientHello is rejected with handshake_failure
 *    (counted as aborted_inconsistent); a client that offers EMS every time
 *    renegotiates also with a server that has EMS switched off.  An SSL
 *    reset with SSL_clear() for a new connection starts without an
 *    established handshake;
 *  - DisableDHEWithoutExtendedMasterSecret=1 (default): for a ClientHello
 *    without EMS, TLS_DHE_* suites are taken out of that connection's list
 *    when the client shares another suite the server's key can use.  A
 *    client role that does not offer EMS drops TLS_DHE_* itself;
 *  - RequireExtendedMasterSecret=1, server role with EMS enabled: no
 *    TLS <= 1.2 handshake completes without EMS (counted as
 *    rejected_no_ems, with EMSGUARD_R_EMS_REQUIRED on the error queue).  A
 *    ClientHello without EMS, or any ClientHello while
 *    SSL_OP_NO_EXTENDED_MASTER_SECRET is set on the SSL, is rejected with
 *    handshake_failure before any key exchange -- unless it lists TLS 1.3
 *    and the SSL can negotiate TLS 1.3 at all: then the SSL's minimum
 *    version becomes TLS 1.3 for that handshake, so it ends in TLS 1.3 or
 *    fails with protocol_version (a method fixed to TLS 1.2, a certificate
 *    TLS 1.3 cannot use); a ClientHello that lists no older version needs
 *    no change.  The minimum the SSL had comes back at its next ClientHello
 *    (SSL_clear()).  Enabling fails with EMSGUARD_R_EMS_REQUIRED
 *    on a ctx that can serve and already has SSL_OP_NO_EXTENDED_MASTER_SECRET
 *    (from the application, or `Options = -ExtendedMasterSecret` in
 *    openssl.cnf).
 *
 * Client role, RequireExtendedMasterSecret=1 with EMS enabled for the role
 * (with DisableClientExtendedMasterSecret=1 Require=1 does not apply to the
 * client role, as for the server role), from a security callback (see
 * below):
 *  - a TLS <= 1.2 full handshake whose ServerHello did not agree to EMS
 *    fails at the server's ServerKeyExchange, before the client sends its
 *    key exchange or Finished: a fatal alert (illegal_parameter for ECDHE,
 *    handshake_failure for DHE), EMSGUARD_R_EMS_REQUIRED on the error
 *    queue, an error line "role=client rejected ServerHello:
 *    reason=ems-required ..." and the rejected_no_ems counter.  This holds
 *    for a connection with SSL_OP_NO_EXTENDED_MASTER_SECRET set as well: it
 *    cannot get EMS, so its TLS <= 1.2 handshakes fail, saying so;
 *  - TLS <= 1.2 suites without a ServerKeyExchange -- RSA key exchange,
 *    plain PSK, RSA-PSK (and SRP) -- give OpenSSL's client no callback after
 *    the ServerHello that can stop the handshake, so they are not offered:
 *    a server that has no (EC)DHE suite fails the handshake (the server
 *    sends handshake_failure).  TLS 1.3 is not affected;
 *  - a resumption is checked by libssl itself (the ServerHello must agree
 *    with the session's EMS), and a session without EMS is never offered,
 *    even with AllowLegacyResumption=1;
 *  - the check runs in the SSL's security callback: one set after
 *    EMSGUARD_enable() (SSL_CTX_set_security_callback(),
 *    SSL_set_security_callback()), or an SSL made before it, cannot run it,
 *    so such a connection is held to TLS 1.3, with an error line.
 *
 * Schannel values (see EMSGUARD_POLICY_load_reg()) are applied to |ctx|
 * once; when the ctx can play both roles and the roles' settings differ,
 * they are applied to each connection at handshake start.  If OpenSSL
 * refuses a mapped setting, enabling fails and |ctx| is unchanged.  The
 * minimum key sizes chain a security callback and a verify callback in
 * front of the ones already set; setting either again afterwards removes
 * that check.  RequireExtendedMasterSecret=1 on an SSL_CTX that can be a
 * client installs the same security callback; the one already set (OpenSSL's
 * default, i.e. the security level, if the application set none) is still
 * asked first, with its own ex data.
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
 * it, exactly as if it had been set before EMSGUARD_enable().  NULL removes
 * the application's callback.  They fail with EMSGUARD_R_NOT_ENABLED on a ctx
 * without the policy.  EMSGUARD_set_info_callback() is the per-SSL variant
 * (see SSL_set_info_callback()); the SSL's ctx must have the policy.
 */
int EMSGUARD_CTX_sess_set_new_cb(SSL_CTX *ctx,
    int (*new_session_cb)(SSL *ssl, SSL_SESSION *sess));
int EMSGUARD_CTX_sess_set_get_cb(SSL_CTX *ctx,
    SSL_SESSION *(*get_session_cb)(SSL *ssl, const unsigned char *id,
        int idlen, int *copy));
int EMSGUARD_CTX_set_info_callback(SSL_CTX *ctx,
    void (*cb)(const SSL *ssl, int where, int ret));
/*
 * The policy installs a ClientHello callback (see EMSGUARD_enable()); an
 * application that sets its own uses this setter, which chains it in front
 * of emsguard's checks.  On a ctx without the policy it is
 * SSL_CTX_set_client_hello_cb().
 */
int EMSGUARD_CTX_set_client_hello_cb(SSL_CTX *ctx, SSL_client_hello_cb_fn cb,
    void *arg);
int EMSGUARD_set_info_callback(SSL *ssl,
    void (*cb)(const SSL *ssl, int where, int ret));

/*
 * Reading the application's callbacks back, as OpenSSL's getters
 * (SSL_CTX_sess_get_new_cb(), SSL_CTX_sess_get_get_cb(),
 * SSL_CTX_get_info_callback(), SSL_get_info_callback()) would return them
 * without emsguard.  On a ctx with the policy those return emsguard's own
 * callbacks; these return the application's callback that emsguard calls
 * from them (set before EMSGUARD_enable() or with the setters above), or
 * NULL if there is none.  An application that chains its callbacks --
 *     prev = EMSGUARD_CTX_get_info_callback(ctx);
 *     EMSGUARD_CTX_set_info_callback(ctx, mine);   (mine calls prev)
 * -- must read |prev| here: OpenSSL's getter would hand it emsguard's
 * callback, and its previous callback would never run.  On a ctx without
 * the policy, or where a plain libssl setter replaced emsguard's callback,
 * they return what libssl holds.  EMSGUARD_get_info_callback() is the
 * per-SSL variant (NULL: the ctx's callback is used).  NULL ctx or ssl:
 * NULL.  libemsguard-preload.so answers OpenSSL's getters with these.
 */
int (*EMSGUARD_CTX_sess_get_new_cb(SSL_CTX *ctx))(SSL *ssl, SSL_SESSION *sess);
SSL_SESSION *(*EMSGUARD_CTX_sess_get_get_cb(SSL_CTX *ctx))(SSL *ssl,
    const unsigned char *id, int idlen, int *copy);
void (*EMSGUARD_CTX_get_info_callback(SSL_CTX *ctx))(const SSL *ssl, int where,
    int ret);
void (*EMSGUARD_get_info_callback(const SSL *ssl))(const SSL *ssl, int where,
    int ret);

/*
 * The verify and security callbacks.  emsguard installs its own verify
 * callback when KeyExchangeAlgorithms\\PKCS\\{Client,Server}MinKeyBitLength
 * is set, and its own security callback when
 * KeyExchangeAlgorithms\\Diffie-Hellman\\ClientMinKeyBitLength is set or the
 * client role has RequireExtendedMasterSecret=1; they call the callback the
 * ctx had before EMSGUARD_enable() (OpenSSL's default security callback,
 * the security level, if none), then apply their check.  A plain
 * SSL_CTX_set_verify(), SSL_set_verify(), SSL_CTX_set_security_callback() or
 * SSL_set_security_callback() replaces emsguard's and removes the check (a
 * Require=1 client is then held to TLS 1.3).  These setters take the same
 * arguments and store |cb| where emsguard's callback calls it; the verify
 * mode is set as libssl sets it.  Per SSL, as in libssl, the SSL's own
 * callback replaces its ctx's; EMSGUARD_set_verify() with a NULL |cb|
 * changes only the mode.  A NULL security callback means none of the
 * application's (emsguard's check only).  Where emsguard installed no such
 * callback (no policy, a policy that needs none, or one replaced by a plain
 * setter) they are the plain libssl setters.  They return 1, or 0 for a
 * NULL ctx or ssl (EMSGUARD_R_INVALID_ARGUMENT) or when a per-SSL callback
 * cannot be stored (out of memory; emsguard's callback stays).
 * libemsguard-preload.so redirects the plain setters to these.
 *
 * Unlike libssl, which copies the ctx's callbacks into each SSL at
 * SSL_new(), a callback set on the ctx later also reaches its existing
 * SSLs that have none of their own, as the info callback does.
 *
 * The getters return the application's callback where libssl holds
 * emsguard's (see EMSGUARD_CTX_get_info_callback()), libssl's answer
 * elsewhere; NULL for a NULL ctx or ssl.
 */
int EMSGUARD_CTX_set_verify(SSL_CTX *ctx, int mode, SSL_verify_cb cb);
int EMSGUARD_set_verify(SSL *ssl, int mode, SSL_verify_cb cb);
int EMSGUARD_CTX_set_security_callback(SSL_CTX *ctx,
    int (*cb)(const SSL *ssl, const SSL_CTX *ctx, int op, int bits, int nid,
        void *other, void *ex));
/*
 * SSL_CTX_set_cert_verify_callback() replaces X509_verify_cert(), which is
 * what calls the verify callback: an application's certificate check that
 * does not call X509_verify_cert() itself skips PKCS MinKeyBitLength.
 * Where emsguard's verify callback is installed, this setter runs |cb|
 * from emsguard's certificate check, which then checks the peer's key;
 * elsewhere, and for a NULL |cb|, it is SSL_CTX_set_cert_verify_callback().
 * 1, or 0 for a NULL ctx.  OpenSSL has no getter for it.
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
 * Counters, per SSL_CTX, since EMSGUARD_enable().  Handshakes are counted when
 * they complete; refusals when emsguard refuses a session.
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
    /*
     * Server: connection refused after the handshake.  Another SSL_CTX (the
     * SSL's initial one, before an SNI switch to this one) resumed a session,
     * or completed a handshake, that this ctx's policy refuses.
     */
    EMSGUARD_CNT_REFUSED_SNI_SWITCH,
    /*
     * Server: a ticket or external-cache session (another fleet member's, or
     * from before a policy change) whose suite, protocol version or age is
     * outside the policy's Schannel values: full handshake instead.
     */
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
 * 0 if not.  OpenSSL 3.0 has no getter for this before a handshake
 * completes; emsguard reads the session's flags from its DER encoding.
 */
int EMSGUARD_SESSION_has_ems(const SSL_SESSION *sess, int *has_ems);

/*
 * The provider's TLS1-PRF guard.
 *
 * The emsguard provider implements the TLS1-PRF KDF with the properties
 * "provider=emsguard,emsguard.guard=yes".  Selected from openssl.cnf with
 *
 *     [algorithm_sect]
 *     default_properties = ?emsguard.guard=yes
 *
 * it becomes the TLS1-PRF libssl uses for every TLS <= 1.2 handshake of the
 * process; it delegates the computation to another provider's TLS1-PRF (the
 * default provider's) and only looks at the label:
 *  - with RequireExtendedMasterSecret=1 it refuses to derive a master secret
 *    without Extended Master Secret, so such handshakes fail (the peer sees
 *    internal_error) in any OpenSSL 3.0 application, without preload or
 *    code changes.  A resumption derives no master secret: the guard alone
 *    cannot refuse the resumption of a non-EMS session created elsewhere
 *    (another process or fleet member sharing a session cache or the
 *    ticket keys); EMSGUARD_enable() and the preload library refuse those;
 *  - always, it counts for the whole process: EMS master secrets, master
 *    secrets without EMS, refused derivations, and key expansions whose
 *    master secret no derivation in this process produced (resumptions).
 *    Those counters show how many peers lack EMS before enforcement is on.
 *
 * The guard must be in the library context's method store to be chosen.
 * OpenSSL 3.0 can leave it out without an error when an allocation fails
 * while the context's first KDF fetch stores the providers' KDFs; the
 * optional query then takes another provider's TLS1-PRF.  emsguard looks for
 * its TLS1-PRF whenever libssl asks the providers for their TLS groups in
 * SSL_CTX_new(), before any handshake of that SSL_CTX.  If it is missing,
 * then with RequireExtendedMasterSecret=1 SSL_CTX_new() fails with
 * EMSGUARD_R_GUARD_MISSING (also in a process that loads the provider only
 * for its policy: OpenSSL 3.0 cannot tell whether the guard is selected);
 * with 0, one line is logged at the error level.  emsguard linked to another
 * libcrypto than the application's (a static application) cannot look, and
 * does not check.
 *
 * EMSGUARD_audit_get() reads one counter (0 until the guard has run).
 * EMSGUARD_audit_log() writes the summary line now, through the policy of
 * the emsguard provider in the default library context (stderr or syslog;
 * nothing if its EventLogging is 0).  The provider also writes it when it is
 * unloaded, normally at process exit, if the guard was used.
 * No secret is kept: a derived master secret leaves only a 64-bit keyed
 * hash, forgotten at its key expansion.
 */
typedef enum {
    EMSGUARD_AUDIT_EMS_DERIVATIONS = 0, /* master secrets with EMS */
    EMSGUARD_AUDIT_NON_EMS_DERIVATIONS, /* master secrets without EMS */
    EMSGUARD_AUDIT_RESUMPTIONS, /* key expansions without a derivation */
    EMSGUARD_AUDIT_REFUSED, /* derivations refused (EMS required) */
    EMSGUARD_AUDIT_MAX
} EMSGUARD_AUDIT_COUNTER;

int EMSGUARD_audit_get(EMSGUARD_AUDIT_COUNTER which, uint64_t *value);
int EMSGUARD_audit_log(void);

#ifdef __cplusplus
}
#endif
#endif /* EMSGUARD_H */
