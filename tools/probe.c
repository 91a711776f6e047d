/* SPDX-License-Identifier: Apache-2.0 */
/*
 * emsguard probe HOST[:PORT] [--sni NAME] [--starttls PROTO] [--json]
 *                [--timeout S] [--max-handshakes N] [--dhe-events N]
 * emsguard probe --targets FILE [--parallel N] [--starttls PROTO] [--json] ...
 *
 * Tests a remote TLS 1.2 server (or, with --targets, many) the way Windows
 * clients that enforce EMS on resumption see it (docs/probe.md).  This file
 * holds the options; exit status: 0 compliant, 1 findings, 2 the probe
 * could not run.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "commands.h"
#include "probe.h"

static const char usage_text[] =
    "usage: emsguard probe HOST[:PORT] [--sni NAME] [--starttls PROTO] [--json]\n"
    "                      [--timeout S] [--max-handshakes N] [--dhe-events N]\n"
    "       emsguard probe --targets FILE [--parallel N] [--starttls PROTO] [--json]\n"
    "                      [--timeout S] [--max-handshakes N] [--dhe-events N]\n"
    "PROTO: ftp, smtp, imap, pop3.  FILE: one `HOST[:PORT] [--starttls PROTO]\n"
    "[--sni NAME]` per line, # comments; - reads stdin.\n";

static int usage_error(const probe_opts *o, const char *fmt, const char *arg)
{
    probe_err e;

    probe_err_set(&e, PE_USAGE, fmt, arg);
    probe_report_error(stdout, o, &e);
    fputs(usage_text, stderr);
    return EG_EXIT_ERROR;
}

int probe_main(int argc, char **argv)
{
    probe_opts o;
    probe_results res;
    probe_err e;
    char *target = NULL, *end;
    const char *targets = NULL;
    double t;
    long v, parallel = 16;
    int i, rc, have_parallel = 0;

    memset(&o, 0, sizeof(o));
    o.host = "";
    o.timeout_ms = 10000;
    o.max_handshakes = 3000;
    o.dhe_events = 3;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--json") == 0) {
            o.json = 1;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage_text, stdout);
            return EG_EXIT_OK;
        } else if (strcmp(a, "--sni") == 0 || strcmp(a, "--starttls") == 0
            || strcmp(a, "--timeout") == 0 || strcmp(a, "--max-handshakes") == 0
            || strcmp(a, "--dhe-events") == 0 || strcmp(a, "--targets") == 0
            || strcmp(a, "--parallel") == 0) {
            if (val == NULL)
                return usage_error(&o, "%s needs a value", a);
            i++;
            if (strcmp(a, "--sni") == 0) {
                o.sni = val;
            } else if (strcmp(a, "--starttls") == 0) {
                if (!starttls_parse(val, &o.starttls))
                    return usage_error(&o, "--starttls wants ftp, smtp, imap or pop3, not '%s'", val);
            } else if (strcmp(a, "--timeout") == 0) {
                t = strtod(val, &end);
                if (end == val || *end != '\0' || !(t >= 0.1 && t <= 3600))
                    return usage_error(&o, "--timeout wants seconds from 0.1 to 3600, not '%s'", val);
                o.timeout_ms = (int)(t * 1000 + 0.5);
            } else if (strcmp(a, "--max-handshakes") == 0) {
                if (!parse_long(val, 1, 10000000, &v))
                    return usage_error(&o, "--max-handshakes wants a number from 1 to 10000000, not '%s'", val);
                o.max_handshakes = v;
            } else if (strcmp(a, "--targets") == 0) {
                targets = val;
            } else if (strcmp(a, "--parallel") == 0) {
                if (!parse_long(val, 1, 256, &parallel))
                    return usage_error(&o, "--parallel wants a number from 1 to 256, not '%s'", val);
                have_parallel = 1;
            } else {
                if (!parse_long(val, 1, 100, &v))
                    return usage_error(&o, "--dhe-events wants a number from 1 to 100, not '%s'", val);
                o.dhe_events = (int)v;
            }
        } else if (a[0] == '-' && a[1] != '\0') {
            return usage_error(&o, "unknown option '%s'", a);
        } else if (target == NULL) {
            target = argv[i];
        } else {
            return usage_error(&o, "more than one target ('%s')", a);
        }
    }
    /* A peer that closes early must not kill the probe mid-write. */
    signal(SIGPIPE, SIG_IGN);
    if (targets != NULL) {
        if (target != NULL)
            return usage_error(&o, "a target ('%s') and --targets: give one or the other", target);
        if (o.sni != NULL)
            return usage_error(&o, "%s", "--sni with --targets: put --sni NAME on the lines of the file");
        rc = scan_main(targets, &o, (int)parallel);
        probe_ctx_cleanup();
        return rc;
    }
    if (have_parallel)
        return usage_error(&o, "%s", "--parallel needs --targets FILE");
    if (target == NULL)
        return usage_error(&o, "%s", "no HOST[:PORT] given");
    if (!target_set(target, &o))
        return usage_error(&o, "bad target '%s' (HOST[:PORT], [IPv6]:PORT)", target);
    o.progress = isatty(STDERR_FILENO);
    rc = probe_run(&o, &res, &e);
    probe_ctx_cleanup();
    if (!rc)
        return probe_report_error(stdout, &o, &e);
    rc = probe_report(stdout, &o, &res);
    fflush(stdout);
    return rc;
}
