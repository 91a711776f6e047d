/*
 * emsguard probe HOST[:PORT] [--sni NAME] [--starttls ftp] [--json]
 *                [--timeout S] [--max-handshakes N] [--dhe-events N]
 *
 * Tests a remote TLS 1.2 server the way Windows clients that enforce EMS on
 * resumption see it (docs/probe.md).  Exit status: 0 compliant, 1 findings,
 * 2 the probe could not run.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "commands.h"
#include "probe.h"

static const char usage_text[] =
    "usage: emsguard probe HOST[:PORT] [--sni NAME] [--starttls ftp] [--json]\n"
    "                      [--timeout S] [--max-handshakes N] [--dhe-events N]\n";

static int usage_error(const probe_opts *o, const char *fmt, const char *arg)
{
    probe_err e;

    probe_err_set(&e, PE_USAGE, fmt, arg);
    probe_report_error(o, &e);
    fputs(usage_text, stderr);
    return EG_EXIT_ERROR;
}

static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return 0;
    *out = v;
    return 1;
}

/* HOST, HOST:PORT, [V6] or [V6]:PORT into o->host and o->port. */
static int split_target(char *arg, probe_opts *o)
{
    char *colon;
    long port;

    if (arg[0] == '[') {
        char *close_br = strchr(arg, ']');

        if (close_br == NULL)
            return 0;
        *close_br = '\0';
        o->host = arg + 1;
        colon = close_br[1] == ':' ? close_br + 1 : NULL;
        if (close_br[1] != '\0' && colon == NULL)
            return 0;
    } else {
        colon = strrchr(arg, ':');
        /* a bare IPv6 address has several colons and no port */
        if (colon != NULL && strchr(arg, ':') != colon)
            colon = NULL;
        o->host = arg;
    }
    if (colon != NULL) {
        *colon = '\0';
        if (!parse_long(colon + 1, 1, 65535, &port))
            return 0;
        snprintf(o->port, sizeof(o->port), "%ld", port);
    }
    return o->host[0] != '\0';
}

int probe_main(int argc, char **argv)
{
    probe_opts o;
    probe_results res;
    probe_err e;
    char *target = NULL, *end;
    unsigned char addr[16];
    double t;
    long v;
    int i, rc;

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
            || strcmp(a, "--dhe-events") == 0) {
            if (val == NULL)
                return usage_error(&o, "%s needs a value", a);
            i++;
            if (strcmp(a, "--sni") == 0) {
                o.sni = val;
            } else if (strcmp(a, "--starttls") == 0) {
                if (strcmp(val, "ftp") != 0)
                    return usage_error(&o, "--starttls: only 'ftp' is supported, not '%s'", val);
                o.ftp = 1;
            } else if (strcmp(a, "--timeout") == 0) {
                t = strtod(val, &end);
                if (end == val || *end != '\0' || !(t >= 0.1 && t <= 3600))
                    return usage_error(&o, "--timeout wants seconds from 0.1 to 3600, not '%s'", val);
                o.timeout_ms = (int)(t * 1000 + 0.5);
            } else if (strcmp(a, "--max-handshakes") == 0) {
                if (!parse_long(val, 1, 10000000, &v))
                    return usage_error(&o, "--max-handshakes wants a number from 1 to 10000000, not '%s'", val);
                o.max_handshakes = v;
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
    if (target == NULL)
        return usage_error(&o, "%s", "no HOST[:PORT] given");
    snprintf(o.port, sizeof(o.port), "%s", o.ftp ? "21" : "443");
    if (!split_target(target, &o))
        return usage_error(&o, "bad target '%s' (HOST[:PORT], [IPv6]:PORT)", target);
    if (strchr(o.host, ':') != NULL)
        snprintf(o.target, sizeof(o.target), "[%s]:%s", o.host, o.port);
    else
        snprintf(o.target, sizeof(o.target), "%s:%s", o.host, o.port);
    /* SNI names a host, never an address (RFC 6066). */
    if (o.sni == NULL && inet_pton(AF_INET, o.host, addr) != 1
        && inet_pton(AF_INET6, o.host, addr) != 1)
        o.sni = o.host;
    o.progress = isatty(STDERR_FILENO);
    /* A peer that closes early must not kill the probe mid-write. */
    signal(SIGPIPE, SIG_IGN);
    if (!probe_run(&o, &res, &e))
        return probe_report_error(&o, &e);
    rc = probe_report(&o, &res);
    fflush(stdout);
    return rc;
}
