/* SPDX-License-Identifier: Apache-2.0 */
/* The probe's verdicts: the text table, the JSON document, the exit status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "commands.h"
#include "json.h"
#include "probe.h"

#define SCHEMA_ID "https://emsguard.invalid/probe.schema.json"
#define SCHEMA_VERSION 1

typedef struct {
    char id[64];
    char check[64];
    char observed[24]; /* stable token (JSON) */
    char shown[32]; /* table cell */
    char detail[320];
    const char *rfc;
    const char *schannel;
    const char *status; /* ok | info | finding | not_applicable */
    const char *risk;
} row;

#define MAX_ROWS 20

typedef struct {
    row rows[MAX_ROWS];
    int n;
    const char *reasons[8];
    int nreasons;
    const char *fixes[4];
    int nfixes;
    char dhe_reason[200];
} report;

static row *add(report *rp, const char *id, const char *check)
{
    row *r = &rp->rows[rp->n++];

    memset(r, 0, sizeof(*r));
    snprintf(r->id, sizeof(r->id), "%s", id);
    snprintf(r->check, sizeof(r->check), "%s", check);
    r->rfc = "-";
    r->schannel = "-";
    r->status = "ok";
    return r;
}

static void set_obs(row *r, const char *token, const char *shown)
{
    snprintf(r->observed, sizeof(r->observed), "%s", token);
    snprintf(r->shown, sizeof(r->shown), "%s", shown);
}

static void reason(report *rp, const char *text)
{
    int i;

    for (i = 0; i < rp->nreasons; i++)
        if (strcmp(rp->reasons[i], text) == 0)
            return;
    rp->reasons[rp->nreasons++] = text;
}

static void fix(report *rp, const char *text)
{
    int i;

    for (i = 0; i < rp->nfixes; i++)
        if (strcmp(rp->fixes[i], text) == 0)
            return;
    rp->fixes[rp->nfixes++] = text;
}

#define FIX_EMS "enable Extended Master Secret"
#define FIX_UPDATE "apply the vendor update (or emsguard)"
#define FIX_DHE "drop TLS_DHE_* cipher suites"
#define FIX_RESUME "enable session resumption (session cache or tickets)"

static void case_obs(row *r, const case_result *c)
{
    char a[96];

    switch (c->obs) {
    case OBS_NOT_RUN:
        set_obs(r, "not_applicable", "n/a");
        snprintf(r->detail, sizeof(r->detail), "not tested: %s", c->why_not_run);
        r->status = "not_applicable";
        break;
    case OBS_RESUMED:
        set_obs(r, "resumed", "resumed");
        snprintf(r->detail, sizeof(r->detail), "the server resumed the session%s",
            c->alert_sent >= 0 ? "; the probe aborted it (EMS inconsistent with the session)" : "");
        break;
    case OBS_FULL:
        set_obs(r, "full_handshake", "full hs");
        snprintf(r->detail, sizeof(r->detail), "full handshake, EMS %s", c->ems ? "yes" : "no");
        break;
    case OBS_ABORTED:
        set_obs(r, "aborted", "abort");
        if (c->alert >= 0) {
            snprintf(r->shown, sizeof(r->shown), "abort %d", c->alert);
            snprintf(r->detail, sizeof(r->detail), "aborted with alert %s",
                probe_alert_text(c->alert, a, sizeof(a)));
        } else {
            snprintf(r->detail, sizeof(r->detail), "aborted: connection closed without an alert");
        }
        break;
    }
}

static const char *const mech_name[2] = { "session_id", "ticket" };
static const char *const mech_label[2] = { "ID", "tkt" };

static void build(const probe_opts *o, const probe_results *res, report *rp)
{
    int m, i, ems_resumed_any = 0;
    row *r;
    char id[48], label[48];
    static const char *const case_id[C_MAX] = {
        "nonems_session.ems_hello", "nonems_session.nonems_hello",
        "ems_session.nonems_hello", "ems_session.ems_hello",
    };
    static const char *const case_label[C_MAX] = {
        "non-EMS sess, EMS hello", "non-EMS sess, no-EMS hello",
        "EMS sess, no-EMS hello", "EMS sess, EMS hello",
    };

    memset(rp, 0, sizeof(*rp));
    /* 1. EMS support */
    r = add(rp, "ems", "EMS support");
    set_obs(r, res->ems ? "yes" : "no", res->ems ? "yes" : "no");
    snprintf(r->detail, sizeof(r->detail), "%s %s, group %s, EMS %s", res->version,
        res->cipher, res->group, res->ems ? "negotiated" : "not negotiated");
    r->rfc = "yes";
    r->schannel = "yes";
    if (!res->ems) {
        r->status = "finding";
        r->risk = "Windows clients never resume a session without EMS: every connection "
                  "is a full handshake (CPU), FTPS data connections that need session "
                  "reuse fail, and TLS_DHE_* fails 1 in 256 with buggy peers";
        reason(rp, "it does not negotiate EMS, so they never resume a session");
        fix(rp, FIX_EMS);
    }
    /* 2. resumption as an ordinary client sees it */
    for (m = 0; m < 2; m++) {
        const case_result *c = &res->mech[m].c[res->ems ? C_EMS_EMS : C_NONEMS_NONEMS];

        snprintf(id, sizeof(id), "resumption.%s", mech_name[m]);
        r = add(rp, id, m == MECH_ID ? "session-ID resumption" : "ticket resumption");
        if (c->obs == OBS_NOT_RUN) {
            set_obs(r, "not_issued", m == MECH_ID ? "no ID" : "no ticket");
            snprintf(r->detail, sizeof(r->detail), "%s", c->why_not_run);
        } else {
            case_obs(r, c);
        }
        snprintf(r->detail + strlen(r->detail), sizeof(r->detail) - strlen(r->detail),
            " (%s session)", res->ems ? "EMS" : "non-EMS");
        r->rfc = "optional";
        r->schannel = "EMS only";
        if (c->obs == OBS_RESUMED && res->ems) {
            ems_resumed_any = 1;
        } else if (c->obs == OBS_RESUMED) {
            r->status = "info";
            r->risk = "only sessions without EMS resume; Windows clients never offer them";
        } else {
            r->status = "info";
            r->risk = "no resumption with this mechanism: more full handshakes";
        }
    }
    if (res->ftp_reuse_ems)
        ems_resumed_any = 1;
    if (res->ems && !ems_resumed_any) {
        reason(rp, "it resumes no EMS session");
        fix(rp, FIX_RESUME);
    }
    /* 3. the RFC 7627 5.3 cases */
    for (m = 0; m < 2; m++) {
        for (i = 0; i < C_MAX; i++) {
            const case_result *c = &res->mech[m].c[i];

            snprintf(id, sizeof(id), "%s.%s", mech_name[m], case_id[i]);
            snprintf(label, sizeof(label), "%s %s", mech_label[m], case_label[i]);
            r = add(rp, id, label);
            case_obs(r, c);
            switch (i) {
            case C_NONEMS_EMS:
                r->rfc = "full hs";
                r->schannel = "full hs";
                if (c->obs == OBS_RESUMED) {
                    r->status = "finding";
                    r->risk = "resumes a session without EMS although the ClientHello "
                              "offers EMS (RFC 7627: MUST NOT)";
                } else if (c->obs == OBS_ABORTED) {
                    r->status = "info";
                    r->risk = "RFC 7627 wants a full handshake here, not an abort";
                }
                break;
            case C_NONEMS_NONEMS:
                r->rfc = "abort";
                r->schannel = "full hs";
                if (c->obs == OBS_RESUMED) {
                    r->status = "finding";
                    r->risk = "resumes a session without EMS: open to the triple-handshake "
                              "attack (RFC 7627 5.4); Schannel never does";
                }
                break;
            case C_EMS_NONEMS:
                r->rfc = "abort";
                r->schannel = "no resume";
                if (c->obs == OBS_RESUMED) {
                    r->status = "finding";
                    r->risk = "resumes an EMS session for a ClientHello without EMS "
                              "(RFC 7627: MUST abort)";
                    reason(rp, "it resumes an EMS session for a ClientHello without EMS");
                    fix(rp, FIX_UPDATE);
                } else if (c->obs == OBS_FULL) {
                    r->status = "info";
                    r->risk = "RFC 7627 requires an abort (handshake_failure); "
                              "a full handshake is safe";
                }
                break;
            case C_EMS_EMS:
                r->rfc = "resume";
                r->schannel = "resume";
                if (c->obs == OBS_FULL) {
                    r->status = "info";
                    r->risk = "EMS sessions are not resumed: more full handshakes (CPU)";
                } else if (c->obs == OBS_ABORTED) {
                    r->status = "finding";
                    r->risk = "a valid EMS resumption fails with an alert";
                    reason(rp, "it aborts valid EMS resumptions");
                    fix(rp, FIX_UPDATE);
                }
                break;
            }
            if ((i == C_NONEMS_EMS || i == C_NONEMS_NONEMS) && c->obs == OBS_RESUMED) {
                reason(rp, "it resumes sessions without EMS");
                if (res->ems)
                    fix(rp, FIX_UPDATE);
            }
        }
    }
    /* 4. ticket renewal */
    r = add(rp, "ticket_renewal", "ticket renewal (3109853)");
    r->rfc = "allowed";
    r->schannel = "accepted";
    if (!res->renewal_tested) {
        set_obs(r, "not_applicable", "n/a");
        snprintf(r->detail, sizeof(r->detail), "not tested: no ticket resumption");
        r->status = "not_applicable";
    } else if (res->renewal_seen) {
        set_obs(r, "renewed", "renewed");
        snprintf(r->detail, sizeof(r->detail),
            "NewSessionTicket in the abbreviated handshake (%s session)",
            res->renewal_from_ems ? "EMS" : "non-EMS");
        r->status = "info";
        r->risk = "clients without the 3109853 update (2016) reject a NewSessionTicket in an "
                  "abbreviated handshake and fall back to an older TLS version";
    } else {
        set_obs(r, "not_renewed", "no");
        snprintf(r->detail, sizeof(r->detail), "no NewSessionTicket in the abbreviated handshake");
    }
    /* 5. DHE without EMS */
    r = add(rp, "dhe.without_ems", "TLS_DHE_* without EMS");
    r->schannel = "avoid";
    if (res->dhe_negotiable) {
        set_obs(r, "negotiated", "negotiated");
        snprintf(r->detail, sizeof(r->detail), "%s, group %s", res->dhe_cipher, res->dhe_group);
        r->status = "info";
        r->risk = "peers that keep the leading zeros of the DH secret fail 1 in 256 of these";
    } else {
        char a[96];

        set_obs(r, "refused", "refused");
        if (res->dhe_alert >= 0)
            snprintf(r->detail, sizeof(r->detail), "DHE-only ClientHello refused: alert %s",
                probe_alert_text(res->dhe_alert, a, sizeof(a)));
        else
            snprintf(r->detail, sizeof(r->detail), "DHE-only ClientHello refused");
    }
    r = add(rp, "dhe.leading_zero", "DH secrets with leading 0");
    r->rfc = "strip 0s";
    r->schannel = "strip 0s";
    if (!res->dhe_negotiable) {
        set_obs(r, "not_applicable", "n/a");
        snprintf(r->detail, sizeof(r->detail), "not tested: DHE not negotiable without EMS");
        r->status = "not_applicable";
    } else if (res->dhe_observe_failed) {
        set_obs(r, "undetermined", "unknown");
        snprintf(r->detail, sizeof(r->detail), "cannot observe DH secrets in this build");
        r->status = "finding";
        r->risk = "undetermined";
        reason(rp, "DHE without EMS is negotiable and could not be tested");
        fix(rp, FIX_DHE);
    } else if (res->dhe_zero_failed > 0) {
        set_obs(r, "failed", "");
        snprintf(r->shown, sizeof(r->shown), "%ld/%ld fail", res->dhe_zero_failed,
            res->dhe_zero_events);
        snprintf(r->detail, sizeof(r->detail),
            "%ld of %ld handshakes whose DH secret began with 0x00 failed (%ld handshakes"
            ", %ld other failures)", res->dhe_zero_failed, res->dhe_zero_events,
            res->dhe_handshakes, res->dhe_other_failed);
        r->status = "finding";
        r->risk = "the server mishandles leading zero bytes: 1 in 256 DHE handshakes fail "
                  "(bad_record_mac); without resumption Windows clients hit this often";
        snprintf(rp->dhe_reason, sizeof(rp->dhe_reason),
            "%ld of %ld DHE handshakes with a leading-zero secret failed",
            res->dhe_zero_failed, res->dhe_zero_events);
        reason(rp, rp->dhe_reason);
        fix(rp, FIX_DHE);
        fix(rp, FIX_UPDATE);
    } else if (res->dhe_zero_events >= o->dhe_events) {
        set_obs(r, "handled", "");
        snprintf(r->shown, sizeof(r->shown), "%ld/%ld ok", res->dhe_zero_events,
            res->dhe_zero_events);
        snprintf(r->detail, sizeof(r->detail),
            "all %ld handshakes whose DH secret began with 0x00 completed (%ld handshakes"
            ", %ld other failures)", res->dhe_zero_events, res->dhe_handshakes,
            res->dhe_other_failed);
    } else {
        set_obs(r, "undetermined", "");
        snprintf(r->shown, sizeof(r->shown), "%ld/%d seen", res->dhe_zero_events, o->dhe_events);
        if (res->dhe_deadline)
            snprintf(r->detail, sizeof(r->detail),
                "only %ld of %d leading-zero secrets in %ld handshakes (stopped by the "
                "target's deadline)", res->dhe_zero_events, o->dhe_events, res->dhe_handshakes);
        else
            snprintf(r->detail, sizeof(r->detail),
                "only %ld of %d leading-zero secrets in %ld handshakes (--max-handshakes %ld)",
                res->dhe_zero_events, o->dhe_events, res->dhe_handshakes, o->max_handshakes);
        r->status = "finding";
        r->risk = res->dhe_deadline ? "undetermined: probe this target alone, or raise --timeout"
                                    : "undetermined: raise --max-handshakes";
        snprintf(rp->dhe_reason, sizeof(rp->dhe_reason),
            "DHE without EMS is negotiable and its leading-zero handling is undetermined "
            "after %ld handshakes", res->dhe_handshakes);
        reason(rp, rp->dhe_reason);
        fix(rp, FIX_DHE);
    }
    /* FTPS */
    if (res->ftp_tested) {
        r = add(rp, "ftps.data_reuse", "FTPS data-connection reuse");
        r->schannel = "EMS only";
        snprintf(r->detail, sizeof(r->detail), "%s", res->ftp_note);
        if (!res->ftp_can_tell) {
            set_obs(r, "unknown", "unknown");
            r->status = "info";
            r->risk = "cannot tell whether data connections must resume the control session";
        } else if (res->ftp_reuse_required) {
            set_obs(r, "required", "required");
            if (!res->ftp_reuse_ems) {
                r->status = "finding";
                r->risk = "data connections must resume a session without EMS, which "
                          "Windows clients refuse: transfers fail (522)";
                reason(rp, "its FTPS data connections must resume a session without EMS");
                fix(rp, FIX_EMS);
            }
        } else {
            set_obs(r, "not_required", "not req.");
        }
    }
}

/* ---- text ----------------------------------------------------------------- */

static void wrap(FILE *out, const char *first, const char *indent, const char *text)
{
    const char *p = text;
    const char *lead = first;
    size_t width = 78 - strlen(first), n;

    while (*p != '\0') {
        n = strlen(p);
        if (n > width) {
            n = width;
            while (n > 0 && p[n] != ' ')
                n--;
            if (n == 0)
                n = width;
        }
        fprintf(out, "%s%.*s\n", lead, (int)n, p);
        p += n;
        while (*p == ' ')
            p++;
        lead = indent;
    }
}

static const char *status_cell(const char *s)
{
    if (strcmp(s, "finding") == 0)
        return "FINDING";
    if (strcmp(s, "not_applicable") == 0)
        return "n/a";
    return s;
}

static void verdict_sentence(const report *rp, char *buf, size_t len)
{
    size_t off;
    int i;

    if (rp->nreasons == 0) {
        snprintf(buf, len, "Safe for Windows clients that enforce EMS on resumption: "
                           "the server negotiates EMS, resumes EMS sessions, never resumes "
                           "a session without EMS, and has no DHE leading-zero problem.");
        return;
    }
    off = (size_t)snprintf(buf, len,
        "NOT safe for Windows clients that enforce EMS on resumption: ");
    for (i = 0; i < rp->nreasons && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? "; " : "", rp->reasons[i]);
    for (i = 0; i < rp->nfixes && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? "; " : " -- remediation: ",
            rp->fixes[i]);
    if (off < len)
        snprintf(buf + off, len - off, ".");
}

static void print_text(FILE *out, const probe_opts *o, const probe_results *res, const report *rp)
{
    char v[1024];
    int i;

    fprintf(out, "emsguard probe: %s%s\n", o->target, starttls_label(o->starttls));
    fprintf(out, "negotiated: %s %s %s, EMS %s\n", res->version, res->cipher, res->group,
        res->ems ? "yes" : "no");
    fprintf(out, "(ID: session-ID resumption, tkt: ticket resumption; sess: the session\n"
           " offered, hello: whether the probe's ClientHello offered EMS)\n\n");
    fprintf(out, "%-31s %-10s %-8s %-9s %s\n", "check", "observed", "RFC 7627", "Schannel", "status");
    fprintf(out, "%-31s %-10s %-8s %-9s %s\n", "-------------------------------", "----------",
        "--------", "---------", "-------");
    for (i = 0; i < rp->n; i++) {
        const row *r = &rp->rows[i];

        fprintf(out, "%-31s %-10s %-8s %-9s %s\n", r->check, r->shown, r->rfc, r->schannel,
            status_cell(r->status));
        if (r->risk != NULL && strcmp(r->status, "ok") != 0)
            wrap(out, "  risk: ", "        ", r->risk);
    }
    verdict_sentence(rp, v, sizeof(v));
    fprintf(out, "\n");
    wrap(out, "verdict: ", "         ", v);
}

/* ---- JSON ----------------------------------------------------------------- */

static void json_target(json_writer *w, const probe_opts *o)
{
    json_key(w, "target");
    json_begin_object(w);
    json_key(w, "host");
    json_string(w, o->host);
    json_key(w, "port");
    json_int(w, atoll(o->port));
    json_key(w, "sni");
    json_string(w, o->sni);
    json_key(w, "starttls");
    json_string(w, starttls_name(o->starttls));
    json_end_object(w);
}

/* A scan's JSON Lines: where the target came from and how long it took. */
static void json_scan(json_writer *w, const probe_opts *o)
{
    if (!o->scan)
        return;
    json_key(w, "scan");
    json_begin_object(w);
    json_key(w, "line");
    json_int(w, o->line);
    json_key(w, "duration_ms");
    json_int(w, o->duration_ms);
    json_end_object(w);
}

static void json_head(json_writer *w, const probe_opts *o, const char *status, int code)
{
    json_key(w, "schema_version");
    json_int(w, SCHEMA_VERSION);
    json_key(w, "tool");
    json_string(w, "emsguard probe");
    json_target(w, o);
    json_key(w, "status");
    json_string(w, status);
    json_key(w, "exit_code");
    json_int(w, code);
    json_scan(w, o);
}

static void print_json(FILE *out, const probe_opts *o, const probe_results *res,
    const report *rp, int code)
{
    json_writer w;
    char v[1024];
    int i;

    json_init(&w, out, !o->scan);
    json_begin_object(&w);
    json_head(&w, o, code == 0 ? "compliant" : "findings", code);
    json_key(&w, "negotiated");
    json_begin_object(&w);
    json_key(&w, "version");
    json_string(&w, res->version);
    json_key(&w, "cipher");
    json_string(&w, res->cipher);
    json_key(&w, "group");
    json_string(&w, res->group);
    json_key(&w, "ems");
    json_bool(&w, res->ems);
    json_end_object(&w);
    json_key(&w, "checks");
    json_begin_array(&w);
    for (i = 0; i < rp->n; i++) {
        const row *r = &rp->rows[i];

        json_begin_object(&w);
        json_key(&w, "id");
        json_string(&w, r->id);
        json_key(&w, "check");
        json_string(&w, r->check);
        json_key(&w, "observed");
        json_string(&w, r->observed);
        json_key(&w, "detail");
        json_string(&w, r->detail);
        json_key(&w, "expected_rfc7627");
        json_string(&w, r->rfc);
        json_key(&w, "expected_schannel");
        json_string(&w, r->schannel);
        json_key(&w, "status");
        json_string(&w, r->status);
        json_key(&w, "risk");
        json_string(&w, strcmp(r->status, "ok") != 0 ? r->risk : NULL);
        json_end_object(&w);
    }
    json_end_array(&w);
    json_key(&w, "dhe");
    json_begin_object(&w);
    json_key(&w, "negotiable_without_ems");
    json_bool(&w, res->dhe_negotiable);
    json_key(&w, "handshakes");
    json_int(&w, res->dhe_handshakes);
    json_key(&w, "leading_zero_handshakes");
    json_int(&w, res->dhe_zero_events);
    json_key(&w, "leading_zero_failed");
    json_int(&w, res->dhe_zero_failed);
    json_key(&w, "other_failed");
    json_int(&w, res->dhe_other_failed);
    json_key(&w, "max_handshakes");
    json_int(&w, o->max_handshakes);
    json_end_object(&w);
    json_key(&w, "verdict");
    verdict_sentence(rp, v, sizeof(v));
    json_string(&w, v);
    json_key(&w, "remediation");
    json_begin_array(&w);
    for (i = 0; i < rp->nfixes; i++)
        json_string(&w, rp->fixes[i]);
    json_end_array(&w);
    json_end_object(&w);
    json_finish(&w);
}

int probe_report(FILE *out, const probe_opts *o, const probe_results *res)
{
    report rp;
    int code;

    build(o, res, &rp);
    code = rp.nreasons == 0 ? EG_EXIT_OK : EG_EXIT_FINDINGS;
    if (o->json)
        print_json(out, o, res, &rp, code);
    else
        print_text(out, o, res, &rp);
    return code;
}

int probe_report_error(FILE *out, const probe_opts *o, const probe_err *e)
{
    json_writer w;

    if (!o->scan)
        fprintf(stderr, "emsguard probe: %s\n", e->msg);
    else if (!o->json)
        fprintf(out, "emsguard probe: %s%s\nerror (%s): %s\n", o->target,
            starttls_label(o->starttls), probe_err_name(e->kind), e->msg);
    if (o->json && e->kind != PE_USAGE) {
        json_init(&w, out, !o->scan);
        json_begin_object(&w);
        json_head(&w, o, "error", EG_EXIT_ERROR);
        json_key(&w, "error");
        json_begin_object(&w);
        json_key(&w, "kind");
        json_string(&w, probe_err_name(e->kind));
        json_key(&w, "message");
        json_string(&w, e->msg);
        json_end_object(&w);
        json_end_object(&w);
        json_finish(&w);
    }
    return EG_EXIT_ERROR;
}
