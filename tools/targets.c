/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a target is: HOST[:PORT] on the command line, and the lines of a
 * --targets file (`HOST[:PORT] [--starttls PROTO] [--sni NAME]`).  Shared by
 * the single-target probe (probe.c) and the estate scan (scan.c), so that a
 * line of a targets file means exactly what the same words on the command
 * line mean.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "probe.h"

int parse_long(const char *s, long min, long max, long *out)
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
        unsigned char addr[16];

        colon = strrchr(arg, ':');
        /* a bare IPv6 address has several colons and no port */
        if (colon != NULL && strchr(arg, ':') != colon) {
            if (inet_pton(AF_INET6, arg, addr) != 1)
                return 0;
            colon = NULL;
        }
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

int target_set(char *arg, probe_opts *o)
{
    unsigned char addr[16];

    snprintf(o->port, sizeof(o->port), "%s", starttls_default_port(o->starttls));
    if (!split_target(arg, o))
        return 0;
    if (strchr(o->host, ':') != NULL)
        snprintf(o->target, sizeof(o->target), "[%s]:%s", o->host, o->port);
    else
        snprintf(o->target, sizeof(o->target), "%s:%s", o->host, o->port);
    /* SNI names a host, never an address (RFC 6066). */
    if (o->sni == NULL && inet_pton(AF_INET, o->host, addr) != 1
        && inet_pton(AF_INET6, o->host, addr) != 1)
        o->sni = o->host;
    return 1;
}

/* ---- --targets FILE -------------------------------------------------------- */

/* Splits |s| at blanks, up to |max| words; a word starting with '#' ends the
 * line (a comment).  Returns the count, or max + 1 when there are more. */
static int words(char *s, char **w, int max)
{
    int n = 0;
    char *p = s;

    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
            p++;
        if (*p == '\0' || *p == '#')
            return n;
        if (n == max)
            return max + 1;
        w[n++] = p;
        while (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
            p++;
        if (*p != '\0')
            *p++ = '\0';
    }
}

/* One line into *t; 1 target, 0 blank or comment, -1 malformed (*why). */
static int parse_line(scan_target *t, const probe_opts *defaults, char *why, size_t whylen)
{
    char *w[5];
    char target[sizeof(t->text)];
    int n, i, have_starttls = 0;

    t->o = *defaults;
    n = words(t->text, w, 5);
    if (n == 0)
        return 0;
    if (n > 5) {
        snprintf(why, whylen, "too many words (HOST[:PORT] [--starttls PROTO] [--sni NAME])");
        return -1;
    }
    for (i = 1; i < n; i += 2) {
        if (strcmp(w[i], "--starttls") != 0 && strcmp(w[i], "--sni") != 0) {
            snprintf(why, whylen, "unknown option '%.60s' (only --starttls and --sni)", w[i]);
            return -1;
        }
        if (i + 1 >= n) {
            snprintf(why, whylen, "%s needs a value", w[i]);
            return -1;
        }
        if (strcmp(w[i], "--sni") == 0) {
            t->o.sni = w[i + 1];
        } else if (!starttls_parse(w[i + 1], &t->o.starttls) || have_starttls++) {
            snprintf(why, whylen, "--starttls wants one of ftp, smtp, imap, pop3, not '%.40s'",
                w[i + 1]);
            return -1;
        }
    }
    if (w[0][0] == '-') {
        snprintf(why, whylen, "a line starts with HOST[:PORT], not '%.60s'", w[0]);
        return -1;
    }
    snprintf(target, sizeof(target), "%s", w[0]);
    if (!target_set(w[0], &t->o)) {
        snprintf(why, whylen, "bad target '%.100s' (HOST[:PORT], [IPv6]:PORT)", target);
        return -1;
    }
    return 1;
}

scan_target *targets_load(const char *file, const probe_opts *defaults, int *n, int *bad)
{
    FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
    scan_target *list = NULL, *grown;
    char buf[sizeof(list->text)], why[200];
    size_t cap = 0, len;
    int lineno = 0, rc, too_long = 0, i, j;

    *n = 0;
    *bad = 0;
    if (f == NULL) {
        fprintf(stderr, "emsguard probe: cannot read --targets %s: %s\n", file, strerror(errno));
        *n = -1;
        return NULL;
    }
    while (fgets(buf, sizeof(buf), f) != NULL) {
        len = strlen(buf);
        if (too_long) {
            /* the rest of an over-long line, already reported */
            too_long = len > 0 && buf[len - 1] != '\n';
            continue;
        }
        lineno++;
        if (len == sizeof(buf) - 1 && buf[len - 1] != '\n' && !feof(f)) {
            /* reported in line order below */
            too_long = 1;
            buf[0] = '\0';
        }
        if ((size_t)*n == cap) {
            cap = cap ? cap * 2 : 64;
            if ((grown = realloc(list, cap * sizeof(*list))) == NULL) {
                fprintf(stderr, "emsguard probe: out of memory reading %s\n", file);
                free(list);
                if (f != stdin)
                    fclose(f);
                *n = -1;
                return NULL;
            }
            list = grown;
        }
        memcpy(list[*n].text, buf, strlen(buf) + 1);
        list[*n].line = too_long ? -lineno : lineno;
        (*n)++;
    }
    if (ferror(f)) {
        fprintf(stderr, "emsguard probe: cannot read --targets %s: %s\n", file, strerror(errno));
        free(list);
        list = NULL;
        *n = -1;
    }
    if (f != stdin)
        fclose(f);
    /* Parsed only now that the array has its final place: o.host and o.sni
     * point into each entry's text. */
    for (i = j = 0; list != NULL && i < *n; i++) {
        if (j != i)
            list[j] = list[i];
        if (list[j].line < 0) {
            fprintf(stderr, "emsguard probe: %s:%d: line longer than %zu characters; "
                "line skipped\n", file, -list[j].line, sizeof(buf) - 2);
            (*bad)++;
            continue;
        }
        rc = parse_line(&list[j], defaults, why, sizeof(why));
        if (rc < 0) {
            fprintf(stderr, "emsguard probe: %s:%d: %s; line skipped\n", file, list[j].line, why);
            (*bad)++;
        } else if (rc > 0) {
            list[j].o.line = list[j].line;
            j++;
        }
    }
    if (list != NULL)
        *n = j;
    return list;
}
