/*
 * The remote compliance probe (`emsguard probe`): shared types.
 *
 *   net.c          TCP with deadlines, FTP AUTH TLS and data connections
 *   probe_tls.c    one TLS 1.2 handshake, and the checks built from them
 *   dh_observe.c   sees whether a DH shared secret had a leading zero byte
 *   probe_report.c verdicts, the text table and the JSON document
 *   probe.c        options and the order of the checks
 */
#ifndef EMSGUARD_TOOLS_PROBE_H
#define EMSGUARD_TOOLS_PROBE_H

#include <stddef.h>
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

typedef struct {
    const char *host;
    char port[16];
    char target[300]; /* "host:port" for messages */
    const char *sni; /* NULL: host, unless it is an IP address */
    int ftp; /* --starttls ftp */
    int json;
    int timeout_ms;
    long max_handshakes;
    int dhe_events; /* leading-zero secrets wanted */
    int progress; /* stderr is a TTY */
} probe_opts;

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

/* Connects and, with --starttls ftp, reads the greeting and does AUTH TLS.
 * Returns the socket ready for the TLS ClientHello, or -1. */
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

/* The client SSL_CTX of the probe (in a library context of its own, freed
 * by probe_ctx_cleanup()); NULL on error. */
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

/* Prints the report; returns the exit status (0 compliant, 1 findings). */
int probe_report(const probe_opts *o, const probe_results *res);
/* The error document (--json) or line (stderr); returns 2. */
int probe_report_error(const probe_opts *o, const probe_err *e);

#endif
