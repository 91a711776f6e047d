/* SPDX-License-Identifier: Apache-2.0 */
/* The probe's networking: TCP connect, and line-based replies on a plain or
 * TLS control channel, all with deadlines (the dialogues are starttls.c's). */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include "probe.h"

static const char *const err_names[] = {
    "none", "usage", "dns", "refused", "connect", "timeout", "closed",
    "not_tls", "garbage", "truncated", "malformed", "tls13_only", "handshake",
    "starttls", "internal",
};

const char *probe_err_name(probe_err_kind k)
{
    return (size_t)k < sizeof(err_names) / sizeof(err_names[0])
        ? err_names[k] : "internal";
}

void probe_err_set(probe_err *e, probe_err_kind kind, const char *fmt, ...)
{
    va_list ap;
    char *p;

    e->kind = kind;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    /* One line, whatever a peer sent. */
    for (p = e->msg; *p != '\0'; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

long long probe_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int net_wait(int fd, int for_write, long long deadline)
{
    struct pollfd pfd;
    long long left;
    int n;

    for (;;) {
        left = deadline - probe_now_ms();
        if (left <= 0)
            return 0;
        pfd.fd = fd;
        pfd.events = for_write ? POLLOUT : POLLIN;
        pfd.revents = 0;
        n = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

long long probe_deadline(const probe_opts *o)
{
    long long d = probe_now_ms() + o->timeout_ms;

    return o->target_deadline > 0 && o->target_deadline < d ? o->target_deadline : d;
}

static void timeout_text(const probe_opts *o, char *buf, size_t len)
{
    snprintf(buf, len, "%g s", o->timeout_ms / 1000.0);
}

int net_connect(const probe_opts *o, const char *host, const char *port,
    long long deadline, probe_err *e)
{
    struct addrinfo hints, *res = NULL, *ai;
    int fd = -1, rc, soerr = 0, saw_refused = 0, saw_timeout = 0, last = 0;
    socklen_t sl;
    char t[32];

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        probe_err_set(e, PE_DNS, "cannot resolve '%s': %s", host,
            rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
            ai->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (errno == EINPROGRESS) {
            rc = net_wait(fd, 1, deadline);
            sl = sizeof(soerr);
            if (rc == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0
                && soerr == 0)
                break;
            if (rc == 0)
                saw_timeout = 1;
            else
                last = soerr != 0 ? soerr : errno;
        } else {
            last = errno;
        }
        if (last == ECONNREFUSED)
            saw_refused = 1;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd >= 0)
        return fd;
    timeout_text(o, t, sizeof(t));
    if (saw_refused)
        probe_err_set(e, PE_REFUSED, "%s: connection refused", o->target);
    else if (saw_timeout)
        probe_err_set(e, PE_TIMEOUT, "%s: timed out after %s connecting", o->target, t);
    else
        probe_err_set(e, PE_CONNECT, "%s: cannot connect: %s", o->target, strerror(last));
    return -1;
}

/* ---- FTP control channel ------------------------------------------------ */

/* >0 bytes, 0 end of stream, -1 error, -2 timeout */
static int ctl_read(ftp_ctl *c, char *buf, size_t len, long long deadline)
{
    int n, w;

    for (;;) {
        if (c->ssl != NULL) {
            ERR_clear_error();
            n = SSL_read(c->ssl, buf, (int)len);
            if (n > 0)
                return n;
            switch (SSL_get_error(c->ssl, n)) {
            case SSL_ERROR_WANT_READ: w = 0; break;
            case SSL_ERROR_WANT_WRITE: w = 1; break;
            case SSL_ERROR_ZERO_RETURN: return 0;
            case SSL_ERROR_SYSCALL: return n == 0 ? 0 : -1;
            default: return -1;
            }
        } else {
            n = (int)recv(c->fd, buf, len, 0);
            if (n >= 0)
                return n;
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                return -1;
            w = 0;
        }
        n = net_wait(c->fd, w, deadline);
        if (n == 0)
            return -2;
        if (n < 0)
            return -1;
    }
}

int ctl_send_line(ftp_ctl *c, const probe_opts *o, long long deadline,
    const char *proto, const char *cmd, probe_err *e)
{
    char line[512];
    size_t len, off = 0;
    int n, w;
    char t[32];

    len = (size_t)snprintf(line, sizeof(line), "%s\r\n", cmd);
    while (off < len) {
        if (c->ssl != NULL) {
            ERR_clear_error();
            n = SSL_write(c->ssl, line + off, (int)(len - off));
            if (n > 0) {
                off += (size_t)n;
                continue;
            }
            w = SSL_get_error(c->ssl, n) == SSL_ERROR_WANT_READ ? 0 : 1;
            if (SSL_get_error(c->ssl, n) != SSL_ERROR_WANT_READ
                && SSL_get_error(c->ssl, n) != SSL_ERROR_WANT_WRITE)
                goto fail;
        } else {
            n = (int)send(c->fd, line + off, len - off, MSG_NOSIGNAL);
            if (n > 0) {
                off += (size_t)n;
                continue;
            }
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                goto fail;
            w = 1;
        }
        n = net_wait(c->fd, w, deadline);
        if (n == 0) {
            timeout_text(o, t, sizeof(t));
            probe_err_set(e, PE_TIMEOUT, "%s: timed out after %s sending %s command %.20s",
                o->target, t, proto, cmd);
            return 0;
        }
        if (n < 0)
            goto fail;
    }
    return 1;
fail:
    probe_err_set(e, PE_STARTTLS, "%s: cannot send %s command %.20s: connection lost",
        o->target, proto, cmd);
    return 0;
}

int ftp_send(ftp_ctl *c, const probe_opts *o, long long deadline,
    const char *cmd, probe_err *e)
{
    return ctl_send_line(c, o, deadline, "FTP", cmd, e);
}

/* One line out of the buffer, without CRLF; 1 if there was one. */
static int take_line(ftp_ctl *c, char *line, size_t len)
{
    char *nl = memchr(c->buf, '\n', c->len);
    size_t n, copy;

    if (nl == NULL)
        return 0;
    n = (size_t)(nl - c->buf) + 1;
    copy = n - 1;
    if (copy > 0 && c->buf[copy - 1] == '\r')
        copy--;
    if (copy >= len)
        copy = len - 1;
    memcpy(line, c->buf, copy);
    line[copy] = '\0';
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
    return 1;
}

int ctl_read_line(ftp_ctl *c, const probe_opts *o, long long deadline,
    const char *proto, const char *what, const char *after, char *line,
    size_t len, probe_err *e)
{
    char t[32];
    int n;

    while (!take_line(c, line, len)) {
        if (c->len >= sizeof(c->buf) - 1) {
            probe_err_set(e, PE_STARTTLS, "%s: %s reply line too long", o->target, proto);
            return 0;
        }
        n = ctl_read(c, c->buf + c->len, sizeof(c->buf) - 1 - c->len, deadline);
        if (n == -2) {
            timeout_text(o, t, sizeof(t));
            probe_err_set(e, PE_TIMEOUT, "%s: timed out after %s waiting for %s", o->target,
                t, what);
            return 0;
        }
        if (n <= 0) {
            probe_err_set(e, PE_CLOSED, "%s: the %s server closed the connection%s%.120s%s",
                o->target, proto, after != NULL && after[0] != '\0' ? " after \"" : "",
                after != NULL ? after : "", after != NULL && after[0] != '\0' ? "\"" : "");
            return 0;
        }
        c->len += (size_t)n;
    }
    return 1;
}

static int is_reply_start(const char *l)
{
    return l[0] >= '1' && l[0] <= '5' && l[1] >= '0' && l[1] <= '9'
        && l[2] >= '0' && l[2] <= '9';
}

int ftp_reply(ftp_ctl *c, const probe_opts *o, long long deadline,
    char *text, size_t textlen, probe_err *e)
{
    char line[1024], t[32];
    int code = -1, n;

    text[0] = '\0';
    for (;;) {
        while (take_line(c, line, sizeof(line))) {
            if (code < 0) {
                if (!is_reply_start(line)) {
                    probe_err_set(e, PE_STARTTLS, "%s does not speak FTP: it sent \"%.80s\"",
                        o->target, line);
                    return -1;
                }
                code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
                snprintf(text, textlen, "%s", line);
                if (line[3] != '-')
                    return code;
            } else if (is_reply_start(line) && line[3] == ' '
                && (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0') == code) {
                return code;
            }
        }
        if (c->len >= sizeof(c->buf) - 1) {
            probe_err_set(e, PE_STARTTLS, "%s: FTP reply line too long", o->target);
            return -1;
        }
        n = ctl_read(c, c->buf + c->len, sizeof(c->buf) - 1 - c->len, deadline);
        if (n == -2) {
            timeout_text(o, t, sizeof(t));
            probe_err_set(e, PE_TIMEOUT, "%s: timed out after %s waiting for an FTP reply",
                o->target, t);
            return -1;
        }
        if (n <= 0) {
            probe_err_set(e, PE_CLOSED, "%s: the FTP server closed the connection%s%s",
                o->target, text[0] != '\0' ? " after " : "", text);
            return -1;
        }
        c->len += (size_t)n;
    }
}
