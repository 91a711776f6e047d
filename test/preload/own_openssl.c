/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A program that carries its own OpenSSL, as Debian's /usr/bin/node does
 * (issue 15, attack finding N5), for test/preload_static.sh.  It defines and
 * exports (-rdynamic) SSL_CTX_new and SSL_CTX_new_ex, stand-ins for an
 * OpenSSL linked into the executable, and links no libssl.  The program's
 * own definitions come first in symbol lookup, before any LD_PRELOAD
 * library, so libemsguard-preload.so is never called: it must say so at
 * start-up, on stderr and in syslog, without loading libssl or libemsguard.
 *
 *   own_openssl
 *
 * Calls its SSL_CTX_new and SSL_CTX_new_ex, then prints `own SSL_CTX_new
 * called`, and `libssl=N libemsguard=M` (1 when that library is mapped).
 *
 * Built with -DWITHOUT_OWN_OPENSSL (no_openssl): the same program without
 * the two functions, for the cases where they come from elsewhere (a
 * library preloaded in front of libemsguard-preload.so) or from nowhere
 * (a process that never uses TLS: the preload must say nothing).  It prints
 * `no SSL_CTX_new of its own` instead.
 *
 * It defines syslog() (and the fortified forms), exported too: the preload's
 * syslog() calls land here and are echoed to stderr as `syslog: <PRI> ...`,
 * so the test sees what would reach the system log.
 */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>

void __syslog_chk(int pri, int flag, const char *fmt, ...);
void __vsyslog_chk(int pri, int flag, const char *fmt, va_list ap);

#ifndef WITHOUT_OWN_OPENSSL
void *SSL_CTX_new(const void *meth);
void *SSL_CTX_new_ex(void *libctx, const char *propq, const void *meth);

static int own_calls;

void *SSL_CTX_new(const void *meth)
{
    (void)meth;
    own_calls++;
    return &own_calls;
}

void *SSL_CTX_new_ex(void *libctx, const char *propq, const void *meth)
{
    (void)libctx;
    (void)propq;
    (void)meth;
    own_calls++;
    return &own_calls;
}
#endif

void vsyslog(int pri, const char *fmt, va_list ap)
{
    fprintf(stderr, "syslog: <%d> ", pri);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void syslog(int pri, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsyslog(pri, fmt, ap);
    va_end(ap);
}

void __vsyslog_chk(int pri, int flag, const char *fmt, va_list ap)
{
    (void)flag;
    vsyslog(pri, fmt, ap);
}

void __syslog_chk(int pri, int flag, const char *fmt, ...)
{
    va_list ap;

    (void)flag;
    va_start(ap, fmt);
    vsyslog(pri, fmt, ap);
    va_end(ap);
}

static int mapped(const char *soname)
{
    void *h = dlopen(soname, RTLD_LAZY | RTLD_NOLOAD);

    if (h == NULL)
        return 0;
    dlclose(h);
    return 1;
}

int main(void)
{
#ifdef WITHOUT_OWN_OPENSSL
    printf("no SSL_CTX_new of its own\n");
#else
    if (SSL_CTX_new(NULL) != &own_calls || SSL_CTX_new_ex(NULL, NULL, NULL) != &own_calls
        || own_calls != 2) {
        printf("own SSL_CTX_new NOT called\n");
        return 1;
    }
    printf("own SSL_CTX_new called\n");
#endif
    printf("libssl=%d libemsguard=%d\n", mapped("libssl.so.3"), mapped("libemsguard.so.0"));
    return 0;
}
