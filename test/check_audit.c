/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The TLS1-PRF guard's audit counts under load (issue 20): thousands of
 * server handshakes sitting between master-secret derivation and key
 * expansion at once, and a flood of handshakes abandoned right after the
 * ClientKeyExchange.  The counts an administrator decides on must match what
 * the clients did; when the guard cannot keep a fingerprint it says so
 * (EMSGUARD_AUDIT_LOST_FINGERPRINTS) and the resumption count is off by at
 * most that.  Also: the "(at exit)" summary is written once, at exit.
 *
 * Every connection is a client and a server SSL joined by four memory BIOs;
 * the test moves ONE record per direction per round, round-robin over all of
 * them, so every server has derived its master secret (ClientKeyExchange)
 * before any reads the ChangeCipherSpec that makes it expand the key.  The
 * servers use a library context whose openssl.cnf selects the guard; the
 * clients use the default one, so only server derivations are counted.
 *
 *   BUILD=build build/test/check_audit
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <check.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include "emsguard.h"
#include "harness.h"
#include "harness_check.h"

#define CONCURRENT 5000
#define ABANDONED 40000 /* ten times the old table, beyond the new one */
#define MAX_ROUNDS 200

static char module_path[PATH_MAX + 32];
static char tmpdir[PATH_MAX];

/* A library context whose openssl.cnf selects the guard, audit mode. */
static OSSL_LIB_CTX *guarded_libctx(int event_logging)
{
    char path[PATH_MAX + 64];
    OSSL_LIB_CTX *libctx = OSSL_LIB_CTX_new();
    FILE *f;

    ck_assert_ptr_nonnull(libctx);
    snprintf(path, sizeof(path), "%s/audit-%d-%d.cnf", tmpdir, (int)getpid(), event_logging);
    ck_assert_ptr_nonnull(f = fopen(path, "w"));
    fprintf(f,
        "openssl_conf = init\n[init]\nproviders = provs\nalg_section = algs\n"
        "[provs]\ndefault = def\nemsguard = eg\n[def]\nactivate = 1\n"
        "[eg]\nmodule = %s\nactivate = 1\nEventLogging = %d\n"
        "[algs]\ndefault_properties = ?emsguard.guard=yes\n",
        module_path, event_logging);
    fclose(f);
    ck_assert_msg(OSSL_LIB_CTX_load_config(libctx, path) == 1, "cannot load %s", path);
    unlink(path);
    return libctx;
}

static void audit_snapshot(uint64_t out[EMSGUARD_AUDIT_MAX])
{
    int i;

    for (i = 0; i < EMSGUARD_AUDIT_MAX; i++)
        ck_assert_int_eq(EMSGUARD_audit_get((EMSGUARD_AUDIT_COUNTER)i, &out[i]), 1);
}

static uint64_t moved(const uint64_t before[EMSGUARD_AUDIT_MAX], EMSGUARD_AUDIT_COUNTER which)
{
    uint64_t now = 0;

    ck_assert_int_eq(EMSGUARD_audit_get(which, &now), 1);
    return now - before[which];
}

static void summary_names_lost(void);

/* ---- connections driven one record at a time ----------------------------- */

typedef struct {
    SSL *client, *server;
    BIO *client_out, *server_in, *server_out, *client_in;
    int client_state, server_state; /* 0 running, 1 done, -1 failed */
} conn;

typedef struct {
    int full, resumed, failed, abandoned;
} wave_result;

static BIO *mem_bio(void)
{
    BIO *b = BIO_new(BIO_s_mem());

    ck_assert_ptr_nonnull(b);
    BIO_set_mem_eof_return(b, -1); /* empty: "try again", not EOF */
    return b;
}

static void conn_open(conn *c, SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *offer)
{
    memset(c, 0, sizeof(*c));
    ck_assert_ptr_nonnull(c->client = SSL_new(cctx));
    ck_assert_ptr_nonnull(c->server = SSL_new(sctx));
    c->client_out = mem_bio();
    c->server_in = mem_bio();
    c->server_out = mem_bio();
    c->client_in = mem_bio();
    SSL_set_bio(c->client, c->client_in, c->client_out);
    SSL_set_bio(c->server, c->server_in, c->server_out);
    SSL_set_connect_state(c->client);
    SSL_set_accept_state(c->server);
    if (offer != NULL)
        ck_assert_int_eq(SSL_set_session(c->client, offer), 1);
}

static void conn_close(conn *c)
{
    /* Freed without a shutdown, libssl would drop the session as bad. */
    if (c->client_state == 1 && c->server_state == 1) {
        SSL_set_shutdown(c->client, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        SSL_set_shutdown(c->server, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    }
    SSL_free(c->client);
    SSL_free(c->server);
    c->client = c->server = NULL;
}

/* Moves one whole TLS record from |from| to |to|, if one is there. */
static void move_one_record(BIO *from, BIO *to)
{
    static unsigned char scratch[5 + 18432];
    char *p;
    long n = BIO_get_mem_data(from, &p);
    size_t len;

    if (n < 5)
        return;
    len = 5 + (((size_t)(unsigned char)p[3] << 8) | (unsigned char)p[4]);
    if ((size_t)n < len || len > sizeof(scratch))
        return;
    ck_assert_int_eq(BIO_write(to, p, (int)len), (int)len);
    ck_assert_int_eq(BIO_read(from, scratch, (int)len), (int)len);
}

static void conn_step(conn *c)
{
    if (c->client_state == 0)
        c->client_state = hs_step(c->client);
    move_one_record(c->client_out, c->server_in);
    if (c->server_state == 0)
        c->server_state = hs_step(c->server);
    move_one_record(c->server_out, c->client_in);
}

/* The server has read the ClientKeyExchange: its master secret exists. */
static int server_derived(const conn *c)
{
    return SSL_get_state(c->server) == TLS_ST_SR_KEY_EXCH;
}

/*
 * Runs |n| connections at once, one record per direction per round.  Client
 * i offers offers[i] when offers is not NULL; the sessions of completed
 * clients go to keep[i] when keep is not NULL.  With |abandon| every
 * connection is dropped as soon as its server derived the master secret.
 */
static wave_result run_wave(SSL_CTX *sctx, SSL_CTX *cctx, int n, SSL_SESSION **offers,
    SSL_SESSION **keep, int abandon)
{
    conn *c = calloc((size_t)n, sizeof(*c));
    wave_result r = { 0, 0, 0, 0 };
    int i, round, running = n;

    ck_assert_ptr_nonnull(c);
    for (i = 0; i < n; i++)
        conn_open(&c[i], sctx, cctx, offers != NULL ? offers[i] : NULL);
    for (round = 0; round < MAX_ROUNDS && running > 0; round++)
        for (i = 0; i < n; i++) {
            if (c[i].server == NULL)
                continue;
            conn_step(&c[i]);
            if (abandon && server_derived(&c[i])) {
                r.abandoned++;
            } else if (c[i].client_state == 1 && c[i].server_state == 1) {
                if (SSL_session_reused(c[i].server))
                    r.resumed++;
                else
                    r.full++;
                if (keep != NULL)
                    keep[i] = SSL_get1_session(c[i].client);
            } else if (c[i].client_state < 0 || c[i].server_state < 0) {
                r.failed++;
            } else {
                continue;
            }
            conn_close(&c[i]);
            running--;
        }
    for (i = 0; i < n; i++)
        if (c[i].server != NULL) {
            r.failed++;
            conn_close(&c[i]);
        }
    free(c);
    ERR_clear_error();
    return r;
}

static SSL_CTX *server_ctx(OSSL_LIB_CTX *libctx)
{
    SSL_CTX *ctx;

    hs_set_libctx(libctx);
    ck_assert_ptr_nonnull(ctx = hs_server_ctx(HS_MECH_SESSION_ID, 0));
    hs_set_libctx(NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_sess_set_cache_size(ctx, 4 * CONCURRENT);
    return ctx;
}

static SSL_CTX *client_ctx(void)
{
    SSL_CTX *ctx;

    hs_set_libctx(NULL);
    ck_assert_ptr_nonnull(ctx = hs_client_ctx(0));
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    return ctx;
}

/*
 * One wave of CONCURRENT connections, half offering a session of |sessions|
 * (which must resume), half new: the audit must count exactly that.
 */
static void mixed_wave_is_counted_exactly(SSL_CTX *sctx, SSL_CTX *cctx,
    SSL_SESSION **sessions, const char *when)
{
    SSL_SESSION **offers = calloc(CONCURRENT, sizeof(*offers));
    uint64_t before[EMSGUARD_AUDIT_MAX];
    wave_result r;
    int i;

    ck_assert_ptr_nonnull(offers);
    for (i = 0; i < CONCURRENT; i += 2)
        offers[i] = sessions[i];
    audit_snapshot(before);
    r = run_wave(sctx, cctx, CONCURRENT, offers, NULL, 0);
    free(offers);
    printf("%s: %d resumed, %d full, %d failed; audit: resumptions +%llu, "
           "ems_derivations +%llu, lost_fingerprints +%llu\n",
        when, r.resumed, r.full, r.failed,
        (unsigned long long)moved(before, EMSGUARD_AUDIT_RESUMPTIONS),
        (unsigned long long)moved(before, EMSGUARD_AUDIT_EMS_DERIVATIONS),
        (unsigned long long)moved(before, EMSGUARD_AUDIT_LOST_FINGERPRINTS));
    ck_assert_int_eq(r.failed, 0);
    ck_assert_int_eq(r.resumed, CONCURRENT / 2);
    ck_assert_int_eq(r.full, CONCURRENT / 2);
    ck_assert_uint_eq(moved(before, EMSGUARD_AUDIT_EMS_DERIVATIONS), (uint64_t)r.full);
    ck_assert_uint_eq(moved(before, EMSGUARD_AUDIT_RESUMPTIONS), (uint64_t)r.resumed);
}

START_TEST(test_concurrent_and_abandoned_counts)
{
    OSSL_LIB_CTX *libctx = guarded_libctx(0);
    SSL_CTX *sctx = server_ctx(libctx), *cctx = client_ctx();
    SSL_SESSION **sessions = calloc(CONCURRENT, sizeof(*sessions));
    uint64_t before[EMSGUARD_AUDIT_MAX], lost;
    wave_result r;
    int i;

    ck_assert_ptr_nonnull(sessions);

    /* CONCURRENT full handshakes in flight at once. */
    audit_snapshot(before);
    r = run_wave(sctx, cctx, CONCURRENT, NULL, sessions, 0);
    printf("full wave: %d full, %d resumed, %d failed; audit: resumptions +%llu, "
           "ems_derivations +%llu, lost_fingerprints +%llu\n",
        r.full, r.resumed, r.failed,
        (unsigned long long)moved(before, EMSGUARD_AUDIT_RESUMPTIONS),
        (unsigned long long)moved(before, EMSGUARD_AUDIT_EMS_DERIVATIONS),
        (unsigned long long)moved(before, EMSGUARD_AUDIT_LOST_FINGERPRINTS));
    ck_assert_int_eq(r.full, CONCURRENT);
    ck_assert_uint_eq(moved(before, EMSGUARD_AUDIT_EMS_DERIVATIONS), CONCURRENT);
    ck_assert_uint_eq(moved(before, EMSGUARD_AUDIT_RESUMPTIONS), 0);
    /* Within capacity the guard keeps every fingerprint. */
    ck_assert_uint_eq(moved(before, EMSGUARD_AUDIT_LOST_FINGERPRINTS), 0);

    /* Half of them resume while as many new ones run. */
    mixed_wave_is_counted_exactly(sctx, cctx, sessions, "mixed wave");

    /* A flood of connections dropped after the ClientKeyExchange. */
    audit_snapshot(before);
    for (i = 0; i < ABANDONED / 1000; i++) {
        r = run_wave(sctx, cctx, 1000, NULL, NULL, 1);
        ck_assert_int_eq(r.abandoned, 1000);
    }
    lost = moved(before, EMSGUARD_AUDIT_LOST_FINGERPRINTS);
    printf("abandoned flood: %d connections; audit: ems_derivations +%llu, "
           "resumptions +%llu, lost_fingerprints +%llu\n", ABANDONED,
        (unsigned long long)moved(before, EMSGUARD_AUDIT_EMS_DERIVATIONS),
        (unsigned long long)moved(before, EMSGUARD_AUDIT_RESUMPTIONS),
        (unsigned long long)lost);
    ck_assert_uint_eq(moved(before, EMSGUARD_AUDIT_EMS_DERIVATIONS), ABANDONED);
    ck_assert_uint_eq(moved(before, EMSGUARD_AUDIT_RESUMPTIONS), 0);
    /* Memory is bounded: beyond capacity fingerprints go, and are counted. */
    ck_assert_uint_gt(lost, 0);

    /* The abandoned ones give way to live ones: the counts stay exact. */
    mixed_wave_is_counted_exactly(sctx, cctx, sessions, "mixed wave after the flood");
    summary_names_lost();

    for (i = 0; i < CONCURRENT; i++)
        SSL_SESSION_free(sessions[i]);
    free(sessions);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    OSSL_LIB_CTX_free(libctx);
}
END_TEST

static void log_audit(void)
{
    ck_assert_int_eq(EMSGUARD_audit_log(), 1);
}

/* The summary line names the lost fingerprints and what they mean. */
static void summary_names_lost(void)
{
    uint64_t lost = 0;
    const char *out = hs_capture_stderr(log_audit);
    char want[160];

    ck_assert_int_eq(EMSGUARD_audit_get(EMSGUARD_AUDIT_LOST_FINGERPRINTS, &lost), 1);
    ck_assert_ptr_nonnull(out);
    snprintf(want, sizeof(want), " lost_fingerprints=%llu (resumptions may be up to %llu high);",
        (unsigned long long)lost, (unsigned long long)lost);
    ck_assert_msg(strstr(out, want) != NULL, "no '%s' in: %s", want, out);
}

/* ---- the summary at exit -------------------------------------------------- */

/*
 * A child process uses the guard through two library contexts and frees
 * both before it exits: the "(at exit)" line must come once, after both.
 */
START_TEST(test_summary_once_at_exit)
{
    int fds[2], status, lines = 0;
    char buf[16384], *p;
    size_t len = 0;
    ssize_t got;
    pid_t pid;

    ck_assert_int_eq(pipe(fds), 0);
    fflush(NULL);
    ck_assert_int_ge(pid = fork(), 0);
    if (pid == 0) {
        OSSL_LIB_CTX *a, *b;
        SSL_CTX *sa, *sb, *cc;
        hs_result res;

        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        a = guarded_libctx(1);
        b = guarded_libctx(1);
        sa = server_ctx(a);
        sb = server_ctx(b);
        cc = client_ctx();
        if (!hs_handshake(sa, cc, NULL, &res))
            _exit(3);
        hs_result_clear(&res);
        if (!hs_handshake(sb, cc, NULL, &res))
            _exit(3);
        hs_result_clear(&res);
        SSL_CTX_free(sa);
        SSL_CTX_free(sb);
        SSL_CTX_free(cc);
        OSSL_LIB_CTX_free(a);
        fputs("marker: first library context freed\n", stderr);
        OSSL_LIB_CTX_free(b);
        fputs("marker: second library context freed\n", stderr);
        hs_cleanup();
        exit(0);
    }
    close(fds[1]);
    while (len < sizeof(buf) - 1 && (got = read(fds[0], buf + len, sizeof(buf) - 1 - len)) > 0)
        len += (size_t)got;
    buf[len] = '\0';
    close(fds[0]);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    printf("child's stderr:\n%s", buf);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed");
    for (p = buf; (p = strstr(p, "TLS1-PRF audit (at exit)")) != NULL; p++)
        lines++;
    ck_assert_int_eq(lines, 1);
    p = strstr(buf, "TLS1-PRF audit (at exit)");
    ck_assert_ptr_nonnull(strstr(buf, "marker: second library context freed"));
    ck_assert_msg(p > strstr(buf, "marker: second library context freed"),
        "the summary came before the process exited");
}
END_TEST

static Suite *audit_suite(void)
{
    Suite *s = suite_create("emsguard-audit");
    TCase *tc = tcase_create("counts");

    tcase_set_timeout(tc, 900);
    /* First: the child must be the first in this process to run the guard. */
    tcase_add_test(tc, test_summary_once_at_exit);
    tcase_add_test(tc, test_concurrent_and_abandoned_counts);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    return hs_run_nofork("check_audit", audit_suite, module_path, sizeof(module_path), tmpdir,
        sizeof(tmpdir));
}
