/* SPDX-License-Identifier: Apache-2.0 */
/*
 * faults -- allocation-failure injection for emsguard.
 *
 * CRYPTO_set_mem_functions(), first thing in main, routes every OpenSSL
 * allocation (libcrypto, libssl, the default provider and emsguard, which
 * all use OPENSSL_malloc) through this file.  Each scenario -- loading the
 * provider, EMSGUARD_enable*, full and resumed TLS 1.2 handshakes in both
 * roles with EMS and legacy peers, the TLS1-PRF guard -- runs once to count
 * the allocations of its "window", then again for each chosen n with exactly
 * the n-th allocation of the window failing and every other one succeeding.
 *
 * Every run is a fork of a driver process that did the scenario's setup with
 * allocation working, so a crash, a hang or a one-time initialisation that
 * failed stays in that run.  Per run we check:
 *  - no crash, no hang;
 *  - no leak: live allocations are tracked here (file/line of the caller,
 *    as OpenSSL passes them); after teardown and OPENSSL_cleanup() whatever
 *    is left, beyond what the clean run leaves, leaked.  A leak allocated in
 *    emsguard's own code (provider/...) fails; one allocated by OpenSSL is
 *    printed, with the stack that allocated it when emsguard code is on it,
 *    because OpenSSL 3.0 itself leaks on some allocation-failure paths;
 *  - the operation that met the failure failed (or the handshake failed or
 *    fell back), or produced exactly the clean result: never a success that
 *    skipped work (wrong policy, ctx half-configured, handshakes uncounted);
 *  - the policy is never weaker: a non-EMS session is never resumed, a
 *    legacy peer never completes a handshake when EMS is required, a
 *    configuration with a misspelt key never activates.
 * A crash inside OpenSSL in which emsguard's code takes no part is printed
 * and counted apart (crash_in_openssl), not as emsguard's.
 *
 * Fault points: every allocation made in emsguard's code (caller file under
 * provider/) is tried; of the rest, those with emsguard on the call stack
 * (OpenSSL called by emsguard) are tried with a stride giving about
 * FAULTS_STACK_SAMPLE (default 80) per scenario, and OpenSSL's own with one
 * giving about FAULTS_SAMPLE (default 40); FAULTS_FULL=1 tries them all, as
 * a scenario marked full (the first TLS1-PRF fetch) always does.
 *
 *   BUILD=build build/test/faults                  all scenarios
 *   BUILD=build build/test/faults -s NAME -n N     one fault point, verbose
 *   ... -s NAME -n N -t SEQ                        also the stack of the
 *                                                  allocation numbered SEQ
 *   BUILD=build build/test/faults -l               list scenarios
 *   -q                                             no informational notes
 *
 * Leak checking under ASan: the forked runs leave with _exit() after their
 * own accounting, so LeakSanitizer only ever checks the top process, which
 * never touches OpenSSL; the clean run of each scenario also asks
 * LeakSanitizer directly (__lsan_do_recoverable_leak_check), to confirm the
 * accounting.  LSan is not run on the fault runs: OpenSSL's own leaks on
 * some failure paths would make it fail regardless of emsguard, and the
 * accounting here attributes each block to its allocation site instead.
 */
#include <errno.h>
#include <link.h>
#include <execinfo.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>
#include "emsguard.h"
#include "harness.h"

/* ---- limits ------------------------------------------------------------- */

#define MAX_SITES (1 << 17) /* window allocations of one scenario */
#define TAB_BITS 15 /* live-block table: 128k slots */
#define MAX_LEFT 64 /* blocks reported alive after cleanup */
#define MAX_HS 3
#define NKEYS 6
#define RUN_TIMEOUT 60 /* seconds for one forked run */

/* ---- where an allocation comes from ------------------------------------ */

#define CLS_EG_FILE 0x1 /* caller's file is emsguard's (provider/...) */
#define CLS_EG_STACK 0x2 /* emsguard code is on the call stack */

struct site {
    char file[52];
    int line;
    unsigned cls;
    unsigned long seq; /* process-wide allocation number */
};

struct leftover {
    struct site site;
    size_t size;
};

/* ---- what a scenario run produced --------------------------------------- */

struct hs_out {
    int run, ok, reused, sreused, ems, offered, salert, calert;
};

struct outcome {
    int ret; /* load_config / enable */
    int ret2; /* OSSL_PROVIDER_load != NULL */
    int from_ret, found; /* EMSGUARD_POLICY_from_provider */
    uint32_t policy[NKEYS]; /* what it read */
    int avail; /* provider available, after the window */
    int enabled, same_policy, cache_n;
    uintptr_t cb[3]; /* new-session, get-session, info */
    int err_queued; /* error queue not empty after the window */
    int logged; /* emsguard wrote "provider not activated" */
    struct hs_out hs[MAX_HS];
    int ctx_made; /* K_GUARD_FIRST: the guarded SSL_CTX was created */
    int has_counters;
    uint64_t counters[EMSGUARD_CNT_MAX];
};

/* One forked run's report, in memory shared with the driver. */
struct report {
    int phase; /* how far it got (PH_*) */
    int fault_hit;
    struct site fault_site;
    unsigned long window_allocs;
    unsigned long window_seq; /* process-wide number of its first allocation */
    struct outcome out;
    int nleft; /* blocks alive after OPENSSL_cleanup */
    struct leftover left[MAX_LEFT];
    int lsan_leaks; /* clean run: LeakSanitizer's verdict, -1 if absent */
    size_t live_peak; /* most blocks alive at once */
    int traced; /* the -t allocation happened */
    unsigned trace_cls; /* and its CLS_* */
};

enum { PH_START = 0, PH_WINDOW, PH_POST, PH_TEARDOWN, PH_CLEANUP, PH_DONE };
static const char *const phase_names[] = {
    "start", "window", "post-window checks", "teardown", "OPENSSL_cleanup", "done"
};

/* Run categories. */
enum {
    C_FAILED = 0, /* an operation reported failure / handshake failed */
    C_FELL_BACK, /* handshakes completed differently, safely */
    C_ABSORBED, /* same result as the clean run */
    C_NOT_HIT, /* the run made fewer allocations than n */
    C_OSSL_BUG, /* crashed inside OpenSSL, see known_openssl_crash() */
    C_VIOLATION,
    C_COUNT
};
static const char *const cat_names[C_COUNT] = {
    "failed", "fell back", "absorbed", "not hit", "OpenSSL defect", "VIOLATION"
};

struct stats {
    unsigned long allocs, eg_file, eg_stack; /* clean run's window */
    unsigned long tried, tried_eg_file, tried_eg_stack;
    unsigned long stride_stack, stride_ossl; /* 1 in how many were tried */
    unsigned long cat[C_COUNT];
    unsigned long hit_eg_file; /* runs whose failed allocation was in provider/ */
    unsigned long leaks_eg; /* blocks allocated in provider/ code */
    unsigned long leaks_ossl; /* blocks allocated by OpenSSL ... */
    unsigned long leaks_ossl_eg; /* ... with emsguard on either stack */
    unsigned long crashes;
    int setup_failed, clean_failed;
    double seconds;
};

#define MAX_SCEN 32
struct shared {
    struct report clean, rep;
    struct stats stats[MAX_SCEN];
    struct site sites[MAX_SITES];
};
static struct shared *shm;
static struct report *cur_rep; /* the forked run's report */

/* ---- allocation hooks ------------------------------------------------------ */

static struct {
    int armed; /* inside a scenario's window */
    unsigned long armed_seq; /* window allocations so far */
    unsigned long fail_at; /* window allocation to fail, 1-based; 0 none */
    unsigned long seq; /* all allocations */
    unsigned long trace_seq; /* print the stack of this allocation */
    int record; /* clean run: classify every window allocation */
    int verbose;
} F;

struct block {
    void *p;
    const char *file;
    unsigned long seq;
    size_t size;
    int line;
    unsigned cls;
};
static struct block *tab; /* open addressing, linear probing */
static size_t tab_used, tab_peak;
static unsigned long unknown_frees;

static size_t tab_slot(const void *p)
{
    return (size_t)(((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ULL >> (64 - TAB_BITS));
}

static void tab_put(void *p, size_t size, const char *file, int line, unsigned cls)
{
    size_t i = tab_slot(p), mask = ((size_t)1 << TAB_BITS) - 1;

    if (++tab_used > (mask + 1) / 4 * 3) {
        static const char msg[] = "faults: live-block table full\n";

        (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
        abort();
    }
    if (tab_used > tab_peak)
        tab_peak = tab_used;
    while (tab[i].p != NULL)
        i = (i + 1) & mask;
    tab[i] = (struct block){ p, file, F.seq, size, line, cls };
}

/*
 * Removes the block at address |addr| (an integer: after realloc the old
 * pointer may not be used); backward-shift deletion keeps probe chains
 * intact.
 */
static int tab_del(uintptr_t addr)
{
    size_t mask = ((size_t)1 << TAB_BITS) - 1, i = tab_slot((const void *)addr), j, k;

    while ((uintptr_t)tab[i].p != addr) {
        if (tab[i].p == NULL)
            return 0;
        i = (i + 1) & mask;
    }
    tab[i].p = NULL;
    tab_used--;
    for (j = (i + 1) & mask; tab[j].p != NULL; j = (j + 1) & mask) {
        k = tab_slot(tab[j].p);
        /* move j into the hole i unless its home k lies in (i, j] */
        if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
            tab[i] = tab[j];
            tab[j].p = NULL;
            i = j;
        }
    }
    return 1;
}

/*
 * emsguard's sources, as OPENSSL_FILE names them: provider/<name>.c.  (OpenSSL's
 * are ../crypto/..., ../ssl/..., ../providers/...)
 */
static int is_eg_file(const char *file)
{
    const char *base, *dir;

    if (file == NULL || (base = strrchr(file, '/')) == NULL)
        return 0;
    for (dir = base; dir > file && dir[-1] != '/'; dir--)
        ;
    return (size_t)(base - dir) == strlen("provider") && strncmp(dir, "provider", 8) == 0;
}

/* Executable segments of libemsguard (and of emsguard.so, were it a copy). */
struct text_range {
    uintptr_t lo, hi;
};
static struct text_range eg_text[8];
static int eg_ntext;

static int find_eg_text(struct dl_phdr_info *info, size_t size, void *arg)
{
    const char *base = strrchr(info->dlpi_name, '/');
    int i;

    (void)size;
    (void)arg;
    base = base != NULL ? base + 1 : info->dlpi_name;
    if (strncmp(base, "libemsguard.", 12) != 0 && strncmp(base, "emsguard.", 9) != 0)
        return 0;
    for (i = 0; i < info->dlpi_phnum && eg_ntext < 8; i++)
        if (info->dlpi_phdr[i].p_type == PT_LOAD && (info->dlpi_phdr[i].p_flags & PF_X)) {
            eg_text[eg_ntext].lo = info->dlpi_addr + info->dlpi_phdr[i].p_vaddr;
            eg_text[eg_ntext].hi = eg_text[eg_ntext].lo + info->dlpi_phdr[i].p_memsz;
            eg_ntext++;
        }
    return 0;
}

static int in_emsguard(void *addr)
{
    int i;

    for (i = 0; i < eg_ntext; i++)
        if ((uintptr_t)addr >= eg_text[i].lo && (uintptr_t)addr < eg_text[i].hi)
            return 1;
    return 0;
}

static unsigned classify(const char *file)
{
    void *frames[64];
    unsigned cls = is_eg_file(file) ? CLS_EG_FILE : 0;
    int n = backtrace(frames, 64), i;

    /* cheap enough per call, and sees a module loaded meanwhile */
    eg_ntext = 0;
    dl_iterate_phdr(find_eg_text, NULL);

    for (i = 0; i < n; i++)
        if (in_emsguard(frames[i]))
            return cls | CLS_EG_STACK;
    return cls;
}

static void set_site(struct site *s, const char *file, int line, unsigned cls)
{
    size_t len = file != NULL ? strlen(file) : 0;
    const char *tail = file == NULL ? "?"
        : len < sizeof(s->file) ? file : file + len - (sizeof(s->file) - 1);

    snprintf(s->file, sizeof(s->file), "%s", tail);
    s->line = line;
    s->cls = cls;
    s->seq = F.seq;
}

/* Every allocation passes here; returns 0 when this one must fail. */
static int allocation_allowed(const char *file, int line)
{
    F.seq++;
    if (F.trace_seq != 0 && F.seq == F.trace_seq) {
        void *frames[64];
        int n = backtrace(frames, 64);

        fprintf(stderr, "faults: stack of allocation #%lu (%s:%d):\n", F.seq,
            file != NULL ? file : "?", line);
        backtrace_symbols_fd(frames, n, STDERR_FILENO);
        if (cur_rep != NULL) {
            cur_rep->traced = 1;
            cur_rep->trace_cls = classify(file);
        }
    }
    if (!F.armed)
        return 1;
    F.armed_seq++;
    if (F.record && F.armed_seq <= MAX_SITES)
        set_site(&shm->sites[F.armed_seq - 1], file, line, classify(file));
    if (F.armed_seq != F.fail_at)
        return 1;
    cur_rep->fault_hit = 1;
    set_site(&cur_rep->fault_site, file, line, classify(file));
    if (F.verbose) {
        void *frames[64];
        int n = backtrace(frames, 64);

        fprintf(stderr, "faults: failing window allocation %lu (#%lu, %s:%d):\n",
            F.armed_seq, F.seq, file != NULL ? file : "?", line);
        backtrace_symbols_fd(frames, n, STDERR_FILENO);
    }
    return 0;
}

static void *fa_malloc(size_t n, const char *file, int line)
{
    void *p;

    if (n == 0) /* what CRYPTO_malloc does without hooks */
        return NULL;
    if (!allocation_allowed(file, line))
        return NULL;
    if ((p = malloc(n)) != NULL)
        tab_put(p, n, file, line, 0);
    return p;
}

static void fa_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    if (p == NULL)
        return;
    if (!tab_del((uintptr_t)p))
        unknown_frees++;
    free(p);
}

static void *fa_realloc(void *p, size_t n, const char *file, int line)
{
    uintptr_t old = (uintptr_t)p;
    void *q;

    if (p == NULL)
        return fa_malloc(n, file, line);
    if (n == 0) { /* CRYPTO_realloc's contract */
        fa_free(p, file, line);
        return NULL;
    }
    if (!allocation_allowed(file, line))
        return NULL; /* the old block stays valid */
    if ((q = realloc(p, n)) != NULL) {
        tab_del(old);
        tab_put(q, n, file, line, 0);
    }
    return q;
}

/* ---- environment ----------------------------------------------------------- */

static char module_path[PATH_MAX + 32];
static char tmpdir[PATH_MAX];
static char empty_cnf[PATH_MAX + 32];
static int err_fd = -1; /* the forked runs' stderr */

/* Configured policy used everywhere a configuration is loaded. */
static const uint32_t configured_policy[NKEYS] = { 0, 0, 0, 0, 0, 1 };
static const uint32_t default_policy[NKEYS] = { 0, 0, 0, 1, 0, 0 };
static const char *const key_names[NKEYS] = {
    EMSGUARD_DISABLE_SERVER_EMS, EMSGUARD_DISABLE_CLIENT_EMS,
    EMSGUARD_ALLOW_LEGACY_RESUMPTION, EMSGUARD_EVENT_LOGGING, EMSGUARD_LOG_TARGET,
    EMSGUARD_REQUIRE_EMS
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "faults: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

enum { CNF_ACTIVATE = 0x1, CNF_GUARD = 0x2, CNF_TYPO = 0x4 };

/* Writes an openssl.cnf with the default provider and an emsguard section. */
static void write_cnf(const char *path, int how)
{
    FILE *f = fopen(path, "w");

    if (f == NULL)
        die("cannot write %s: %s", path, strerror(errno));
    fprintf(f,
        "openssl_conf = init\n[init]\nproviders = provs\n%s"
        "[provs]\ndefault = def\nemsguard = eg\n"
        "[def]\nactivate = 1\n"
        "[eg]\nmodule = %s\n%sEventLogging = 0\n%s = 1\n"
        "[algs]\ndefault_properties = ?emsguard.guard=yes\n",
        (how & CNF_GUARD) ? "alg_section = algs\n" : "", module_path,
        (how & CNF_ACTIVATE) ? "activate = 1\n" : "",
        (how & CNF_TYPO) ? "RequireExtendedMasterSecert" : EMSGUARD_REQUIRE_EMS);
    if (fclose(f) != 0)
        die("cannot write %s", path);
}

static const char *cnf_path(const char *tag)
{
    static char path[PATH_MAX + 64];

    snprintf(path, sizeof(path), "%s/%s.cnf", tmpdir, tag);
    return path;
}

/* ---- scenarios ---------------------------------------------------------------- */

enum kind {
    K_PROV_CONFIG, /* OSSL_LIB_CTX_load_config activates emsguard */
    K_PROV_EXPLICIT, /* load_config, then OSSL_PROVIDER_load("emsguard") */
    K_PROV_NOCONFIG, /* OSSL_PROVIDER_load(module path), no configuration */
    K_PROV_TYPO, /* a misspelt key: must never activate */
    K_ENABLE_POLICY, /* EMSGUARD_POLICY_new/set/dup + EMSGUARD_enable_policy */
    K_ENABLE_DEFAULT, /* EMSGUARD_enable, no provider: built-in defaults */
    K_ENABLE_EX, /* EMSGUARD_enable_ex on a configured library context */
    K_ENABLE_CONFIGURED, /* EMSGUARD_enable, provider in the default context */
    K_HS_SERVER, /* SSL_CTX policy on the server */
    K_HS_CLIENT, /* SSL_CTX policy on the client */
    K_HS_REQUIRE, /* server policy with RequireExtendedMasterSecret=1 */
    K_GUARD_SERVER, /* TLS1-PRF guard, RequireExtendedMasterSecret=1, server */
    K_GUARD_CLIENT, /* the same, client */
    K_GUARD_FIRST /* the guarded server's SSL_CTX_new in the window too */
};

struct scenario {
    const char *name;
    enum kind kind;
    hs_mech mech;
    int legacy; /* the peer has no EMS */
    const char *what;
    int full; /* try every allocation of the window, not a sample */
};

static const struct scenario scenarios[] = {
    { "prov-config", K_PROV_CONFIG, 0, 0,
        "OSSL_LIB_CTX_load_config activates emsguard; EMSGUARD_POLICY_from_provider", 0 },
    { "prov-explicit", K_PROV_EXPLICIT, 0, 0,
        "load_config, OSSL_PROVIDER_load(\"emsguard\"); EMSGUARD_POLICY_from_provider", 0 },
    { "prov-noconfig", K_PROV_NOCONFIG, 0, 0,
        "OSSL_PROVIDER_load(module path) without configuration", 0 },
    { "prov-typo", K_PROV_TYPO, 0, 0,
        "configuration with a misspelt key must never activate", 0 },
    { "enable-policy", K_ENABLE_POLICY, 0, 0,
        "EMSGUARD_POLICY_new/set/dup, EMSGUARD_enable_policy", 0 },
    { "enable-default", K_ENABLE_DEFAULT, 0, 0,
        "EMSGUARD_enable without provider (built-in defaults)", 0 },
    { "enable-ex", K_ENABLE_EX, 0, 0,
        "EMSGUARD_enable_ex on a library context with emsguard configured", 0 },
    { "enable-configured", K_ENABLE_CONFIGURED, 0, 0,
        "EMSGUARD_enable with emsguard configured in the default context", 0 },
    { "srv-ems-sessid", K_HS_SERVER, HS_MECH_SESSION_ID, 0,
        "server policy, EMS client, session-ID cache: full + resumed", 0 },
    { "srv-ems-extcache", K_HS_SERVER, HS_MECH_EXT_CACHE, 0,
        "server policy, EMS client, external cache: full + resumed", 0 },
    { "srv-ems-ticket", K_HS_SERVER, HS_MECH_TICKET, 0,
        "server policy, EMS client, tickets: full + resumed", 0 },
    { "srv-legacy-sessid", K_HS_SERVER, HS_MECH_SESSION_ID, 1,
        "server policy, legacy client, session-ID cache: full + refused", 0 },
    { "srv-legacy-extcache", K_HS_SERVER, HS_MECH_EXT_CACHE, 1,
        "server policy, legacy client, external cache (own + fleet session): refused", 0 },
    { "srv-legacy-ticket", K_HS_SERVER, HS_MECH_TICKET, 1,
        "server policy, legacy client, tickets (own + fleet ticket): refused", 0 },
    { "cli-ems", K_HS_CLIENT, HS_MECH_SESSION_ID, 0,
        "client policy, EMS server: full + resumed", 0 },
    { "cli-legacy", K_HS_CLIENT, HS_MECH_SESSION_ID, 1,
        "client policy, legacy server: full + not offered", 0 },
    { "cli-legacy-ticket", K_HS_CLIENT, HS_MECH_TICKET, 1,
        "client policy, legacy ticket server: full + not offered", 0 },
    { "srv-require-legacy", K_HS_REQUIRE, HS_MECH_SESSION_ID, 1,
        "server policy RequireExtendedMasterSecret=1, legacy client: rejected", 0 },
    { "guard-srv-ems", K_GUARD_SERVER, HS_MECH_SESSION_ID, 0,
        "TLS1-PRF guard (Require=1) on the server, EMS client: full + resumed", 0 },
    { "guard-srv-legacy", K_GUARD_SERVER, HS_MECH_SESSION_ID, 1,
        "TLS1-PRF guard (Require=1) on the server, legacy client: refused", 0 },
    { "guard-cli-legacy", K_GUARD_CLIENT, HS_MECH_SESSION_ID, 1,
        "TLS1-PRF guard (Require=1) on the client, legacy server: refused", 0 },
    /*
     * The library context's first TLS1-PRF fetch, where OpenSSL 3.0 drops a
     * method it fails to store without an error: every allocation is tried,
     * since a sample could step over the one that drops the guard.
     */
    { "guard-first-srv-legacy", K_GUARD_FIRST, HS_MECH_SESSION_ID, 1,
        "TLS1-PRF guard (Require=1): the server's SSL_CTX_new, then a legacy client: refused",
        1 },
};
#define NSCEN (sizeof(scenarios) / sizeof(scenarios[0]))

static int is_hs(enum kind k)
{
    return k >= K_HS_SERVER;
}

/* Scenarios where a legacy peer must never complete a handshake. */
static int requires_ems(enum kind k)
{
    return k == K_HS_REQUIRE || k == K_GUARD_SERVER || k == K_GUARD_CLIENT
        || k == K_GUARD_FIRST;
}

/* The driver's state, made in setup and inherited by every forked run. */
static struct {
    OSSL_LIB_CTX *libctx;
    OSSL_PROVIDER *prov;
    SSL_CTX *ctx; /* enable scenarios: the ctx to enable */
    SSL_CTX *sctx, *cctx; /* handshakes */
    SSL_CTX *pctx; /* the ctx carrying the policy (counters), or NULL */
    SSL_CTX *donor; /* fleet server without policy */
    SSL_SESSION *foreign; /* non-EMS session from the fleet */
    SSL_SESSION *cached; /* session put in ctx's cache before enable */
    const char *cnf;
    const uint32_t *expect; /* the policy a success must give */
    EMSGUARD_POLICY *readback; /* what EMSGUARD_POLICY_from_provider fills */
} E;

static int app_new_cb(SSL *ssl, SSL_SESSION *sess)
{
    (void)ssl;
    (void)sess;
    return 0;
}

static SSL_SESSION *app_get_cb(SSL *ssl, const unsigned char *id, int len, int *copy)
{
    (void)ssl;
    (void)id;
    (void)len;
    *copy = 0;
    return NULL;
}

static void app_info_cb(const SSL *ssl, int where, int ret)
{
    (void)ssl;
    (void)where;
    (void)ret;
}

static EMSGUARD_POLICY *make_policy(const uint32_t *values)
{
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
    int i;

    for (i = 0; p != NULL && i < NKEYS; i++)
        if (i != 4 && !EMSGUARD_POLICY_set_dword(p, key_names[i], values[i])) {
            EMSGUARD_POLICY_free(p);
            return NULL;
        }
    return p;
}

static int read_policy(const EMSGUARD_POLICY *p, uint32_t *out)
{
    char text[16];
    int i;

    for (i = 0; i < NKEYS; i++) {
        if (i == 4) {
            if (!EMSGUARD_POLICY_get_text(p, key_names[i], text, sizeof(text)))
                return 0;
            out[i] = strcmp(text, "syslog") == 0;
        } else if (!EMSGUARD_POLICY_get_dword(p, key_names[i], &out[i])) {
            return 0;
        }
    }
    return 1;
}

static SSL_CTX *need(SSL_CTX *ctx, const char *what)
{
    if (ctx == NULL)
        die("setup: cannot make %s", what);
    return ctx;
}

/* A non-EMS session from a stock server of |mech| sharing cache / keys. */
static SSL_SESSION *fleet_session(hs_mech mech)
{
    SSL_CTX *legacy = need(hs_client_ctx(HS_NO_EMS), "legacy client");
    hs_result r;

    E.donor = need(hs_server_ctx(mech, 0), "fleet server");
    if (!hs_handshake(E.donor, legacy, NULL, &r) || r.session == NULL)
        die("setup: fleet handshake failed");
    SSL_CTX_free(legacy);
    return r.session;
}

static void setup(const struct scenario *sc)
{
    EMSGUARD_POLICY *p;

    memset(&E, 0, sizeof(E));
    setenv("OPENSSL_CONF", empty_cnf, 1);
    unsetenv("EMSGUARD_DEBUG");
    switch (sc->kind) {
    case K_PROV_CONFIG:
    case K_PROV_EXPLICIT:
    case K_PROV_TYPO:
        OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
        E.cnf = cnf_path(sc->name);
        write_cnf(E.cnf, (sc->kind != K_PROV_EXPLICIT ? CNF_ACTIVATE : 0)
                | (sc->kind == K_PROV_TYPO ? CNF_TYPO : 0));
        setenv("OPENSSL_CONF", E.cnf, 1); /* emsguard re-reads it for typos */
        E.expect = configured_policy;
        E.readback = EMSGUARD_POLICY_new();
        E.libctx = OSSL_LIB_CTX_new(); /* fresh, but made outside the window */
        break;
    case K_PROV_NOCONFIG:
        OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
        E.expect = default_policy;
        E.readback = EMSGUARD_POLICY_new();
        E.libctx = OSSL_LIB_CTX_new();
        break;
    case K_ENABLE_POLICY:
    case K_ENABLE_DEFAULT:
    case K_ENABLE_EX:
    case K_ENABLE_CONFIGURED:
        if (sc->kind == K_ENABLE_CONFIGURED || sc->kind == K_ENABLE_EX) {
            E.cnf = cnf_path(sc->name);
            write_cnf(E.cnf, CNF_ACTIVATE);
        }
        if (sc->kind == K_ENABLE_CONFIGURED) {
            setenv("OPENSSL_CONF", E.cnf, 1);
            OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, NULL);
        } else {
            OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
        }
        if (sc->kind == K_ENABLE_EX) {
            if ((E.libctx = OSSL_LIB_CTX_new()) == NULL
                || OSSL_LIB_CTX_load_config(E.libctx, E.cnf) != 1
                || !OSSL_PROVIDER_available(E.libctx, "emsguard"))
                die("setup: cannot load %s", E.cnf);
        }
        E.ctx = need(SSL_CTX_new_ex(E.libctx, NULL, TLS_server_method()), "server ctx");
        /* the state a failed enable must leave untouched */
        SSL_CTX_sess_set_new_cb(E.ctx, app_new_cb);
        SSL_CTX_sess_set_get_cb(E.ctx, app_get_cb);
        SSL_CTX_set_info_callback(E.ctx, app_info_cb);
        if ((E.cached = SSL_SESSION_new()) == NULL
            || !SSL_SESSION_set1_id(E.cached, (const unsigned char *)"cachedid", 8)
            || !SSL_CTX_add_session(E.ctx, E.cached) || SSL_CTX_sess_number(E.ctx) != 1)
            die("setup: cannot cache a session");
        E.expect = sc->kind == K_ENABLE_DEFAULT ? default_policy : configured_policy;
        break;
    case K_HS_SERVER:
    case K_HS_CLIENT:
    case K_HS_REQUIRE:
        OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
        hs_ext_cache_reset();
        E.sctx = need(hs_server_ctx(sc->mech, sc->kind == K_HS_CLIENT && sc->legacy
                                                  ? HS_NO_EMS : 0), "server ctx");
        E.cctx = need(hs_client_ctx(sc->kind != K_HS_CLIENT && sc->legacy ? HS_NO_EMS : 0),
            "client ctx");
        E.pctx = sc->kind == K_HS_CLIENT ? E.cctx : E.sctx;
        if ((p = EMSGUARD_POLICY_new()) == NULL
            || !EMSGUARD_POLICY_set(p, EMSGUARD_EVENT_LOGGING, "0")
            || (sc->kind == K_HS_REQUIRE && !EMSGUARD_POLICY_set(p, EMSGUARD_REQUIRE_EMS, "1"))
            || !EMSGUARD_enable_policy(E.pctx, p))
            die("setup: cannot enable the policy");
        EMSGUARD_POLICY_free(p);
        /* the fleet's non-EMS session the policy server must refuse */
        if (sc->kind == K_HS_SERVER && sc->legacy && sc->mech != HS_MECH_SESSION_ID)
            E.foreign = fleet_session(sc->mech);
        break;
    case K_GUARD_SERVER:
    case K_GUARD_CLIENT:
    case K_GUARD_FIRST:
        OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
        E.cnf = cnf_path(sc->name);
        write_cnf(E.cnf, CNF_ACTIVATE | CNF_GUARD);
        if ((E.libctx = OSSL_LIB_CTX_new()) == NULL
            || OSSL_LIB_CTX_load_config(E.libctx, E.cnf) != 1
            || !OSSL_PROVIDER_available(E.libctx, "emsguard"))
            die("setup: cannot load %s", E.cnf);
        /* only the guarded side lives in the configured library context */
        hs_set_libctx(sc->kind == K_GUARD_SERVER ? E.libctx : NULL);
        E.sctx = need(hs_server_ctx(sc->mech, sc->kind == K_GUARD_CLIENT && sc->legacy
                                                  ? HS_NO_EMS : 0), "server ctx");
        if (sc->kind == K_GUARD_FIRST) { /* it only made the credentials */
            SSL_CTX_free(E.sctx);
            E.sctx = NULL;
        }
        hs_set_libctx(sc->kind == K_GUARD_CLIENT ? E.libctx : NULL);
        E.cctx = need(hs_client_ctx(sc->kind != K_GUARD_CLIENT && sc->legacy ? HS_NO_EMS : 0),
            "client ctx");
        hs_set_libctx(NULL);
        break;
    }
    ERR_clear_error();
}

static void record_hs(struct hs_out *h, const hs_result *r)
{
    h->run = 1;
    h->ok = r->ok;
    h->reused = r->reused;
    h->sreused = r->server_reused;
    h->ems = r->ems;
    h->offered = r->hello_offered;
    h->salert = r->server_alert;
    h->calert = r->client_alert;
}

/* The window: everything here runs with the fault armed. */
static void window(const struct scenario *sc, struct outcome *o)
{
    EMSGUARD_POLICY *p, *q;
    hs_result r1, r2;

    switch (sc->kind) {
    case K_PROV_CONFIG:
    case K_PROV_EXPLICIT:
    case K_PROV_TYPO:
    case K_PROV_NOCONFIG:
        o->ret = sc->kind == K_PROV_NOCONFIG ? 1 : OSSL_LIB_CTX_load_config(E.libctx, E.cnf);
        if (sc->kind == K_PROV_EXPLICIT)
            o->ret2 = (E.prov = OSSL_PROVIDER_load(E.libctx, "emsguard")) != NULL;
        else if (sc->kind == K_PROV_NOCONFIG)
            o->ret2 = (E.prov = OSSL_PROVIDER_load(E.libctx, module_path)) != NULL;
        if (sc->kind != K_PROV_TYPO) /* E.readback: made in setup */
            o->from_ret = EMSGUARD_POLICY_from_provider(E.readback, E.libctx, &o->found);
        break;
    case K_ENABLE_POLICY:
        p = EMSGUARD_POLICY_new();
        if (p != NULL && EMSGUARD_POLICY_set(p, EMSGUARD_EVENT_LOGGING, "0")
            && EMSGUARD_POLICY_set(p, EMSGUARD_REQUIRE_EMS, "1")
            && (q = EMSGUARD_POLICY_dup(p)) != NULL) {
            o->ret = EMSGUARD_enable_policy(E.ctx, q);
            EMSGUARD_POLICY_free(q);
        }
        EMSGUARD_POLICY_free(p);
        break;
    case K_ENABLE_DEFAULT:
    case K_ENABLE_CONFIGURED:
        o->ret = EMSGUARD_enable(E.ctx);
        break;
    case K_ENABLE_EX:
        o->ret = EMSGUARD_enable_ex(E.ctx, E.libctx);
        break;
    default: /* handshakes */
        if (sc->kind == K_GUARD_FIRST) {
            hs_set_libctx(E.libctx);
            E.sctx = hs_server_ctx(sc->mech, 0);
            hs_set_libctx(NULL);
            if ((o->ctx_made = E.sctx != NULL) == 0) /* judged as a failed first handshake */
                break;
        }
        hs_handshake(E.sctx, E.cctx, NULL, &r1);
        record_hs(&o->hs[0], &r1);
        if (r1.session != NULL) {
            hs_handshake(E.sctx, E.cctx, r1.session, &r2);
            record_hs(&o->hs[1], &r2);
            hs_result_clear(&r2);
        }
        hs_result_clear(&r1);
        if (E.foreign != NULL) {
            hs_handshake(E.sctx, E.cctx, E.foreign, &r2);
            record_hs(&o->hs[2], &r2);
            hs_result_clear(&r2);
        }
        break;
    }
    o->err_queued = ERR_peek_error() != 0;
}

/* Faults off again: read what the window left behind. */
static void post(const struct scenario *sc, struct outcome *o)
{
    EMSGUARD_POLICY *want;
    int i;

    if (sc->kind <= K_PROV_TYPO) {
        if (E.readback == NULL || !read_policy(E.readback, o->policy))
            die("post: cannot read the policy back");
        o->avail = OSSL_PROVIDER_available(E.libctx, sc->kind == K_PROV_NOCONFIG
                                                     ? module_path : "emsguard");
    } else if (!is_hs(sc->kind)) {
        o->enabled = EMSGUARD_CTX_is_enabled(E.ctx);
        o->cb[0] = (uintptr_t)SSL_CTX_sess_get_new_cb(E.ctx);
        o->cb[1] = (uintptr_t)SSL_CTX_sess_get_get_cb(E.ctx);
        o->cb[2] = (uintptr_t)SSL_CTX_get_info_callback(E.ctx);
        o->cache_n = (int)SSL_CTX_sess_number(E.ctx);
        ERR_set_mark();
        if ((want = make_policy(E.expect)) == NULL)
            die("post: cannot make a policy");
        o->same_policy = o->enabled && EMSGUARD_enable_policy(E.ctx, want) == 1;
        EMSGUARD_POLICY_free(want);
        ERR_pop_to_mark();
    } else if (E.pctx != NULL) {
        o->has_counters = 1;
        for (i = 0; i < EMSGUARD_CNT_MAX; i++)
            EMSGUARD_CTX_get_counter(E.pctx, (EMSGUARD_COUNTER)i, &o->counters[i]);
    }
    ERR_clear_error();
}

static void teardown(void)
{
    OSSL_PROVIDER_unload(E.prov);
    SSL_CTX_free(E.ctx);
    SSL_CTX_free(E.sctx);
    SSL_CTX_free(E.cctx);
    SSL_CTX_free(E.donor);
    SSL_SESSION_free(E.foreign);
    SSL_SESSION_free(E.cached);
    OSSL_LIB_CTX_free(E.libctx);
    EMSGUARD_POLICY_free(E.readback);
    hs_cleanup();
}

/* ---- one forked run -------------------------------------------------------- */

int __lsan_do_recoverable_leak_check(void) __attribute__((weak));
void __asan_init(void) __attribute__((weak));

/* Without ASan (which reports crashes itself): the stack of a crash. */
static void on_crash(int sig)
{
    static const char msg[] = "faults: crashed; stack:\n";
    void *frames[64];
    int n = backtrace(frames, 64);

    (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
    backtrace_symbols_fd(frames, n, STDERR_FILENO);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void run_child(const struct scenario *sc, struct report *rep)
{
    size_t i;

    alarm(RUN_TIMEOUT);
    if (err_fd >= 0)
        dup2(err_fd, STDERR_FILENO);
    if (__asan_init == NULL) {
        signal(SIGSEGV, on_crash);
        signal(SIGBUS, on_crash);
        signal(SIGABRT, on_crash);
    }
    rep->phase = PH_WINDOW;
    rep->window_seq = F.seq + 1;
    F.armed = 1;
    window(sc, &rep->out);
    F.armed = 0;
    rep->window_allocs = F.armed_seq;
    rep->phase = PH_POST;
    post(sc, &rep->out);
    rep->live_peak = tab_peak;
    rep->phase = PH_TEARDOWN;
    teardown();
    rep->phase = PH_CLEANUP;
    OPENSSL_cleanup();
    /* what is left now was leaked */
    rep->nleft = 0;
    for (i = 0; i < ((size_t)1 << TAB_BITS); i++) {
        struct leftover *l;

        if (tab[i].p == NULL)
            continue;
        if (rep->nleft < MAX_LEFT) {
            l = &rep->left[rep->nleft];
            set_site(&l->site, tab[i].file, tab[i].line, is_eg_file(tab[i].file));
            l->site.seq = tab[i].seq;
            l->size = tab[i].size;
        }
        rep->nleft++;
    }
    rep->lsan_leaks = -1;
    if (F.record && __lsan_do_recoverable_leak_check != NULL)
        rep->lsan_leaks = __lsan_do_recoverable_leak_check();
    rep->phase = PH_DONE;
}

/*
 * Forks a run failing window allocation |fail_at| (0: none, and classify
 * every allocation).  Returns the wait status; the report is in |rep|.
 */
static int fork_run(const struct scenario *sc, unsigned long fail_at, int record,
    unsigned long trace_seq, struct report *rep)
{
    pid_t pid;
    int status;

    memset(rep, 0, sizeof(*rep));
    if (err_fd >= 0) {
        if (ftruncate(err_fd, 0) != 0 || lseek(err_fd, 0, SEEK_SET) != 0)
            die("cannot reset the stderr file");
    }
    fflush(stdout);
    fflush(stderr);
    if ((pid = fork()) < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        F.fail_at = fail_at;
        F.record = record;
        F.trace_seq = trace_seq;
        cur_rep = rep;
        run_child(sc, rep);
        _exit(0);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            die("waitpid: %s", strerror(errno));
    return status;
}

static void print_child_stderr(const char *indent)
{
    char buf[4096];
    ssize_t n;
    off_t size = lseek(err_fd, 0, SEEK_END);

    if (size <= 0)
        return;
    /* the end holds the sanitizer's report or the last words */
    lseek(err_fd, size > (off_t)sizeof(buf) - 1 ? size - (off_t)sizeof(buf) + 1 : 0, SEEK_SET);
    if ((n = read(err_fd, buf, sizeof(buf) - 1)) <= 0)
        return;
    buf[n] = '\0';
    printf("%s--- stderr of the run (last %zd bytes) ---\n%s%s--- end ---\n", indent, n,
        buf, n > 0 && buf[n - 1] == '\n' ? "" : "\n");
}

/* ---- judging a run --------------------------------------------------------- */

static int same_hs(const struct hs_out *a, const struct hs_out *b)
{
    return a->run == b->run && a->ok == b->ok && a->reused == b->reused
        && a->sreused == b->sreused && a->ems == b->ems && a->offered == b->offered
        && a->salert == b->salert && a->calert == b->calert;
}

static void why(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void why(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    size_t used = strlen(buf);

    if (used + 3 >= len)
        return;
    if (used > 0) {
        memcpy(buf + used, "; ", 3);
        used += 2;
    }
    va_start(ap, fmt);
    vsnprintf(buf + used, len - used, fmt, ap);
    va_end(ap);
}

/*
 * Policy checks every run must pass, the clean one included.  Appends the
 * problems to |msg|; returns 1 if there were any.
 */
static int policy_violated(const struct scenario *sc, const struct outcome *o, char *msg,
    size_t len)
{
    int i, bad = 0;

    for (i = 0; is_hs(sc->kind) && i < MAX_HS; i++) {
        const struct hs_out *h = &o->hs[i];

        if (!h->run)
            continue;
        if (h->ok && (h->reused || h->sreused) && (sc->legacy || !h->ems)) {
            why(msg, len, "handshake %d RESUMED A NON-EMS SESSION", i + 1);
            bad = 1;
        }
        if (h->ok && sc->legacy && requires_ems(sc->kind)) {
            why(msg, len, "handshake %d: legacy peer completed although "
                          "RequireExtendedMasterSecret=1", i + 1);
            bad = 1;
        }
        if (sc->kind == K_HS_CLIENT && sc->legacy && i > 0 && h->offered) {
            why(msg, len, "handshake %d: policy client OFFERED A NON-EMS SESSION", i + 1);
            bad = 1;
        }
    }
    if (o->has_counters && o->counters[EMSGUARD_CNT_POLICY_BYPASSED] != 0) {
        /* real bypasses are caught above; this one is a false alarm */
        why(msg, len, "policy_bypassed counter is %llu%s",
            (unsigned long long)o->counters[EMSGUARD_CNT_POLICY_BYPASSED],
            bad ? "" : " although only EMS sessions were resumed (FALSE BYPASS ALARM)");
        bad = 1;
    }
    if (sc->kind == K_PROV_TYPO && o->avail) {
        why(msg, len, "provider ACTIVATED with a misspelt key in its section");
        bad = 1;
    }
    return bad;
}

/* What the clean run must show, so that a fault can be told from it. */
static int clean_as_expected(const struct scenario *sc, const struct outcome *o, char *msg,
    size_t len)
{
    const struct hs_out *h = o->hs;
    int resumes = !sc->legacy, rejects = sc->legacy && requires_ems(sc->kind);

    switch (sc->kind) {
    case K_PROV_CONFIG:
    case K_PROV_EXPLICIT:
    case K_PROV_NOCONFIG:
        if (o->ret != 1 || !o->avail || o->from_ret != 1 || o->found != 1
            || memcmp(o->policy, E.expect, sizeof(o->policy)) != 0
            || (sc->kind != K_PROV_CONFIG && !o->ret2)) {
            why(msg, len, "provider not loaded with the configured policy "
                          "(ret %d/%d avail %d from %d found %d)",
                o->ret, o->ret2, o->avail, o->from_ret, o->found);
            return 0;
        }
        return 1;
    case K_PROV_TYPO:
        if (o->avail || !o->logged) {
            why(msg, len, "misspelt key: avail %d, logged %d", o->avail, o->logged);
            return 0;
        }
        return 1;
    case K_ENABLE_POLICY:
    case K_ENABLE_DEFAULT:
    case K_ENABLE_EX:
    case K_ENABLE_CONFIGURED:
        if (o->ret != 1 || !o->enabled || !o->same_policy || o->cache_n != 0
            || o->cb[0] == (uintptr_t)app_new_cb) {
            why(msg, len, "enable: ret %d enabled %d same %d cached %d", o->ret, o->enabled,
                o->same_policy, o->cache_n);
            return 0;
        }
        return 1;
    default:
        /* A check that refused every SSL_CTX would otherwise pass as a rejection. */
        if (sc->kind == K_GUARD_FIRST && !o->ctx_made) {
            why(msg, len, "the guarded SSL_CTX was not created");
            return 0;
        }
        if (rejects) {
            if (h[0].ok || h[0].salert + h[0].calert == -2) {
                why(msg, len, "legacy peer was not rejected");
                return 0;
            }
            return 1;
        }
        if (!h[0].ok || h[0].reused || !h[1].run || !h[1].ok
            || h[1].reused != resumes || h[1].sreused != resumes
            || (E.foreign != NULL && (!h[2].ok || h[2].reused))) {
            why(msg, len, "handshakes: 1 ok %d reused %d; 2 ok %d reused %d (want %d)",
                h[0].ok, h[0].reused, h[1].ok, h[1].reused, resumes);
            return 0;
        }
        return 1;
    }
}

/* Sorts a run into a category; appends violations to |msg|. */
static int judge(const struct scenario *sc, const struct outcome *c, const struct outcome *o,
    char *msg, size_t len)
{
    int i, bad = policy_violated(sc, o, msg, len), same = 1, failed = 0;

    switch (sc->kind) {
    case K_PROV_CONFIG:
    case K_PROV_EXPLICIT:
    case K_PROV_NOCONFIG:
        if (o->from_ret == 1 && o->found == 1
            && memcmp(o->policy, E.expect, sizeof(o->policy)) != 0) {
            why(msg, len, "EMSGUARD_POLICY_from_provider read a WRONG POLICY");
            bad = 1;
        }
        if (o->avail && o->from_ret == 1 && o->found == 0) {
            why(msg, len, "provider active, but EMSGUARD_POLICY_from_provider returned 1 "
                          "with found=0 (EMSGUARD_enable_ex would apply built-in defaults)");
            bad = 1;
        }
        if (o->avail && o->ret == 1 && o->ret2 == c->ret2 && o->from_ret == 1 && o->found)
            return bad ? C_VIOLATION : C_ABSORBED;
        /* not loaded, or from_provider failed: a failure, if it said so */
        if (!o->avail && o->ret == 1 && (sc->kind == K_PROV_CONFIG) && !o->logged
            && !o->err_queued) {
            /* OpenSSL 3.0 makes activation failures non-fatal and pops their errors */
            why(msg, len, "note: provider silently not activated");
        }
        return bad ? C_VIOLATION : C_FAILED;
    case K_PROV_TYPO: /* refused as in the clean run, or failed before the check */
        return bad ? C_VIOLATION : o->logged ? C_ABSORBED : C_FAILED;
    case K_ENABLE_POLICY:
    case K_ENABLE_DEFAULT:
    case K_ENABLE_EX:
    case K_ENABLE_CONFIGURED:
        if (o->ret == 1) {
            if (!o->enabled || !o->same_policy) {
                why(msg, len, "enable returned 1 but the ctx %s",
                    o->enabled ? "has ANOTHER POLICY than the one configured"
                               : "is not enabled");
                bad = 1;
            }
            if (o->cache_n != 0) {
                why(msg, len, "enable returned 1 but did not empty the session cache");
                bad = 1;
            }
            if (memcmp(o->cb, c->cb, sizeof(o->cb)) != 0) {
                why(msg, len, "enable returned 1 but emsguard's callbacks are not installed");
                bad = 1;
            }
            return bad ? C_VIOLATION : C_ABSORBED;
        }
        if (o->enabled || o->cache_n != 1 || o->cb[0] != (uintptr_t)app_new_cb
            || o->cb[1] != (uintptr_t)app_get_cb || o->cb[2] != (uintptr_t)app_info_cb) {
            why(msg, len, "failed enable CHANGED THE CTX (enabled %d, cached %d, callbacks %s)",
                o->enabled, o->cache_n,
                o->cb[0] == (uintptr_t)app_new_cb && o->cb[1] == (uintptr_t)app_get_cb
                        && o->cb[2] == (uintptr_t)app_info_cb
                    ? "kept" : "replaced");
            bad = 1;
        }
        if (!o->err_queued) {
            why(msg, len, "enable failed without an error on the queue");
            bad = 1;
        }
        return bad ? C_VIOLATION : C_FAILED;
    default:
        break;
    }
    /* handshakes */
    for (i = 0; i < MAX_HS; i++) {
        if (!same_hs(&o->hs[i], &c->hs[i]))
            same = 0;
        if (o->hs[i].run && !o->hs[i].ok)
            failed = 1;
        if (c->hs[i].run && !o->hs[i].run)
            failed = 1; /* an earlier handshake failed */
    }
    if (o->has_counters) {
        uint64_t done = o->counters[EMSGUARD_CNT_FULL_HANDSHAKES]
            + o->counters[EMSGUARD_CNT_RESUMPTIONS];
        int completed = 0;

        for (i = 0; i < MAX_HS; i++)
            completed += o->hs[i].run && o->hs[i].ok;
        if (done < (uint64_t)completed) {
            why(msg, len, "%d handshakes completed, emsguard COUNTED %llu", completed,
                (unsigned long long)done);
            bad = 1;
        }
        if (same && memcmp(o->counters, c->counters, sizeof(o->counters)) != 0) {
            char diff[256] = "";

            for (i = 0; i < EMSGUARD_CNT_MAX; i++)
                if (o->counters[i] != c->counters[i])
                    why(diff, sizeof(diff), "%s %llu (clean %llu)",
                        EMSGUARD_counter_name((EMSGUARD_COUNTER)i),
                        (unsigned long long)o->counters[i], (unsigned long long)c->counters[i]);
            why(msg, len, "note: same handshakes, other counters: %s", diff);
        }
    }
    if (bad)
        return C_VIOLATION;
    return same ? C_ABSORBED : failed ? C_FAILED : C_FELL_BACK;
}

/* Blocks left by the run beyond the clean run's (matched by site). */
static int new_leftovers(const struct report *rep, const struct report *clean,
    const struct leftover **out, int max)
{
    char used[MAX_LEFT] = { 0 };
    int i, j, n = 0;

    for (i = 0; i < rep->nleft && i < MAX_LEFT; i++) {
        const struct site *s = &rep->left[i].site;

        for (j = 0; j < clean->nleft && j < MAX_LEFT; j++)
            if (!used[j] && clean->left[j].site.line == s->line
                && strcmp(clean->left[j].site.file, s->file) == 0)
                break;
        if (j < clean->nleft && j < MAX_LEFT) {
            used[j] = 1;
            continue;
        }
        if (n < max)
            out[n] = &rep->left[i];
        n++;
    }
    return n;
}

/* ---- the driver: one scenario --------------------------------------------- */

struct leak_site {
    char file[52];
    int line;
    unsigned long runs;
    unsigned long first_n;
    unsigned long first_seq;
    int before_window; /* allocated in setup: traced only in the driver */
    char fault[80];
    unsigned fault_cls;
};
#define MAX_LEAK_SITES 32

static int quiet_notes;
static unsigned long only_trace; /* -t: print the stack of this allocation */

static void describe_site(char *buf, size_t len, const struct site *s)
{
    snprintf(buf, len, "%s:%d%s", s->file, s->line,
        (s->cls & CLS_EG_FILE) ? " [emsguard]"
            : (s->cls & CLS_EG_STACK) ? " [OpenSSL, called by emsguard]" : "");
}

static void print_outcome(const struct scenario *sc, const struct outcome *o)
{
    int i;

    if (!is_hs(sc->kind)) {
        printf("    ret %d ret2 %d from_provider %d found %d policy %u,%u,%u,%u,%u,%u "
               "avail %d enabled %d same_policy %d cached %d err %d logged %d\n",
            o->ret, o->ret2, o->from_ret, o->found, o->policy[0], o->policy[1], o->policy[2],
            o->policy[3], o->policy[4], o->policy[5], o->avail, o->enabled, o->same_policy,
            o->cache_n, o->err_queued, o->logged);
        return;
    }
    for (i = 0; i < MAX_HS; i++)
        if (o->hs[i].run)
            printf("    handshake %d: ok %d reused %d/%d ems %d offered %d alerts s%d c%d\n",
                i + 1, o->hs[i].ok, o->hs[i].reused, o->hs[i].sreused, o->hs[i].ems,
                o->hs[i].offered, o->hs[i].salert, o->hs[i].calert);
    if (o->has_counters) {
        printf("    counters:");
        for (i = 0; i < EMSGUARD_CNT_MAX; i++)
            if (o->counters[i] != 0)
                printf(" %s=%llu", EMSGUARD_counter_name((EMSGUARD_COUNTER)i),
                    (unsigned long long)o->counters[i]);
        printf("\n");
    }
}

/* Whether the run's stderr contains |needle|, after |from| if not NULL. */
static int stderr_has_after(const char *from, const char *needle)
{
    char buf[32768];
    const char *p = buf;
    ssize_t n;

    if (lseek(err_fd, 0, SEEK_SET) != 0 || (n = read(err_fd, buf, sizeof(buf) - 1)) <= 0)
        return 0;
    buf[n] = '\0';
    if (from != NULL && (p = strstr(buf, from)) == NULL)
        return 0;
    return strstr(p, needle) != NULL;
}

static int stderr_has(const char *needle)
{
    return stderr_has_after(NULL, needle);
}

static unsigned long env_ulong(const char *name, unsigned long def)
{
    const char *v = getenv(name);

    return v != NULL && *v != '\0' ? strtoul(v, NULL, 10) : def;
}

#define NOT_ACTIVATED "emsguard: error: provider not activated"

/*
 * Two OpenSSL 3.0.x defects crash inside OSSL_LIB_CTX_new_child(), which
 * OSSL_provider_init calls, before control returns to emsguard:
 *  - child_prov_ossl_ctx_new() fails (provider_child.c), then
 *    OSSL_LIB_CTX_free() runs child_prov_ossl_ctx_free(NULL), which
 *    dereferences it;
 *  - in ossl_provider_register_child_cb() (provider_core.c) a failed
 *    sk_OSSL_PROVIDER_CHILD_CB_push() leaves i == max, and the cleanup loop
 *    calls remove_cb() for sk_OSSL_PROVIDER_value(providers, max) == NULL.
 * They are reported, not counted as emsguard's: the failed allocation is
 * OpenSSL's and the crashing stack is still inside that call.
 * Returns 1 for those, 2 for any crash in which no emsguard code took part
 * (neither the failed allocation's stack nor the crash report names it, as
 * in a use-after-free ASan finds in OpenSSL's own provider configuration
 * code, or an OPENSSL_assert() that OpenSSL 3.5's RCU read lock in
 * crypto/threads_pthread.c makes of its own failed allocation, which
 * aborts with "OpenSSL internal error"), 0 otherwise.
 */
static int crash_in_openssl(const struct site *fault)
{
    static const char *const markers[] = { "faults: crashed; stack:", "ERROR: AddressSanitizer",
        "OpenSSL internal error: assertion failed" };
    size_t i;

    if (fault->cls & CLS_EG_FILE)
        return 0;
    for (i = 0; i < sizeof(markers) / sizeof(markers[0]); i++) {
        if (!stderr_has(markers[i]))
            continue;
        if (stderr_has_after(markers[i], "OSSL_LIB_CTX_new_child"))
            return 1;
        if (!(fault->cls & CLS_EG_STACK) && !stderr_has_after(markers[i], "libemsguard")
            && !stderr_has_after(markers[i], "emsguard.so"))
            return 2;
    }
    return 0;
}

static void drive(int idx, unsigned long only_n)
{
    const struct scenario *sc = &scenarios[idx];
    struct stats *st = &shm->stats[idx];
    struct leak_site leaks[MAX_LEAK_SITES];
    int nleak_sites = 0, status, i;
    unsigned long n, ossl_seen = 0, stack_seen = 0;
    unsigned long sample_ossl = env_ulong("FAULTS_SAMPLE", 40);
    unsigned long sample_stack = env_ulong("FAULTS_STACK_SAMPLE", 80);
    int full = env_ulong("FAULTS_FULL", 0) != 0 || sc->full;
    char msg[1024];

    setup(sc);
    /* the clean run: counts and classifies the window's allocations */
    status = fork_run(sc, 0, 1, 0, &shm->clean);
    shm->clean.out.logged = stderr_has(NOT_ACTIVATED);
    msg[0] = '\0';
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || shm->clean.phase != PH_DONE
        || !clean_as_expected(sc, &shm->clean.out, msg, sizeof(msg))
        || policy_violated(sc, &shm->clean.out, msg, sizeof(msg))) {
        printf("FAIL %s: clean run: %s (status 0x%x, reached %s)\n", sc->name,
            msg[0] ? msg : "did not finish", status, phase_names[shm->clean.phase]);
        print_outcome(sc, &shm->clean.out);
        print_child_stderr("    ");
        st->clean_failed = 1;
        return;
    }
    if (shm->clean.lsan_leaks > 0) {
        printf("FAIL %s: LeakSanitizer found leaks in the clean run\n", sc->name);
        print_child_stderr("    ");
        st->clean_failed = 1;
    }
    for (i = 0; i < shm->clean.nleft && i < MAX_LEFT; i++) {
        char where[96];

        describe_site(where, sizeof(where), &shm->clean.left[i].site);
        printf("note %s: the clean run leaves %zu bytes from %s\n", sc->name,
            shm->clean.left[i].size, where);
    }
    st->allocs = shm->clean.window_allocs;
    if (getenv("FAULTS_DEBUG"))
        printf("debug %s: live peak %zu, LeakSanitizer on the clean run: %d\n", sc->name,
            shm->clean.live_peak, shm->clean.lsan_leaks);
    if (st->allocs > MAX_SITES)
        die("%s: %lu window allocations, more than %d", sc->name, st->allocs, MAX_SITES);
    for (n = 0; n < st->allocs; n++) {
        st->eg_file += (shm->sites[n].cls & CLS_EG_FILE) != 0;
        st->eg_stack += (shm->sites[n].cls & (CLS_EG_FILE | CLS_EG_STACK)) != 0;
    }
    /* every allocation in emsguard's files; a stride of the others */
    st->stride_stack = full || sample_stack == 0 ? 1
        : (st->eg_stack - st->eg_file + sample_stack - 1) / sample_stack;
    st->stride_ossl = full || sample_ossl == 0 ? 1
        : (st->allocs - st->eg_stack + sample_ossl - 1) / sample_ossl;
    if (st->stride_stack == 0)
        st->stride_stack = 1;
    if (st->stride_ossl == 0)
        st->stride_ossl = 1;
    for (n = 1; n <= st->allocs; n++) {
        const struct site *s = &shm->sites[n - 1];
        const struct leftover *lk[8];
        int cat, nl, j;

        if (only_n != 0 && n != only_n)
            continue;
        if (only_n == 0 && (s->cls & CLS_EG_FILE) == 0) {
            /* the offset varies with the scenario, so strides do not align */
            if ((s->cls & CLS_EG_STACK) != 0
                    ? stack_seen++ % st->stride_stack != (unsigned long)idx % st->stride_stack
                    : ossl_seen++ % st->stride_ossl != (unsigned long)idx % st->stride_ossl)
                continue;
        }
        status = fork_run(sc, n, 0, only_trace, &shm->rep);
        st->tried++;
        st->tried_eg_file += (s->cls & CLS_EG_FILE) != 0;
        st->tried_eg_stack += (s->cls & (CLS_EG_FILE | CLS_EG_STACK)) != 0;
        shm->rep.out.logged = stderr_has(NOT_ACTIVATED);
        msg[0] = '\0';
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || shm->rep.phase != PH_DONE) {
            char where[96];
            int known = WIFSIGNALED(status) && shm->rep.fault_hit
                ? crash_in_openssl(&shm->rep.fault_site) : 0;

            describe_site(where, sizeof(where), &shm->rep.fault_site);
            printf("%s %s n=%lu: run %s %d in %s; failed allocation %s\n",
                known ? "openssl-defect" : "VIOLATION", sc->name, n,
                WIFSIGNALED(status) ? "killed by signal" : "exited with",
                WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
                phase_names[shm->rep.phase], where);
            printf("    repro: BUILD=... faults -s %s -n %lu\n", sc->name, n);
            if (known != 1 || only_n != 0)
                print_child_stderr("    ");
            else
                printf("    crashed inside OSSL_LIB_CTX_new_child (OpenSSL 3.0 defect, "
                       "see crash_in_openssl in test/faults.c)\n");
            st->crashes += !known;
            st->cat[known ? C_OSSL_BUG : C_VIOLATION]++;
            continue;
        }
        if (!shm->rep.fault_hit) {
            st->cat[C_NOT_HIT]++;
            continue;
        }
        st->hit_eg_file += (shm->rep.fault_site.cls & CLS_EG_FILE) != 0;
        cat = judge(sc, &shm->clean.out, &shm->rep.out, msg, sizeof(msg));
        nl = new_leftovers(&shm->rep, &shm->clean, lk, 8);
        for (j = 0; j < nl && j < 8; j++) {
            const struct site *ls = &lk[j]->site;
            int k;

            if (is_eg_file(ls->file)) {
                why(msg, sizeof(msg), "LEAK of %zu bytes allocated at %s:%d (emsguard)",
                    lk[j]->size, ls->file, ls->line);
                cat = C_VIOLATION;
                st->leaks_eg++;
                continue;
            }
            st->leaks_ossl++;
            for (k = 0; k < nleak_sites; k++)
                if (leaks[k].line == ls->line && strcmp(leaks[k].file, ls->file) == 0)
                    break;
            if (k == nleak_sites && nleak_sites < MAX_LEAK_SITES) {
                snprintf(leaks[k].file, sizeof(leaks[k].file), "%s", ls->file);
                leaks[k].line = ls->line;
                leaks[k].runs = 0;
                leaks[k].first_n = n;
                leaks[k].first_seq = ls->seq;
                leaks[k].before_window = ls->seq < shm->rep.window_seq;
                describe_site(leaks[k].fault, sizeof(leaks[k].fault), &shm->rep.fault_site);
                leaks[k].fault_cls = shm->rep.fault_site.cls;
                nleak_sites++;
            }
            if (k < nleak_sites)
                leaks[k].runs++;
        }
        st->cat[cat]++;
        /* an emsguard allocation failed and nothing changed: worth a look */
        if (cat == C_ABSORBED && (shm->rep.fault_site.cls & CLS_EG_FILE) != 0)
            why(msg, sizeof(msg), "note: emsguard allocation failed without effect");
        if (cat == C_VIOLATION || only_n != 0 || (strstr(msg, "note:") && !quiet_notes)) {
            char where[96];

            describe_site(where, sizeof(where), &shm->rep.fault_site);
            printf("%s %s n=%lu (failed allocation %s): %s: %s\n",
                cat == C_VIOLATION ? "VIOLATION" : "info", sc->name, n, where,
                cat_names[cat], msg[0] ? msg : "ok");
            if (cat == C_VIOLATION || only_n != 0) {
                print_outcome(sc, &shm->rep.out);
                printf("    clean run:\n");
                print_outcome(sc, &shm->clean.out);
                printf("    repro: BUILD=... faults -s %s -n %lu\n", sc->name, n);
            }
            if (only_n != 0)
                print_child_stderr("    ");
        }
    }
    /* where OpenSSL leaked, and which stack allocated the block */
    for (i = 0; i < nleak_sites; i++) {
        int eg_fault = (leaks[i].fault_cls & (CLS_EG_FILE | CLS_EG_STACK)) != 0, eg_block = 0;

        if (!leaks[i].before_window) {
            /* replay the first run that leaked here, printing the block's stack */
            fork_run(sc, leaks[i].first_n, 0, leaks[i].first_seq, &shm->rep);
            eg_block = shm->rep.traced
                && (shm->rep.trace_cls & (CLS_EG_FILE | CLS_EG_STACK)) != 0;
        }
        if (eg_fault || eg_block)
            st->leaks_ossl_eg += leaks[i].runs;
        printf("leak %s: %lu run(s) leave a block allocated at %s:%d (first: -n %lu, failed "
               "allocation %s); emsguard on the stack of the failed allocation: %s, of the "
               "leaked block: %s\n",
            sc->name, leaks[i].runs, leaks[i].file, leaks[i].line, leaks[i].first_n,
            leaks[i].fault, eg_fault ? "yes" : "no",
            leaks[i].before_window ? "n/a (allocated in setup, before the window: OpenSSL "
                                     "lost a block it already had)"
                : !shm->rep.traced ? "unknown (the replay did not reach it)"
                : eg_block ? "yes" : "no");
        if (eg_fault || eg_block || F.verbose)
            print_child_stderr("    ");
    }
}

/* ---- main ------------------------------------------------------------------ */

static int find_scenario(const char *name)
{
    size_t i;

    for (i = 0; i < NSCEN; i++)
        if (strcmp(scenarios[i].name, name) == 0)
            return (int)i;
    return -1;
}

static void remove_tmpdir(void)
{
    size_t i;

    unlink(empty_cnf);
    for (i = 0; i < NSCEN; i++)
        unlink(cnf_path(scenarios[i].name));
    {
        char path[PATH_MAX + 16];

        snprintf(path, sizeof(path), "%s/stderr", tmpdir);
        unlink(path);
    }
    rmdir(tmpdir);
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    const char *build = getenv("BUILD"), *tmp = getenv("TMPDIR");
    char absbuild[PATH_MAX], path[PATH_MAX + 16];
    int only = -1, opt, i, bad = 0;
    unsigned long only_n = 0;
    struct stats total;
    double t0 = now();
    FILE *f;

    /* Before anything can make OpenSSL allocate. */
    if (!CRYPTO_set_mem_functions(fa_malloc, fa_realloc, fa_free)) {
        fprintf(stderr, "faults: FAIL: CRYPTO_set_mem_functions refused (an allocation "
                        "happened before main)\n");
        return 1;
    }
    while ((opt = getopt(argc, argv, "s:n:t:lq")) != -1) {
        switch (opt) {
        case 's':
            if ((only = find_scenario(optarg)) < 0)
                die("unknown scenario '%s' (-l lists them)", optarg);
            break;
        case 'n':
            only_n = strtoul(optarg, NULL, 10);
            F.verbose = 1;
            break;
        case 't':
            only_trace = strtoul(optarg, NULL, 10);
            break;
        case 'l':
            for (i = 0; i < (int)NSCEN; i++)
                printf("%-20s %s\n", scenarios[i].name, scenarios[i].what);
            return 0;
        case 'q':
            quiet_notes = 1;
            break;
        default:
            fprintf(stderr, "usage: %s [-s scenario [-n N [-t SEQ]]] [-l] [-q]\n", argv[0]);
            return 2;
        }
    }
    if (only_n != 0 && only < 0)
        die("-n needs -s");
    if (build == NULL || *build == '\0')
        build = "build";
    if (realpath(build, absbuild) == NULL)
        die("FAIL: build directory '%s': %s", build, strerror(errno));
    snprintf(module_path, sizeof(module_path), "%s/emsguard.so", absbuild);
    if (access(module_path, R_OK) != 0)
        die("FAIL: provider module %s: %s (make BUILD_DIR=... all)", module_path,
            strerror(errno));
    snprintf(tmpdir, sizeof(tmpdir), "%s/emsguard-faults.XXXXXX",
        tmp != NULL && *tmp ? tmp : "/tmp");
    if (mkdtemp(tmpdir) == NULL)
        die("mkdtemp: %s", strerror(errno));
    snprintf(empty_cnf, sizeof(empty_cnf), "%s/empty.cnf", tmpdir);
    if ((f = fopen(empty_cnf, "w")) == NULL || fclose(f) != 0)
        die("cannot write %s", empty_cnf);
    snprintf(path, sizeof(path), "%s/stderr", tmpdir);
    if ((err_fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600)) < 0)
        die("cannot open %s: %s", path, strerror(errno));
    if ((tab = calloc((size_t)1 << TAB_BITS, sizeof(*tab))) == NULL)
        die("out of memory");
    shm = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shm == MAP_FAILED)
        die("mmap: %s", strerror(errno));
    {
        void *frames[4];

        backtrace(frames, 4); /* loads the unwinder now, not inside a hook */
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    for (i = 0; i < (int)NSCEN; i++) {
        pid_t pid;
        int status;
        double t = now();

        if (only >= 0 && i != only)
            continue;
        fflush(stdout);
        if ((pid = fork()) < 0)
            die("fork: %s", strerror(errno));
        if (pid == 0) {
            /* the driver: setup, then one fork per fault point */
            drive(i, only_n);
            fflush(stdout);
            _exit(0);
        }
        while (waitpid(pid, &status, 0) < 0)
            if (errno != EINTR)
                die("waitpid: %s", strerror(errno));
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            printf("FAIL %s: the driver %s %d\n", scenarios[i].name,
                WIFSIGNALED(status) ? "was killed by signal" : "exited with",
                WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
            shm->stats[i].setup_failed = 1;
        }
        shm->stats[i].seconds = now() - t;
    }

    memset(&total, 0, sizeof(total));
    printf("\n%-20s %6s %5s %5s %5s %5s %5s %6s %6s %6s %6s %5s %4s %5s %5s\n", "scenario",
        "allocs", "eg", "eg-stk", "1/stk", "1/oth", "tried", "failed", "fellbk", "absorb",
        "nothit", "osbug", "VIOL", "leakO", "secs");
    for (i = 0; i < (int)NSCEN; i++) {
        struct stats *s = &shm->stats[i];
        int j;

        if (only >= 0 && i != only)
            continue;
        printf("%-20s %6lu %5lu %5lu %5lu %5lu %5lu %6lu %6lu %6lu %6lu %5lu %4lu %5lu %5.1f%s\n",
            scenarios[i].name, s->allocs, s->eg_file, s->eg_stack - s->eg_file, s->stride_stack,
            s->stride_ossl, s->tried,
            s->cat[C_FAILED], s->cat[C_FELL_BACK], s->cat[C_ABSORBED], s->cat[C_NOT_HIT],
            s->cat[C_OSSL_BUG], s->cat[C_VIOLATION], s->leaks_ossl, s->seconds,
            s->setup_failed || s->clean_failed ? "  (FAILED)" : "");
        total.allocs += s->allocs;
        total.eg_file += s->eg_file;
        total.eg_stack += s->eg_stack;
        total.tried += s->tried;
        total.tried_eg_file += s->tried_eg_file;
        total.tried_eg_stack += s->tried_eg_stack;
        total.hit_eg_file += s->hit_eg_file;
        total.leaks_eg += s->leaks_eg;
        total.leaks_ossl += s->leaks_ossl;
        total.leaks_ossl_eg += s->leaks_ossl_eg;
        total.crashes += s->crashes;
        for (j = 0; j < C_COUNT; j++)
            total.cat[j] += s->cat[j];
        bad |= s->setup_failed || s->clean_failed || s->cat[C_VIOLATION] != 0;
    }
    printf("\nfaults: %d scenarios, %lu window allocations counted (%lu in emsguard code "
           "[provider/*.c], %lu more with emsguard on the stack)\n",
        only >= 0 ? 1 : (int)NSCEN, total.allocs, total.eg_file,
        total.eg_stack - total.eg_file);
    printf("faults: fault points tried: %lu (in emsguard code: %lu, OpenSSL called by "
           "emsguard: %lu, OpenSSL on its own: %lu%s)\n",
        total.tried, total.tried_eg_file, total.tried_eg_stack - total.tried_eg_file,
        total.tried - total.tried_eg_stack,
        env_ulong("FAULTS_FULL", 0) ? ", all"
                                     : "; the others 1 in '1/stk' and '1/oth' per scenario");
    printf("faults: failures observed: %lu failed, %lu fell back, %lu absorbed, %lu not hit; "
           "%lu crashes in OpenSSL's own code (known defects); %lu violations (%lu "
           "crashes/hangs, %lu emsguard leaks)\n",
        total.cat[C_FAILED], total.cat[C_FELL_BACK], total.cat[C_ABSORBED],
        total.cat[C_NOT_HIT], total.cat[C_OSSL_BUG], total.cat[C_VIOLATION], total.crashes,
        total.leaks_eg);
    printf("faults: blocks leaked by OpenSSL-site allocations: %lu (%lu with emsguard on the "
           "stack of the failed or the leaked allocation, see 'leak' lines)\n",
        total.leaks_ossl, total.leaks_ossl_eg);
    if (unknown_frees != 0)
        printf("faults: note: %lu frees of blocks not allocated through the hooks\n",
            unknown_frees);
    printf("faults: time %.1f s\n", now() - t0);
    printf("faults: %s\n", bad ? "FAIL" : "PASS");
    close(err_fd);
    remove_tmpdir();
    return bad ? 1 : 0;
}
