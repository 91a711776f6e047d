/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The remote compliance probe (`emsguard probe`): shared types.
 *
 *   net.c          TCP with deadlines, line-based plain-text replies
 *   starttls.c     the plain-text dialogue before TLS: FTP AUTH TLS and
 *                  SMTP / IMAP / POP3 STARTTLS
 *   probe_tls.c    one TLS 1.2 handshake, and the checks built from them
 *   probe_checks.c the checks, in order
 *   dh_observe.c   sees whether a DH shared secret had a leading zero byte
 *   probe_report.c verdicts, the text table and the JSON document
 *   targets.c      HOST[:PORT] and the lines of a --targets file
 *   scan.c         --targets: many targets in parallel, progress, summary
 *   probe.c        options
 */
#ifndef EMSGUARD_TOOLS_PROBE_H
#define EMSGUARD_TOOLS_PROBE_H

#include <stddef.h>
#include <stdio.h>
#include <openssl/ssl.h>

/* Why the probe could not run (JSON "error.kind"). */
typedef enum {
    PE_NONE = 0,
    PE_USAGE,
    PE_DNS,
    PE_REFUSED,
    PE_CONNECT,
    PE_TIMEOUT,
    PE_CLOSED,
    PE_NOT_TLS,
    PE_GARBAGE,
    PE_TRUNCATED,
    PE_MALFORMED,
    PE_TLS13_ONLY,
    PE_HANDSHAKE,
    PE_STARTTLS,
    PE_INTERNAL
} probe_err_kind;

const char *probe_err_name(probe_err_kind k);

typedef struct {
    probe_err_kind kind;
    char msg[512]; /* one line, without the "emsguard probe: " prefix */
} probe_err;

void probe_err_set(probe_err *e, probe_err_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* --starttls: the plain-text protocol spoken before the TLS handshake. */
typedef enum {
    ST_NONE = 0, /* TLS from the first byte (443, 465, 993, 995, ...) */
    ST_FTP, /* AUTH TLS (RFC 4217) */
    ST_SMTP, /* EHLO, STARTTLS (RFC 3207) */
    ST_IMAP, /* CAPABILITY, STARTTLS (RFC 3501) */
    ST_POP3 /* CAPA, STLS (RFC 2595) */
} probe_starttls;

typedef struct {
    const char *host;
    char port[16];
    char target[300]; /* "host:port" for messages */
    const char *sni; /* NULL: host, unless it is an IP address */
    probe_starttls starttls;
    int json;
    int timeout_ms;
    long max_handshakes;
    int dhe_events; /* leading-zero secrets wanted */
    int progress; /* stderr is a TTY (the DHE run's progress) */
    /* --targets only */
    int scan; /* reports (errors too) go to the scan's output, JSON on one line */
    long long target_deadline; /* probe_now_ms() limit for the whole target, 0 none */
    int line; /* line of the targets file */
    long long duration_ms; /* how long the target took */
} probe_opts;

/* In a scan each target must finish within this many times --timeout. */
#define PROBE_TARGET_DEADLINE_FACTOR 30

/* The deadline of one network step: --timeout from now, but never after
 * the target's own deadline. */
long long probe_deadline(const probe_opts *o);

/* ---- net.c -------------------------------------------------------------- */

/* Milliseconds on a monotonic clock. */
long long probe_now_ms(void);

/* A connected TCP socket (non-blocking) to host:port within the deadline,
 * or -1 with the reason in *e. */
int net_connect(const probe_opts *o, const char *host, const char *port,
    long long deadline, probe_err *e);

/* Waits until fd is readable (POLLIN) or writable; 1 ready, 0 timeout,
 * -1 error. */
int net_wait(int fd, int for_write, long long deadline);

/* FTP control channel (plain text, before or after TLS). */
typedef struct {
    int fd;
    SSL *ssl; /* NULL: plain */
    char buf[4096];
    size_t len;
} ftp_ctl;

/* Reads one (possibly multi-line) reply; returns its code, or -1 with *e. */
int ftp_reply(ftp_ctl *c, const probe_opts *o, long long deadline,
    char *text, size_t textlen, probe_err *e);
/* Sends "CMD\r\n"; 1 on success. */
int ftp_send(ftp_ctl *c, const probe_opts *o, long long deadline,
    const char *cmd, probe_err *e);

/* Generic plain-text line I/O on a control channel, for the STARTTLS
 * dialogues.  ctl_send_line sends "CMD\r\n" (1 on success); proto names
 * the protocol in messages ("SMTP").  ctl_read_line returns one line
 * without CRLF (1), or 0 with *e (timeout, closed, too long); |what| says
 * what was awaited ("the SMTP greeting"), |after| the last line seen. */
int ctl_send_line(ftp_ctl *c, const probe_opts *o, long long deadline,
    const char *proto, const char *cmd, probe_err *e);
int ctl_read_line(ftp_ctl *c, const probe_opts *o, long long deadline,
    const char *proto, const char *what, const char *after, char *line,
    size_t len, probe_err *e);

/* ---- starttls.c --------------------------------------------------------- */

/* "ftp", "smtp", "imap", "pop3", NULL for ST_NONE. */
const char *starttls_name(probe_starttls st);
/* " (SMTP, STARTTLS)", "" for ST_NONE: what a report's first line adds. */
const char *starttls_label(probe_starttls st);
/* Parses a --starttls value; 0 if unknown. */
int starttls_parse(const char *name, probe_starttls *st);
/* The port used without HOST:PORT ("443", "21", "25", "143", "110"). */
const char *starttls_default_port(probe_starttls st);

/* Connects and, with --starttls, does the protocol's dialogue up to its
 * "go ahead" for TLS.  Returns the socket ready for the TLS ClientHello,
 * or -1 with *e. */
int probe_open(const probe_opts *o, long long deadline, probe_err *e);

/* ---- dh_observe.c ------------------------------------------------------- */
#include "dh_observe.h"

/* ---- probe_tls.c -------------------------------------------------------- */

/* What one connection attempt did. */
typedef struct {
    int completed; /* handshake finished */
    int resumed; /* the ServerHello resumed the offered session */
    int ems; /* EMS negotiated (completed handshakes) */
    int alert_recv; /* alert description received, -1 none */
    int alert_sent;
    int nst; /* NewSessionTicket messages received */
    int nst_nonempty; /* of those, with a non-empty ticket */
    int server_hello; /* a ServerHello arrived */
    int leading_zero; /* a DH secret of this handshake had a 0x00 byte */
    int dh_derived; /* a DH secret was derived */
    char version[16];
    char cipher[64];
    char group[32];
    SSL_SESSION *session; /* after a completed handshake; caller frees */
    probe_err err; /* when !completed */
} hs_result;

typedef struct {
    int ems; /* offer EMS */
    int tickets; /* offer session tickets */
    int tls13; /* TLS 1.3 only (detection of TLS 1.3-only servers) */
    const char *ciphers; /* TLS 1.2 cipher list, NULL: default */
    const SSL_SESSION *offer; /* offered (a copy is used), or NULL */
} hs_params;

/* The client SSL_CTX of the probe (in a library context of its own, made
 * once per process and freed by probe_ctx_cleanup() when no probe runs any
 * more); NULL on error.  Thread-safe: each target gets its own SSL_CTX. */
SSL_CTX *probe_ctx_new(void);
void probe_ctx_cleanup(void);

/* One connection and handshake (closed afterwards).  0 when the probe
 * must stop (network error: r->err), 1 otherwise (r says what happened). */
int probe_handshake(SSL_CTX *ctx, const probe_opts *o, const hs_params *p,
    hs_result *r);
void hs_result_clear(hs_result *r);

/* TLS handshake on an already open socket (FTP data connections).  Returns
 * the SSL (caller shuts it down and frees) or NULL. */
SSL *probe_tls_on_fd(SSL_CTX *ctx, const probe_opts *o, int fd,
    const hs_params *p, long long deadline, hs_result *r);
void probe_tls_close(SSL *ssl, long long deadline);

/* "40 (handshake_failure)" */
const char *probe_alert_text(int alert, char *buf, size_t len);

/* ---- the checks --------------------------------------------------------- */

typedef enum {
    OBS_NOT_RUN = 0, /* not applicable: no such session */
    OBS_RESUMED,
    OBS_FULL,
    OBS_ABORTED
} probe_obs;

/* One §5.3 case. */
typedef struct {
    probe_obs obs;
    int alert; /* OBS_ABORTED: alert received (-1: closed without one) */
    int alert_sent; /* the probe itself aborted (inconsistent EMS) */
    int ems; /* OBS_RESUMED/OBS_FULL: EMS negotiated */
    const char *why_not_run;
} case_result;

enum { MECH_ID = 0, MECH_TICKET = 1 };
enum { C_NONEMS_EMS = 0, C_NONEMS_NONEMS, C_EMS_NONEMS, C_EMS_EMS, C_MAX };

typedef struct {
    int issued_ems; /* an EMS full handshake issued an ID / a ticket */
    int issued_nonems;
    int nonems_full_ok; /* the server completed a non-EMS full handshake */
    int nonems_alert;
    case_result c[C_MAX];
} mech_result;

typedef struct {
    /* 1: EMS support, from the first full handshake */
    int ems;
    char version[16], cipher[64], group[32];
    mech_result mech[2];
    /* ticket renewal */
    int renewal_tested, renewal_seen, renewal_from_ems;
    /* DHE without EMS */
    int dhe_tested, dhe_negotiable, dhe_alert;
    char dhe_cipher[64], dhe_group[32];
    long dhe_handshakes, dhe_zero_events, dhe_zero_failed, dhe_other_failed;
    int dhe_zero_alert; /* an alert seen on a failed leading-zero handshake */
    int dhe_observe_failed; /* EVP_PKEY_derive is not interposed */
    int dhe_deadline; /* the target's deadline ended the run */
    /* FTPS data connection reuse */
    int ftp_tested; /* 0 not FTP */
    int ftp_can_tell;
    int ftp_reuse_required;
    int ftp_reuse_ok; /* data connection resuming the control session worked */
    int ftp_reuse_ems; /* and the control session had EMS */
    char ftp_note[256];
} probe_results;

/* Runs every check.  Returns 1, or 0 with *e when the probe cannot go on. */
int probe_run(const probe_opts *o, probe_results *res, probe_err *e);

/* ---- probe_report.c ----------------------------------------------------- */

/* Prints the report on |out|; returns the exit status (0 compliant, 1
 * findings).  o->scan: JSON on one line (JSON Lines), with the "scan" member. */
int probe_report(FILE *out, const probe_opts *o, const probe_results *res);
/* The error: one line on stderr, and with --json the error document on
 * |out|; with o->scan the error report goes to |out| only.  Returns 2. */
int probe_report_error(FILE *out, const probe_opts *o, const probe_err *e);

/* ---- targets.c ---------------------------------------------------------- */

/* HOST, HOST:PORT, [V6] or [V6]:PORT (arg is modified: o->host points into
 * it), then o->port (default by o->starttls), o->target and the default SNI.
 * 0 if malformed. */
int target_set(char *arg, probe_opts *o);
/* strtol in [min, max], whole string; 0 if not. */
int parse_long(const char *s, long min, long max, long *out);

/* One line of a --targets file. */
typedef struct {
    probe_opts o; /* host and sni point into text */
    char text[1024];
    int line;
} scan_target;

/* Reads FILE ("-": stdin): one target per line, `HOST[:PORT] [--starttls
 * PROTO] [--sni NAME]`, `#` comments.  Each target starts as a copy of
 * *defaults.  A malformed line is reported on stderr with its number and
 * skipped (*bad counts them).  Returns the array (*n entries; free()) or
 * NULL with *n = -1 when the file cannot be read. */
scan_target *targets_load(const char *file, const probe_opts *defaults,
    int *n, int *bad);

/* ---- scan.c ------------------------------------------------------------- */

/* emsguard probe --targets: runs every target, up to |parallel| at once;
 * returns the exit status (1 findings, else 2 errors/bad lines, else 0;
 * 130 when interrupted). */
int scan_main(const char *file, const probe_opts *defaults, int parallel);

#endif
