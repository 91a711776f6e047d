/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The provider module: configuration sections and provider lines, the
 * entry point and its parameters, the TLS1-PRF guard, live stats.
 * Included through internal.h, which every source file includes.
 */
#ifndef EMSGUARD_INTERNAL_MODULE_H
#define EMSGUARD_INTERNAL_MODULE_H

#include "internal_conn.h"

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

#endif /* EMSGUARD_INTERNAL_MODULE_H */
