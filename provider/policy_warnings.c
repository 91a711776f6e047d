/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a loaded policy has to tell the administrator: the warnings its
 * sources produced while loading (names OpenSSL lacks, values read in an
 * unusual form), kept in the policy for `emsguard policy`, and the values
 * that weaken the default policy.  Below every loader, so that each of them
 * (policy.c, policy_names.c, reg_*.c) can add a warning.
 */
#include <stdio.h>
#include <string.h>
#include "internal.h"

void emsguard_policy_warn(EMSGUARD_POLICY *policy, const char *fmt, ...)
{
    size_t used = strlen(policy->warnings);
    va_list ap;
    int n;

    if (used + 2 >= sizeof(policy->warnings))
        return;
    va_start(ap, fmt);
    n = vsnprintf(policy->warnings + used, sizeof(policy->warnings) - used - 1, fmt, ap);
    va_end(ap);
    if (n < 0) {
        policy->warnings[used] = '\0';
        return;
    }
    used = strlen(policy->warnings);
    policy->warnings[used] = '\n';
    policy->warnings[used + 1] = '\0';
}

/*
 * The level a stored line names, and where that word is: lines read
 * "WHERE: warning: ..." or "WHERE: info: ...", WHERE being "file:line" or
 * empty.  A line that names none is a warning (nothing stored stops loading).
 */
static eg_level line_level(const char *line, int len, int *tag_at, int *tag_len)
{
    static const struct {
        const char *tag;
        eg_level level;
    } tags[] = { { "warning: ", EG_LEVEL_WARNING }, { "info: ", EG_LEVEL_INFO } };
    int i;
    size_t t;

    for (i = 0; i < len; i++) {
        if (i != 0 && (i < 2 || line[i - 2] != ':' || line[i - 1] != ' '))
            continue;
        for (t = 0; t < sizeof(tags) / sizeof(tags[0]); t++) {
            int n = (int)strlen(tags[t].tag);

            if (len - i >= n && strncmp(line + i, tags[t].tag, (size_t)n) == 0) {
                *tag_at = i;
                *tag_len = n;
                return tags[t].level;
            }
        }
    }
    *tag_at = *tag_len = 0;
    return EG_LEVEL_WARNING;
}

void emsguard_policy_log_warnings(const EMSGUARD_POLICY *policy)
{
    const char *p = policy->warnings;

    while (*p != '\0') {
        const char *nl = strchr(p, '\n');
        int len = nl != NULL ? (int)(nl - p) : (int)strlen(p), at, tag;
        eg_level level = line_level(p, len, &at, &tag);

        /* The level goes first, once: "emsguard: warning: FILE:4: Functions: ...". */
        emsguard_log(policy, level, "%.*s%.*s", at, p, len - at - tag, p + at + tag);
        p += len + (nl != NULL ? 1 : 0);
    }
}

void emsguard_policy_log_weakenings(const EMSGUARD_POLICY *policy,
    const char *source)
{
    if (policy->values[EG_KEY_ALLOW_LEGACY_RESUMPTION])
        emsguard_log(policy, EG_LEVEL_ERROR,
            "%s: AllowLegacyResumption=1: sessions without Extended Master "
            "Secret may be resumed (stock OpenSSL behaviour, CVE-2019-1318 "
            "exposure)", source);
    if (policy->values[EG_KEY_DISABLE_SERVER_EMS])
        emsguard_log(policy, EG_LEVEL_ERROR,
            "%s: DisableServerExtendedMasterSecret=1: the server role neither "
            "offers nor accepts Extended Master Secret", source);
    if (policy->values[EG_KEY_DISABLE_CLIENT_EMS])
        emsguard_log(policy, EG_LEVEL_ERROR,
            "%s: DisableClientExtendedMasterSecret=1: the client role neither "
            "offers nor accepts Extended Master Secret", source);
    if (!policy->values[EG_KEY_DISABLE_DHE_WITHOUT_EMS])
        emsguard_log(policy, EG_LEVEL_ERROR,
            "%s: DisableDHEWithoutExtendedMasterSecret=0: TLS_DHE_* may be "
            "negotiated with peers without EMS (intermittent bad_record_mac "
            "with stacks that mishandle DH leading zero bytes)", source);
    emsguard_policy_log_warnings(policy);
}
