/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The policy state of each SSL_CTX: its ex_data index, the registration of
 * the connection records (records.c) with the function that releases the
 * state reference a record holds, and the public counters (each also
 * added to this process's published stats, stats_publish.c).  Every hook
 * finds its state through the inline helpers of hooks.h, which read what
 * this file set up.
 */
#include <stdatomic.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include "hooks.h"
#include "stats_file.h"

static CRYPTO_ONCE index_once = CRYPTO_ONCE_STATIC_INIT;
int eg_ctx_state_idx = -1; /* SSL_CTX -> struct eg_ctx_state */
static int conn_registered; /* records.c's SSL ex_data index */

static void free_ctx_state(void *parent, void *ptr, CRYPTO_EX_DATA *ad,
    int idx, long argl, void *argp)
{
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (ptr != NULL) {
        emsguard_ctx_state_withdraw(parent);
        emsguard_schannel_hold_clear(&((struct eg_ctx_state *)ptr)->hold);
    }
    OPENSSL_free(ptr);
}

_Atomic unsigned eg_ems_exits_pending;

/*
 * A client SSL freed before the exit that was to read its last full
 * handshake's EMS bit (CONN_EMS_AT_EXIT, hooks_handshake.c) reached
 * emsguard: a per-SSL info callback of the application's that does not
 * pass it on.  libssl frees an SSL's ex_data before its session, and no
 * handshake runs now, so SSL_get_extms_support() answers here.  Only the
 * count is settled: the session may live on, and its next offer reads its
 * bit anyway.
 */
static void settle_ems_at_free(SSL *ssl, struct eg_conn *conn, struct eg_ctx_state *st)
{
    if (ems_exit_take(conn, ssl) != NULL && st != NULL && SSL_get_extms_support(ssl) == 0)
        count(st, EMSGUARD_CNT_FULL_WITHOUT_EMS);
}

/*
 * A connection's record goes (its SSL is freed): settles what waited for
 * an exit, and drops the reference keep_state() took on its state's ctx.
 * records.c calls this; it knows the state only as an opaque pointer.
 */
static void release_state(SSL *ssl, struct eg_conn *conn)
{
    struct eg_ctx_state *st = conn->st;

    if (conn->flags & CONN_EMS_AT_EXIT)
        settle_ems_at_free(ssl, conn, st);
    conn->st = NULL;
    if (st != NULL)
        SSL_CTX_free(st->ctx); /* may free |st| with it */
}

static void init_indices(void)
{
    eg_ctx_state_idx = SSL_CTX_get_ex_new_index(0, "emsguard state", NULL, NULL,
        free_ctx_state);
    conn_registered = emsguard_conn_register(release_state);
    /* The first policy in this process: its counters go live (count()). */
    emsguard_stats_start(NULL, EG_STATS_SRC_HOOKS);
}

int eg_indices_ready(void)
{
    /* Asked several times per callback: skip the once-lock after success. */
    static _Atomic int ready;

    if (atomic_load_explicit(&ready, memory_order_acquire))
        return 1;
    if (!CRYPTO_THREAD_run_once(&index_once, init_indices)
        || eg_ctx_state_idx < 0 || !conn_registered)
        return 0;
    atomic_store_explicit(&ready, 1, memory_order_release);
    return 1;
}

struct eg_conn *eg_conn_need(SSL *ssl)
{
    /* The free callback must be registered before a record can exist. */
    if (!eg_indices_ready())
        return NULL;
    return emsguard_conn_get(ssl);
}

static const char *const counter_names[EMSGUARD_CNT_MAX] = {
    [EMSGUARD_CNT_FULL_HANDSHAKES] = "full_handshakes",
    [EMSGUARD_CNT_RESUMPTIONS] = "resumptions",
    [EMSGUARD_CNT_REFUSED_NO_EMS] = "refused_no_ems",
    [EMSGUARD_CNT_REFUSED_EMS_DISABLED] = "refused_ems_disabled",
    [EMSGUARD_CNT_REFUSED_UNREADABLE] = "refused_unreadable",
    [EMSGUARD_CNT_FULL_WITHOUT_EMS] = "full_without_ems",
    [EMSGUARD_CNT_ABORTED_INCONSISTENT] = "aborted_inconsistent",
    [EMSGUARD_CNT_SESSIONS_NOT_CACHED] = "sessions_not_cached",
    [EMSGUARD_CNT_TICKETS_WITHHELD] = "tickets_withheld",
    [EMSGUARD_CNT_POLICY_BYPASSED] = "policy_bypassed",
    [EMSGUARD_CNT_REJECTED_NO_EMS] = "rejected_no_ems",
    [EMSGUARD_CNT_REFUSED_SNI_SWITCH] = "refused_sni_switch",
    [EMSGUARD_CNT_REFUSED_SCHANNEL] = "refused_schannel",
};

const char *EMSGUARD_counter_name(EMSGUARD_COUNTER which)
{
    return (unsigned)which < EMSGUARD_CNT_MAX ? counter_names[which] : NULL;
}

int EMSGUARD_CTX_get_counter(const SSL_CTX *ctx, EMSGUARD_COUNTER which,
    uint64_t *value)
{
    struct eg_ctx_state *st = state_of_ctx(ctx);

    if (st == NULL) {
        emsguard_raise(EMSGUARD_R_NOT_ENABLED, "EMSGUARD_CTX_get_counter: emsguard is not enabled on this SSL_CTX");
        return 0;
    }
    if ((unsigned)which >= EMSGUARD_CNT_MAX || value == NULL) {
        emsguard_raise(EMSGUARD_R_INVALID_ARGUMENT, "EMSGUARD_CTX_get_counter: unknown counter %d or NULL value", (int)which);
        return 0;
    }
    *value = atomic_load_explicit(&st->counters[which], memory_order_relaxed);
    return 1;
}
