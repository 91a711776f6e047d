/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The plain-text dialogue before the TLS handshake (--starttls): FTP AUTH TLS
 * (RFC 4217), SMTP EHLO + STARTTLS (RFC 3207), IMAP CAPABILITY + STARTTLS
 * (RFC 3501), POP3 CAPA + STLS (RFC 2595).  probe_open() runs it for every
 * connection of the probe, so each resumption check repeats it.
 *
 * Every failure says what happened: the server did not offer STARTTLS, it
 * refused (its reply quoted), it does not speak the protocol at all (its
 * first line quoted), or it did not answer in time.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include "probe.h"

static const struct {
    const char *name;
    const char *port;
    const char *label; /* after the target in a report's first line */
} starttls_info[] = {
    [ST_NONE] = { NULL, "443", "" },
    [ST_FTP] = { "ftp", "21", " (FTP, AUTH TLS)" },
    [ST_SMTP] = { "smtp", "25", " (SMTP, STARTTLS)" },
    [ST_IMAP] = { "imap", "143", " (IMAP, STARTTLS)" },
    [ST_POP3] = { "pop3", "110", " (POP3, STLS)" },
};

const char *starttls_label(probe_starttls st)
{
    return starttls_info[st].label;
}

const char *starttls_name(probe_starttls st)
{
    return starttls_info[st].name;
}

const char *starttls_default_port(probe_starttls st)
{
    return starttls_info[st].port;
}

int starttls_parse(const char *name, probe_starttls *st)
{
    size_t i;

    for (i = 1; i < sizeof(starttls_info) / sizeof(starttls_info[0]); i++) {
        if (strcmp(name, starttls_info[i].name) == 0) {
            *st = (probe_starttls)i;
            return 1;
        }
    }
    return 0;
}

/* After the server's go-ahead nothing may be buffered: bytes sent before
 * the handshake would otherwise be read as if they came over TLS
 * (the STARTTLS response-injection problem, RFC 3207 section 4.2). */
static int nothing_buffered(const ftp_ctl *c, const probe_opts *o, const char *proto,
    const char *what, probe_err *e)
{
    if (c->len == 0)
        return 1;
    probe_err_set(e, PE_STARTTLS, "%s: the %s server sent data after %s", o->target, proto,
        what);
    return 0;
}

/* A greeting that never came: often an implicit-TLS port (465, 993, 995)
 * probed with --starttls, whose server waits for a ClientHello. */
static void greeting_hint(const probe_opts *o, probe_err *e)
{
    size_t n = strlen(e->msg);

    if (e->kind == PE_TIMEOUT)
        snprintf(e->msg + n, sizeof(e->msg) - n,
            " (an implicit-TLS port? then probe it without --starttls %s)",
            starttls_name(o->starttls));
}

/* ---- FTP ----------------------------------------------------------------- */

static int ftp_auth_tls(ftp_ctl *c, const probe_opts *o, long long deadline, probe_err *e)
{
    char text[256];
    int code;

    code = ftp_reply(c, o, deadline, text, sizeof(text), e);
    if (code < 0)
        return 0;
    if (code != 220) {
        probe_err_set(e, PE_STARTTLS, "%s: unexpected FTP greeting \"%.120s\"", o->target, text);
        return 0;
    }
    if (!ftp_send(c, o, deadline, "AUTH TLS", e))
        return 0;
    code = ftp_reply(c, o, deadline, text, sizeof(text), e);
    if (code < 0)
        return 0;
    if (code != 234) {
        probe_err_set(e, PE_STARTTLS, "%s: the FTP server refused AUTH TLS: \"%.120s\"",
            o->target, text);
        return 0;
    }
    if (c->len != 0) {
        probe_err_set(e, PE_STARTTLS, "%s: FTP server sent data after 234", o->target);
        return 0;
    }
    return 1;
}

/* ---- SMTP ---------------------------------------------------------------- */

static int smtp_code(const char *l)
{
    if (!(l[0] >= '2' && l[0] <= '5' && isdigit((unsigned char)l[1])
            && isdigit((unsigned char)l[2]) && (l[3] == ' ' || l[3] == '-' || l[3] == '\0')))
        return -1;
    return (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
}

/* One SMTP reply (RFC 5321 4.2: "ddd-" lines, then "ddd "); its code, its
 * first line in |text|; *starttls set if a line announces STARTTLS (the EHLO
 * keywords).  -1 with *e. */
static int smtp_reply(ftp_ctl *c, const probe_opts *o, long long deadline, const char *what,
    const char *after, char *text, size_t textlen, int *starttls, probe_err *e)
{
    char line[1024];
    int code = -1, n;

    text[0] = '\0';
    for (;;) {
        if (!ctl_read_line(c, o, deadline, "SMTP", what, after, line, sizeof(line), e))
            return -1;
        n = smtp_code(line);
        if (n < 0 || (code >= 0 && n != code)) {
            probe_err_set(e, PE_STARTTLS, "%s does not speak SMTP: it sent \"%.80s\"", o->target,
                line);
            return -1;
        }
        if (code < 0)
            snprintf(text, textlen, "%.*s", (int)textlen - 1, line);
        code = n;
        if (starttls != NULL && line[3] != '\0' && strncasecmp(line + 4, "STARTTLS", 8) == 0
            && (line[12] == '\0' || line[12] == ' '))
            *starttls = 1;
        if (line[3] != '-')
            return code;
    }
}

/* The EHLO argument: this end's address literal (RFC 5321 4.1.3). */
static void ehlo_command(int fd, char *cmd, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char addr[INET6_ADDRSTRLEN] = "127.0.0.1";

    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6) {
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof(addr));
            snprintf(cmd, len, "EHLO [IPv6:%s]", addr);
            return;
        }
        if (ss.ss_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof(addr));
    }
    snprintf(cmd, len, "EHLO [%s]", addr);
}

static int smtp_starttls(ftp_ctl *c, const probe_opts *o, long long deadline, probe_err *e)
{
    char text[256], cmd[80];
    int code, offered = 0;

    code = smtp_reply(c, o, deadline, "the SMTP greeting", NULL, text, sizeof(text), NULL, e);
    if (code < 0) {
        greeting_hint(o, e);
        return 0;
    }
    if (code != 220) {
        probe_err_set(e, PE_STARTTLS, "%s: the SMTP server refused the session: \"%.120s\"",
            o->target, text);
        return 0;
    }
    ehlo_command(c->fd, cmd, sizeof(cmd));
    if (!ctl_send_line(c, o, deadline, "SMTP", cmd, e))
        return 0;
    code = smtp_reply(c, o, deadline, "the reply to EHLO", "EHLO", text, sizeof(text),
        &offered, e);
    if (code < 0)
        return 0;
    if (code != 250) {
        probe_err_set(e, PE_STARTTLS, "%s: the SMTP server refused EHLO: \"%.120s\"", o->target,
            text);
        return 0;
    }
    if (!offered) {
        probe_err_set(e, PE_STARTTLS,
            "%s: the SMTP server does not offer STARTTLS (not in its EHLO reply)", o->target);
        return 0;
    }
    if (!ctl_send_line(c, o, deadline, "SMTP", "STARTTLS", e))
        return 0;
    code = smtp_reply(c, o, deadline, "the reply to STARTTLS", "STARTTLS", text, sizeof(text),
        NULL, e);
    if (code < 0)
        return 0;
    if (code != 220) {
        probe_err_set(e, PE_STARTTLS, "%s: the SMTP server refused STARTTLS: \"%.120s\"",
            o->target, text);
        return 0;
    }
    return nothing_buffered(c, o, "SMTP", "its 220 reply to STARTTLS", e);
}

/* ---- IMAP ---------------------------------------------------------------- */

/* 1 if the space-separated word |w| is in |s| (case-insensitive); IMAP
 * capabilities may sit in a "[CAPABILITY ...]" response code. */
static int has_word(const char *s, const char *w)
{
    size_t n = strlen(w);
    const char *p;

    for (p = s; *p != '\0'; p++) {
        if ((p == s || p[-1] == ' ' || p[-1] == '[') && strncasecmp(p, w, n) == 0
            && (p[n] == '\0' || p[n] == ' ' || p[n] == ']'))
            return 1;
    }
    return 0;
}

/* Reads up to the tagged reply of |tag|; untagged lines are scanned for
 * STARTTLS (*offered).  Returns 1 and the tagged line in |text|, or 0. */
static int imap_tagged(ftp_ctl *c, const probe_opts *o, long long deadline, const char *tag,
    const char *what, const char *after, char *text, size_t textlen, int *offered, probe_err *e)
{
    char line[2048];
    size_t tl = strlen(tag);

    for (;;) {
        if (!ctl_read_line(c, o, deadline, "IMAP", what, after, line, sizeof(line), e))
            return 0;
        if (strncmp(line, tag, tl) == 0 && line[tl] == ' ') {
            snprintf(text, textlen, "%.*s", (int)textlen - 1, line);
            return 1;
        }
        if (strncmp(line, "* ", 2) != 0 && strncmp(line, "+ ", 2) != 0) {
            probe_err_set(e, PE_STARTTLS, "%s does not speak IMAP: it sent \"%.80s\"", o->target,
                line);
            return 0;
        }
        if (offered != NULL && strncasecmp(line, "* CAPABILITY ", 13) == 0
            && has_word(line + 13, "STARTTLS"))
            *offered = 1;
    }
}

static int imap_ok(const char *tagged, size_t taglen)
{
    return strncasecmp(tagged + taglen + 1, "OK", 2) == 0
        && (tagged[taglen + 3] == ' ' || tagged[taglen + 3] == '\0');
}

static int imap_starttls(ftp_ctl *c, const probe_opts *o, long long deadline, probe_err *e)
{
    char line[2048], text[256];
    int offered = 0;

    if (!ctl_read_line(c, o, deadline, "IMAP", "the IMAP greeting", NULL, line, sizeof(line), e)) {
        greeting_hint(o, e);
        return 0;
    }
    if (strncasecmp(line, "* BYE", 5) == 0) {
        probe_err_set(e, PE_STARTTLS, "%s: the IMAP server refused the session: \"%.120s\"",
            o->target, line);
        return 0;
    }
    if (strncasecmp(line, "* PREAUTH", 9) == 0) {
        probe_err_set(e, PE_STARTTLS,
            "%s: the IMAP server pre-authenticated the session (\"%.80s\"): STARTTLS is not "
            "allowed after PREAUTH", o->target, line);
        return 0;
    }
    if (strncasecmp(line, "* OK", 4) != 0) {
        probe_err_set(e, PE_STARTTLS, "%s does not speak IMAP: it sent \"%.80s\"", o->target,
            line);
        return 0;
    }
    if (!ctl_send_line(c, o, deadline, "IMAP", "eg1 CAPABILITY", e)
        || !imap_tagged(c, o, deadline, "eg1", "the reply to CAPABILITY", "CAPABILITY", text,
            sizeof(text), &offered, e))
        return 0;
    if (!imap_ok(text, 3)) {
        probe_err_set(e, PE_STARTTLS, "%s: the IMAP server refused CAPABILITY: \"%.120s\"",
            o->target, text);
        return 0;
    }
    if (!offered) {
        probe_err_set(e, PE_STARTTLS,
            "%s: the IMAP server does not offer STARTTLS (not in its CAPABILITY reply)",
            o->target);
        return 0;
    }
    if (!ctl_send_line(c, o, deadline, "IMAP", "eg2 STARTTLS", e)
        || !imap_tagged(c, o, deadline, "eg2", "the reply to STARTTLS", "STARTTLS", text,
            sizeof(text), NULL, e))
        return 0;
    if (!imap_ok(text, 3)) {
        probe_err_set(e, PE_STARTTLS, "%s: the IMAP server refused STARTTLS: \"%.120s\"",
            o->target, text);
        return 0;
    }
    return nothing_buffered(c, o, "IMAP", "its OK to STARTTLS", e);
}

/* ---- POP3 ---------------------------------------------------------------- */

/* A status line: 1 "+OK", 0 "-ERR", else not POP3 (-1 with *e). */
static int pop3_status(const char *line, const probe_opts *o, probe_err *e)
{
    if (strncasecmp(line, "+OK", 3) == 0 && (line[3] == '\0' || line[3] == ' '))
        return 1;
    if (strncasecmp(line, "-ERR", 4) == 0 && (line[4] == '\0' || line[4] == ' '))
        return 0;
    probe_err_set(e, PE_STARTTLS, "%s does not speak POP3: it sent \"%.80s\"", o->target, line);
    return -1;
}

static int pop3_starttls(ftp_ctl *c, const probe_opts *o, long long deadline, probe_err *e)
{
    char line[1024];
    int st, offered = 0, capa;

    if (!ctl_read_line(c, o, deadline, "POP3", "the POP3 greeting", NULL, line, sizeof(line), e)) {
        greeting_hint(o, e);
        return 0;
    }
    if ((st = pop3_status(line, o, e)) < 0)
        return 0;
    if (st == 0) {
        probe_err_set(e, PE_STARTTLS, "%s: the POP3 server refused the session: \"%.120s\"",
            o->target, line);
        return 0;
    }
    if (!ctl_send_line(c, o, deadline, "POP3", "CAPA", e)
        || !ctl_read_line(c, o, deadline, "POP3", "the reply to CAPA", "CAPA", line,
            sizeof(line), e)
        || (capa = pop3_status(line, o, e)) < 0)
        return 0;
    /* The capability list ends with "." (RFC 2449); a server without CAPA
     * (RFC 1939 only) answers -ERR, and STLS is then simply tried. */
    while (capa == 1) {
        if (!ctl_read_line(c, o, deadline, "POP3", "the end of the CAPA list", "CAPA", line,
                sizeof(line), e))
            return 0;
        if (strcmp(line, ".") == 0)
            break;
        if (strncasecmp(line, "STLS", 4) == 0 && (line[4] == '\0' || line[4] == ' '))
            offered = 1;
    }
    if (capa == 1 && !offered) {
        probe_err_set(e, PE_STARTTLS,
            "%s: the POP3 server does not offer STLS (not in its CAPA reply)", o->target);
        return 0;
    }
    if (!ctl_send_line(c, o, deadline, "POP3", "STLS", e)
        || !ctl_read_line(c, o, deadline, "POP3", "the reply to STLS", "STLS", line,
            sizeof(line), e)
        || (st = pop3_status(line, o, e)) < 0)
        return 0;
    if (st == 0) {
        probe_err_set(e, PE_STARTTLS, "%s: the POP3 server refused STLS: \"%.120s\"", o->target,
            line);
        return 0;
    }
    return nothing_buffered(c, o, "POP3", "its +OK to STLS", e);
}

int probe_open(const probe_opts *o, long long deadline, probe_err *e)
{
    ftp_ctl c;
    int fd, ok = 0;

    fd = net_connect(o, o->host, o->port, deadline, e);
    if (fd < 0 || o->starttls == ST_NONE)
        return fd;
    memset(&c, 0, sizeof(c));
    c.fd = fd;
    switch (o->starttls) {
    case ST_FTP: ok = ftp_auth_tls(&c, o, deadline, e); break;
    case ST_SMTP: ok = smtp_starttls(&c, o, deadline, e); break;
    case ST_IMAP: ok = imap_starttls(&c, o, deadline, e); break;
    case ST_POP3: ok = pop3_starttls(&c, o, deadline, e); break;
    case ST_NONE: break;
    }
    if (ok)
        return fd;
    close(fd);
    return -1;
}
