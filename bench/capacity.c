/* SPDX-License-Identifier: Apache-2.0 */
/*
 * emsguard-bench: the capacity table -- what enforcement costs a server
 * whose clients lack EMS.  Such a client offers its session; stock OpenSSL
 * resumes it, emsguard refuses and does a full handshake instead.  We time
 * both on the server side, for an RSA-2048 and an ECDSA P-256 certificate.
 *
 * Client and server share one thread, so the server's CPU time cannot be
 * read directly, and reading a thread CPU clock costs over a microsecond on
 * a VM (as much as a tenth of a resumption).  So the batch is timed with the
 * thread CPU clock, and each side's calls (SSL_new, every handshake step,
 * SSL_free) with the cheap monotonic clock; the server's CPU time is the
 * batch's CPU time times the server's share of the monotonic time.
 */
#include <stdio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include "emsguard.h"
#include "harness.h"
#include "bench_env.h"
#include "bench_time.h"
#include "report.h"
#include "capacity.h"

struct split {
    double server, client; /* monotonic seconds inside each side's calls */
};

static int step(SSL *ssl, double *acc)
{
    double t0 = bench_wall_now();
    int r = SSL_do_handshake(ssl), e = r == 1 ? 0 : SSL_get_error(ssl, r);

    *acc += bench_wall_now() - t0;
    if (r == 1)
        return 1;
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

/* bench_handshake() with each side's calls timed; 1 resumed, 0 full, -1 failed. */
static int split_handshake(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *offer, struct split *t)
{
    double t0 = bench_wall_now(), t1;
    SSL *server = SSL_new(sctx), *client;
    BIO *cbio = NULL, *sbio = NULL;
    int result = -1, c = 0, s = 0, i;

    t1 = bench_wall_now();
    t->server += t1 - t0;
    client = SSL_new(cctx);
    if (client != NULL && server != NULL && BIO_new_bio_pair(&cbio, 0, &sbio, 0)) {
        SSL_set_bio(client, cbio, cbio);
        SSL_set_bio(server, sbio, sbio);
        SSL_set_connect_state(client);
        SSL_set_accept_state(server);
        if (offer == NULL || SSL_set_session(client, offer)) {
            t->client += bench_wall_now() - t1;
            for (i = 0; i < 64 && (c == 0 || s == 0) && c >= 0 && s >= 0; i++) {
                if (c == 0)
                    c = step(client, &t->client);
                if (s == 0 && c >= 0)
                    s = step(server, &t->server);
            }
            t1 = bench_wall_now();
        }
        if (c == 1 && s == 1) {
            result = SSL_session_reused(server);
            SSL_set_shutdown(client, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
            SSL_set_shutdown(server, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        }
    }
    SSL_free(client);
    t0 = bench_wall_now();
    t->client += t0 - t1;
    SSL_free(server);
    t->server += bench_wall_now() - t0;
    if (result < 0)
        ERR_clear_error();
    return result;
}

struct cost {
    double server_us, pair_us; /* per connection */
};

/* |n| connections; each must resume exactly when |resume| says. */
static struct cost time_split(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *offer, int resume,
    int n)
{
    struct split t = { 0, 0 };
    double cpu = bench_now();
    struct cost c;
    int i;

    for (i = 0; i < n; i++)
        if (split_handshake(sctx, cctx, offer, &t) != resume)
            bench_fail("capacity: a handshake failed or did not (not) resume as expected");
    cpu = bench_now() - cpu;
    c.pair_us = cpu / n * 1e6;
    c.server_us = c.pair_us * t.server / (t.server + t.client);
    return c;
}

struct legacy_case {
    SSL_CTX *stock, *guarded, *client;
    SSL_SESSION *offer; /* a session without EMS, from the stock server */
};

/*
 * Ticket servers sharing their keys, so the emsguard server can read the
 * legacy ticket and refuse it by policy (not by a cache miss).
 */
static void make_case(struct legacy_case *lc, const struct env *e, int suite)
{
    hs_result full;
    uint64_t refused = 0;

    lc->stock = bench_server_ctx(e, suite, MODE_TICKET);
    lc->guarded = bench_server_ctx(e, suite, MODE_TICKET);
    bench_enable_default_policy(lc->guarded);
    lc->client = bench_client_ctx(e, suite, HS_NO_EMS);
    if (!hs_handshake(lc->stock, lc->client, NULL, &full) || full.ems || full.hello_ems
        || full.session == NULL)
        bench_fail("capacity: the legacy client's first handshake failed or used EMS");
    lc->offer = full.session;
    full.session = NULL;
    hs_result_clear(&full);
    if (bench_handshake(lc->stock, lc->client, lc->offer) != 1)
        bench_fail("capacity: stock OpenSSL did not resume the legacy session");
    if (bench_handshake(lc->guarded, lc->client, lc->offer) != 0
        || !EMSGUARD_CTX_get_counter(lc->guarded, EMSGUARD_CNT_REFUSED_NO_EMS, &refused)
        || refused != 1)
        bench_fail("capacity: emsguard did not refuse the legacy session by policy");
}

static void free_case(struct legacy_case *lc)
{
    SSL_SESSION_free(lc->offer);
    SSL_CTX_free(lc->client);
    SSL_CTX_free(lc->guarded);
    SSL_CTX_free(lc->stock);
}

struct capacity_row {
    struct bench_stat resumed, full, factor, pair_resumed, pair_full;
};

static void measure_suite(const struct env *e, int suite, const struct options *o,
    struct capacity_row *row)
{
    double res[BENCH_MAX_ROUNDS], ful[BENCH_MAX_ROUNDS], fac[BENCH_MAX_ROUNDS];
    double pres[BENCH_MAX_ROUNDS], pful[BENCH_MAX_ROUNDS];
    int n_res = o->n_resumed / 8 > 0 ? o->n_resumed / 8 : 1;
    int n_full = o->n_full / 8 > 0 ? o->n_full / 8 : 1;
    struct legacy_case lc;
    int r;

    make_case(&lc, e, suite);
    for (r = 0; r < o->rounds; r++) {
        struct cost a, b;

        /* Alternate which one runs first. */
        if (r % 2) {
            b = time_split(lc.guarded, lc.client, lc.offer, 0, n_full);
            a = time_split(lc.stock, lc.client, lc.offer, 1, n_res);
        } else {
            a = time_split(lc.stock, lc.client, lc.offer, 1, n_res);
            b = time_split(lc.guarded, lc.client, lc.offer, 0, n_full);
        }
        res[r] = a.server_us;
        ful[r] = b.server_us;
        fac[r] = b.server_us / a.server_us;
        pres[r] = a.pair_us;
        pful[r] = b.pair_us;
    }
    bench_stat_of(res, o->rounds, &row->resumed);
    bench_stat_of(ful, o->rounds, &row->full);
    bench_stat_of(fac, o->rounds, &row->factor);
    bench_stat_of(pres, o->rounds, &row->pair_resumed);
    bench_stat_of(pful, o->rounds, &row->pair_full);
    free_case(&lc);
}

void bench_report_capacity(const struct env *e, const struct options *o)
{
    static const int order[SUITE_COUNT] = { SUITE_RSA, SUITE_ECDSA };
    struct capacity_row row[SUITE_COUNT];
    int k, s;

    for (k = 0; k < SUITE_COUNT; k++)
        measure_suite(e, order[k], o, &row[order[k]]);
    printf("\ncapacity: a server whose clients lack EMS (client with SSL_OP_NO_EXTENDED_MASTER_"
           "SECRET offering its ticket)\n");
    printf("server CPU per connection (%s clock, split by each side's share of the call time), "
           "fastest of %d interleaved rounds\n(the least disturbed by other processes); "
           "conn/s per core = 1e6 / us; factor = forced full / resumed, with its per-round range\n",
        o->wall ? "wall" : "thread-CPU", o->rounds);
    printf("  %-12s  %-23s  %-26s  %s\n", "", "resumed by stock", "forced full by emsguard",
        "capacity loss");
    printf("  %-12s  %9s %13s  %9s %16s  %s\n", "certificate", "us/conn", "conn/s/core",
        "us/conn", "conn/s/core", "factor (min-max)");
    for (k = 0; k < SUITE_COUNT; k++) {
        const struct capacity_row *c = &row[order[k]];

        s = order[k];
        printf("  %-12s  %9.1f %13.0f  %9.1f %16.0f  %.1fx (%.1f-%.1f)\n", bench_suite_short(s),
            c->resumed.min, 1e6 / c->resumed.min, c->full.min, 1e6 / c->full.min,
            c->full.min / c->resumed.min, c->factor.min, c->factor.max);
    }
    printf("  handshake pair (client + server) for comparison, us:");
    for (k = 0; k < SUITE_COUNT; k++) {
        s = order[k];
        printf("  %s resumed %.1f, full %.1f%s", bench_suite_short(s),
            row[s].pair_resumed.min, row[s].pair_full.min, k + 1 < SUITE_COUNT ? ";" : "\n");
    }
}
