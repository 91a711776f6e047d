/* SPDX-License-Identifier: Apache-2.0 */
/* The checks of the probe, in order, built from single handshakes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/ssl.h>
#include "probe.h"

/* TLS 1.2 suites with ephemeral finite-field DH, nothing else. */
#define DHE_ONLY "DHE:!aNULL:!eNULL:@SECLEVEL=0"

static int issued(const SSL_SESSION *s, int mech)
{
    unsigned int idlen = 0;

    if (s == NULL)
        return 0;
    if (mech == MECH_TICKET)
        return SSL_SESSION_has_ticket(s);
    SSL_SESSION_get_id(s, &idlen);
    return idlen > 0;
}

/*
 * A handshake outside the DHE run.  One that failed right after a DH secret
 * with a leading zero byte is the DHE bug (1 in 256), not the behaviour
 * under test: it is repeated once.
 */
static int handshake(SSL_CTX *ctx, const probe_opts *o, const hs_params *p, hs_result *r)
{
    if (!probe_handshake(ctx, o, p, r))
        return 0;
    if (!r->completed && r->leading_zero)
        return probe_handshake(ctx, o, p, r);
    return 1;
}

/* One §5.3 case: offer |sess| with (or without) EMS.  0: stop (r->err). */
static int run_case(SSL_CTX *ctx, const probe_opts *o, int mech,
    const SSL_SESSION *sess, int ems, case_result *c, hs_result *r)
{
    hs_params p = { ems, mech == MECH_TICKET, 0, NULL, sess };

    if (!handshake(ctx, o, &p, r))
        return 0;
    c->alert = r->alert_recv;
    c->alert_sent = r->alert_sent;
    c->ems = r->ems;
    if (r->resumed)
        c->obs = OBS_RESUMED; /* even if the probe then aborted it */
    else if (r->completed)
        c->obs = OBS_FULL;
    else
        c->obs = OBS_ABORTED;
    return 1;
}

static int run_mech(SSL_CTX *ctx, const probe_opts *o, int mech,
    probe_results *res, probe_err *e)
{
    mech_result *m = &res->mech[mech];
    hs_params p = { 1, mech == MECH_TICKET, 0, NULL, NULL };
    SSL_SESSION *s_ems = NULL, *s_non = NULL;
    hs_result r;
    int ok = 0, i;
    static const char *const no_ems = "the server negotiates no EMS";

    memset(&r, 0, sizeof(r));
    hs_result_clear(&r);
    /* A session with EMS (if the server does EMS) and one without. */
    if (!handshake(ctx, o, &p, &r))
        goto stop;
    if (r.completed && r.ems) {
        m->issued_ems = issued(r.session, mech);
        if (m->issued_ems) {
            s_ems = r.session;
            r.session = NULL;
        }
    }
    p.ems = 0;
    if (!handshake(ctx, o, &p, &r))
        goto stop;
    m->nonems_full_ok = r.completed && !r.ems;
    m->nonems_alert = r.alert_recv;
    if (m->nonems_full_ok) {
        m->issued_nonems = issued(r.session, mech);
        if (m->issued_nonems) {
            s_non = r.session;
            r.session = NULL;
        }
    }
    for (i = 0; i < C_MAX; i++) {
        const SSL_SESSION *s = (i == C_NONEMS_EMS || i == C_NONEMS_NONEMS) ? s_non : s_ems;

        if (s != NULL)
            continue;
        if (i == C_EMS_NONEMS || i == C_EMS_EMS)
            m->c[i].why_not_run = !res->ems ? no_ems
                : mech == MECH_TICKET ? "no ticket for an EMS session" : "no session ID for an EMS session";
        else
            m->c[i].why_not_run = !m->nonems_full_ok ? "no full handshake without EMS"
                : mech == MECH_TICKET ? "no ticket for a non-EMS session"
                                      : "no session ID for a non-EMS session";
    }
    /* EMS session without EMS last: some servers forget it after aborting. */
    if ((s_non != NULL
            && (!run_case(ctx, o, mech, s_non, 1, &m->c[C_NONEMS_EMS], &r)
                || !run_case(ctx, o, mech, s_non, 0, &m->c[C_NONEMS_NONEMS], &r)))
        || (s_ems != NULL
            && !run_case(ctx, o, mech, s_ems, 1, &m->c[C_EMS_EMS], &r)))
        goto stop;
    if (mech == MECH_TICKET && s_ems != NULL && m->c[C_EMS_EMS].obs == OBS_RESUMED) {
        res->renewal_tested = 1;
        res->renewal_from_ems = 1;
        res->renewal_seen = r.nst_nonempty > 0;
    }
    if (s_ems != NULL && !run_case(ctx, o, mech, s_ems, 0, &m->c[C_EMS_NONEMS], &r))
        goto stop;
    if (mech == MECH_TICKET && !res->renewal_tested && s_non != NULL
        && m->c[C_NONEMS_NONEMS].obs == OBS_RESUMED) {
        /* Again, to see the NewSessionTicket of that resumption. */
        if (!run_case(ctx, o, mech, s_non, 0, &m->c[C_NONEMS_NONEMS], &r))
            goto stop;
        res->renewal_tested = m->c[C_NONEMS_NONEMS].obs == OBS_RESUMED;
        res->renewal_seen = r.nst_nonempty > 0;
    }
    ok = 1;
stop:
    if (!ok)
        *e = r.err;
    hs_result_clear(&r);
    SSL_SESSION_free(s_ems);
    SSL_SESSION_free(s_non);
    return ok;
}

static int run_dhe(SSL_CTX *ctx, const probe_opts *o, probe_results *res, probe_err *e)
{
    hs_params p = { 0, 0, 0, DHE_ONLY, NULL };
    hs_result r;
    int ok = 0;

    memset(&r, 0, sizeof(r));
    hs_result_clear(&r);
    res->dhe_tested = 1;
    res->dhe_alert = -1;
    res->dhe_zero_alert = -1;
    if (!probe_handshake(ctx, o, &p, &r))
        goto stop;
    res->dhe_handshakes = 1;
    /* A derived DH secret means the server chose DHE, even if this very
     * handshake then failed (a leading zero at a buggy server). */
    if (!r.completed && !r.dh_derived) {
        res->dhe_alert = r.alert_recv;
        ok = 1;
        goto stop;
    }
    res->dhe_negotiable = 1;
    snprintf(res->dhe_cipher, sizeof(res->dhe_cipher), "%s", r.cipher);
    snprintf(res->dhe_group, sizeof(res->dhe_group), "%s", r.group);
    if (!dh_observe_active()) {
        res->dhe_observe_failed = 1;
        ok = 1;
        goto stop;
    }
    for (;;) {
        if (r.leading_zero) {
            res->dhe_zero_events++;
            if (!r.completed) {
                res->dhe_zero_failed++;
                if (r.alert_recv >= 0)
                    res->dhe_zero_alert = r.alert_recv;
            }
        } else if (!r.completed) {
            res->dhe_other_failed++;
        }
        if (res->dhe_zero_events >= o->dhe_events || res->dhe_handshakes >= o->max_handshakes)
            break;
        /* A scan's target deadline ends the run with what it has seen. */
        if (o->target_deadline > 0 && probe_now_ms() >= o->target_deadline) {
            res->dhe_deadline = 1;
            break;
        }
        if (o->progress && res->dhe_handshakes % 16 == 0)
            fprintf(stderr, "\rDHE without EMS: %ld handshakes, %ld with a leading zero byte ",
                res->dhe_handshakes, res->dhe_zero_events);
        if (!probe_handshake(ctx, o, &p, &r)) {
            /* the deadline fell inside this handshake: stop as above */
            if (r.err.kind == PE_TIMEOUT && o->target_deadline > 0
                && probe_now_ms() >= o->target_deadline) {
                res->dhe_deadline = 1;
                break;
            }
            goto stop;
        }
        res->dhe_handshakes++;
    }
    ok = 1;
stop:
    if (o->progress)
        fprintf(stderr, "\r%70s\r", "");
    if (!ok)
        *e = r.err;
    hs_result_clear(&r);
    return ok;
}

/* ---- FTPS: does the data connection have to resume the control session? */

/* PASV, data connection, LIST, TLS on the data connection (offering
 * |offer| or nothing).  Sets *code to the transfer's final reply (226 on
 * success) or the refusal, and *resumed.  0 when the control connection is
 * unusable. */
static int ftp_list(SSL_CTX *ctx, const probe_opts *o, ftp_ctl *c,
    const SSL_SESSION *offer, int *code, int *resumed, int *data_ems,
    char *text, size_t textlen, probe_err *e)
{
    long long deadline = probe_deadline(o);
    hs_params p = { 1, 1, 0, NULL, offer };
    hs_result r;
    unsigned int h1, h2, h3, h4, p1, p2;
    char port[16], buf[512];
    const char *q;
    SSL *ssl = NULL;
    int fd, n;

    *code = -1;
    *resumed = 0;
    if (!ftp_send(c, o, deadline, "PASV", e)
        || (n = ftp_reply(c, o, deadline, text, textlen, e)) < 0)
        return 0;
    if (n != 227 || (q = strchr(text, '(')) == NULL
        || sscanf(q, "(%u,%u,%u,%u,%u,%u)", &h1, &h2, &h3, &h4, &p1, &p2) != 6
        || p1 > 255 || p2 > 255) {
        *code = n;
        return 1;
    }
    /* The control connection's host: the address in 227 may be a NAT's. */
    snprintf(port, sizeof(port), "%u", p1 * 256 + p2);
    if ((fd = net_connect(o, o->host, port, deadline, e)) < 0)
        return 0;
    memset(&r, 0, sizeof(r));
    hs_result_clear(&r);
    if (!ftp_send(c, o, deadline, "LIST", e)) {
        close(fd);
        return 0;
    }
    ssl = probe_tls_on_fd(ctx, o, fd, &p, deadline, &r);
    *resumed = r.completed && r.resumed;
    *data_ems = r.ems;
    n = ftp_reply(c, o, deadline, text, textlen, e);
    if (n == 150 || n == 125) {
        /* Read the listing to its end, then the transfer's reply. */
        while (r.completed && SSL_read(ssl, buf, sizeof(buf)) > 0)
            ;
        probe_tls_close(ssl, deadline);
        ssl = NULL;
        close(fd);
        fd = -1;
        /* The transfer's outcome: 226, or 522 when the server wanted reuse. */
        n = ftp_reply(c, o, deadline, text, textlen, e);
        *code = n;
    } else if (n >= 0) {
        *code = n;
    }
    hs_result_clear(&r);
    if (ssl != NULL)
        probe_tls_close(ssl, deadline);
    if (fd >= 0)
        close(fd);
    return n >= 0;
}

static int run_ftp(SSL_CTX *ctx, const probe_opts *o, probe_results *res, probe_err *e)
{
    long long deadline = probe_deadline(o);
    hs_params p = { 1, 1, 0, NULL, NULL };
    hs_result r;
    ftp_ctl c;
    SSL *ssl = NULL;
    SSL_SESSION *sess = NULL;
    char text[256];
    int code = 0, with_code, without_code, resumed = 0, fresh_resumed, ems = 0, ok = 0;
    static const char *const steps[][2] = {
        { "USER anonymous", NULL }, { "PASS emsguard-probe@", NULL },
        { "PBSZ 0", NULL }, { "PROT P", NULL },
    };
    size_t i;

    res->ftp_tested = 1;
    memset(&c, 0, sizeof(c));
    memset(&r, 0, sizeof(r));
    hs_result_clear(&r);
    c.fd = probe_open(o, deadline, e);
    if (c.fd < 0)
        return 0;
    ssl = probe_tls_on_fd(ctx, o, c.fd, &p, probe_deadline(o), &r);
    if (!r.completed) {
        snprintf(res->ftp_note, sizeof(res->ftp_note), "control handshake failed");
        ok = 1;
        goto done;
    }
    c.ssl = ssl;
    sess = SSL_get1_session(ssl);
    for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        deadline = probe_deadline(o);
        if (i == 1 && code == 230)
            continue; /* no password wanted */
        if (!ftp_send(&c, o, deadline, steps[i][0], e)
            || (code = ftp_reply(&c, o, deadline, text, sizeof(text), e)) < 0)
            goto done;
        if (code >= 400) {
            snprintf(res->ftp_note, sizeof(res->ftp_note), "%.6s refused: %.100s",
                steps[i][0], text);
            ok = 1;
            goto done;
        }
    }
    /* First with the control session (as Schannel must), then without. */
    if (!ftp_list(ctx, o, &c, sess, &with_code, &resumed, &ems, text, sizeof(text), e))
        goto done;
    if (with_code / 100 != 2) {
        snprintf(res->ftp_note, sizeof(res->ftp_note),
            "a data connection resuming the control session was refused: %.100s", text);
        ok = 1;
        goto done;
    }
    res->ftp_reuse_ok = resumed;
    res->ftp_reuse_ems = resumed && ems;
    if (!ftp_list(ctx, o, &c, NULL, &without_code, &fresh_resumed, &ems, text, sizeof(text), e))
        goto done;
    res->ftp_can_tell = 1;
    if (without_code / 100 == 2) {
        res->ftp_reuse_required = 0;
        snprintf(res->ftp_note, sizeof(res->ftp_note),
            "a data connection with a new session was accepted");
    } else {
        res->ftp_reuse_required = 1;
        snprintf(res->ftp_note, sizeof(res->ftp_note),
            "a data connection with a new session was refused: %.100s", text);
    }
    deadline = probe_deadline(o);
    if (ftp_send(&c, o, deadline, "QUIT", e))
        ftp_reply(&c, o, deadline, text, sizeof(text), e);
    ok = 1;
done:
    hs_result_clear(&r);
    SSL_SESSION_free(sess);
    probe_tls_close(ssl, probe_deadline(o));
    close(c.fd);
    return ok;
}

int probe_run(const probe_opts *o, probe_results *res, probe_err *e)
{
    SSL_CTX *ctx = probe_ctx_new();
    hs_params p = { 1, 1, 0, NULL, NULL };
    hs_result r;
    int ok = 0;

    memset(res, 0, sizeof(*res));
    memset(&r, 0, sizeof(r));
    hs_result_clear(&r);
    if (ctx == NULL) {
        probe_err_set(e, PE_INTERNAL, "cannot create the TLS client context");
        return 0;
    }
    /* 1: EMS support, from a first full handshake with EMS offered. */
    if (!handshake(ctx, o, &p, &r)) {
        *e = r.err;
        goto done;
    }
    if (!r.completed) {
        probe_err tls12 = r.err;

        /* A TLS 1.3-only server refuses the TLS 1.2 ClientHello. */
        p.tls13 = 1;
        if (!r.server_hello && probe_handshake(ctx, o, &p, &r) && r.completed)
            probe_err_set(e, PE_TLS13_ONLY,
                "%s supports only TLS 1.3: Extended Master Secret does not apply "
                "(TLS 1.3 builds it into its key schedule)", o->target);
        else
            *e = tls12;
        goto done;
    }
    res->ems = r.ems;
    snprintf(res->version, sizeof(res->version), "%s", r.version);
    snprintf(res->cipher, sizeof(res->cipher), "%s", r.cipher);
    snprintf(res->group, sizeof(res->group), "%s", r.group);
    /* 2-4: resumption, the §5.3 cases and ticket renewal, per mechanism. */
    if (!run_mech(ctx, o, MECH_ID, res, e) || !run_mech(ctx, o, MECH_TICKET, res, e))
        goto done;
    if (o->starttls == ST_FTP && !run_ftp(ctx, o, res, e))
        goto done;
    /* 5: DHE without EMS. */
    if (!run_dhe(ctx, o, res, e))
        goto done;
    ok = 1;
done:
    /* A step cut short by the target's deadline, not by --timeout. */
    if (!ok && e->kind == PE_TIMEOUT && o->target_deadline > 0
        && probe_now_ms() >= o->target_deadline)
        probe_err_set(e, PE_TIMEOUT, "%s: timed out: the target did not finish within its "
            "deadline of %g s (%d x --timeout)", o->target,
            o->timeout_ms / 1000.0 * PROBE_TARGET_DEADLINE_FACTOR, PROBE_TARGET_DEADLINE_FACTOR);
    hs_result_clear(&r);
    SSL_CTX_free(ctx);
    return ok;
}
