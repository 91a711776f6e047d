/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Logging, filtered by the Schannel EventLogging bitmask.  One line per
 * event, to stderr or syslog.  EMSGUARD_DEBUG=1 in the environment adds
 * debug lines; nothing secret is ever passed here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <openssl/crypto.h>
#include "internal.h"

static CRYPTO_ONCE debug_once = CRYPTO_ONCE_STATIC_INIT;
static int debug_enabled;

static void debug_init(void)
{
    const char *v = getenv("EMSGUARD_DEBUG");

    debug_enabled = v != NULL && *v != '\0' && strcmp(v, "0") != 0;
}

static const char *level_name(eg_level level)
{
    switch (level) {
    case EG_LEVEL_ERROR:
        return "error";
    case EG_LEVEL_WARNING:
        return "warning";
    case EG_LEVEL_INFO:
        return "info";
    default:
        return "debug";
    }
}

static int syslog_priority(eg_level level)
{
    switch (level) {
    case EG_LEVEL_ERROR:
        return LOG_ERR;
    case EG_LEVEL_WARNING:
        return LOG_WARNING;
    case EG_LEVEL_INFO:
        return LOG_INFO;
    default:
        return LOG_DEBUG;
    }
}

int emsguard_log_wanted(const EMSGUARD_POLICY *policy, eg_level level)
{
    uint32_t mask = policy != NULL ? policy->values[EG_KEY_EVENT_LOGGING]
                                   : EMSGUARD_LOG_ERRORS;

    if (level == EG_LEVEL_DEBUG) {
        CRYPTO_THREAD_run_once(&debug_once, debug_init);
        return debug_enabled;
    }
    return (mask & (uint32_t)level) != 0;
}

void emsguard_log(const EMSGUARD_POLICY *policy, eg_level level,
    const char *fmt, ...)
{
    int to_syslog = policy != NULL
        && policy->values[EG_KEY_LOG_TARGET] == EG_LOG_TO_SYSLOG;
    char msg[1024];
    va_list ap;

    if (!emsguard_log_wanted(policy, level))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* Leave the application's openlog() identity alone; tag the message. */
    if (to_syslog)
        syslog(syslog_priority(level), "emsguard: %s: %s", level_name(level), msg);
    else
        fprintf(stderr, "emsguard: %s: %s\n", level_name(level), msg);
}
