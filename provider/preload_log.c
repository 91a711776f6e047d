/* SPDX-License-Identifier: Apache-2.0 */
/*
 * How libemsguard-preload.so speaks: on stderr, and for what must not go
 * unnoticed (the policy not applied, refused, changed) in syslog too, since
 * a preloaded daemon's stderr is often nowhere.  Calls nothing of ours.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include "preload_shared.h"

#define LOG_PREFIX "emsguard-preload: "

void say(const char *fmt, ...)
{
    va_list ap;

    fputs(LOG_PREFIX, stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* An error that must not go unnoticed: stderr and syslog. */
void say_loud(const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    say("%s", msg);
    syslog(LOG_ERR, LOG_PREFIX "%s", msg);
}

int debug_enabled(void)
{
    const char *v = getenv("EMSGUARD_DEBUG");

    return v != NULL && *v != '\0' && strcmp(v, "0") != 0;
}
