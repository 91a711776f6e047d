/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the libssl hooks print: one line per event with role, reason, peer
 * address and SNI (the address costs a system call, so it is read only
 * when the line is printed), the reason texts of the verdicts, and the
 * once-per-SSL_CTX warning that a setting of the application was
 * overridden to hold the policy's Schannel values.  The line writers are
 * cold: handshakes that log nothing keep their code dense.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <openssl/ssl.h>
#include "hooks.h"

const char *eg_reason_text(eg_verdict v)
{
    switch (v) {
    case EG_REFUSE_NO_EMS:
        return "reason=no-ems (session was established without Extended Master Secret)";
    case EG_REFUSE_EMS_DISABLED:
        return "reason=ems-disabled (session has Extended Master Secret, this role has it disabled)";
    case EG_REFUSE_UNREADABLE:
        return "reason=unreadable (session flags could not be read)";
    default:
        return "reason=none";
    }
}

/*
 * Cold and out of line: handshakes that log nothing keep their code dense.
 * The peer's address costs a system call, so only when the line is printed.
 */
__attribute__((cold, noinline)) void eg_log_event(struct eg_ctx_state *st, SSL *ssl,
    eg_level level, const char *event, const char *detail, const char *via)
{
    char peer[80], sni[256];

    if (!emsguard_log_wanted(&st->policy, level))
        return;
    emsguard_peer_address(SSL_get_rbio(ssl), peer, sizeof(peer));
    emsguard_sni_name(ssl, sni, sizeof(sni));
    emsguard_log(&st->policy, level, "role=%s %s %s via=%s peer=%s sni=%s",
        SSL_is_server(ssl) ? "server" : "client", event, detail, via, peer, sni);
}

/* Says once per ctx, for each EG_HELD_* bit in |what|, what had to be held. */
__attribute__((cold, noinline)) void eg_warn_held(struct eg_ctx_state *st,
    unsigned what, const char *detail)
{
    unsigned before = atomic_fetch_or_explicit(&st->hold_warned, what, memory_order_relaxed);
    unsigned bit;

    for (bit = 1; bit <= EG_HELD_LAST; bit <<= 1) {
        const char *text;

        if ((what & bit) == 0 || (before & bit) != 0)
            continue;
        switch (bit) {
        case EG_HELD_VERSIONS:
            text = "the protocol range was widened after EMSGUARD_enable() beyond the "
                   "policy's Protocols; the policy's range is applied to every connection "
                   "(a narrower range of the application is kept)";
            break;
        case EG_HELD_OPTIONS:
            text = "options the policy sets were changed after EMSGUARD_enable() "
                   "(renegotiation, server cipher preference, tickets); the policy's are "
                   "applied to every connection";
            break;
        case EG_HELD_SUITES:
            text = "the cipher suites were changed after EMSGUARD_enable() to include "
                   "suites the policy disables; they are never negotiated (the rest of "
                   "the application's list, in its order, is used)";
            break;
        case EG_HELD_GROUPS:
            text = "the groups were changed after EMSGUARD_enable() to include curves "
                   "outside the policy's EccCurves; they are never used";
            break;
        case EG_HELD_LATE_VERSION:
            text = "a protocol version outside the policy's Protocols was enabled on a "
                   "connection during its handshake; it is not negotiated";
            break;
        case EG_HELD_DH:
            text = "the server's DH group is below the policy's ServerMinKeyBitLength "
                   "(changed during the handshake); the handshake is refused";
            break;
        case EG_HELD_LIFETIME:
            text = "the session lifetime was raised after EMSGUARD_enable() above the "
                   "policy's ServerCacheTime; new sessions and tickets get the policy's";
            break;
        case EG_HELD_CACHE:
            text = "the server session cache was turned on after EMSGUARD_enable(), but "
                   "the policy has none (ServerCacheTime=0 or MaximumCacheSize=0); new "
                   "sessions are not cached (tickets only where the policy allows them)";
            break;
        case EG_HELD_CACHE_SIZE:
            text = "the server session cache was made larger than the policy's "
                   "MaximumCacheSize after EMSGUARD_enable(); its size cannot be changed "
                   "while connections run, so new sessions are not cached (tickets still "
                   "work)";
            break;
        case EG_HELD_VERIFY:
            text = "the verify callback was replaced after EMSGUARD_enable(); emsguard's "
                   "is put back on each connection and calls the SSL_CTX's first "
                   "(KeyExchangeAlgorithms\\PKCS MinKeyBitLength)";
            break;
        default: /* EG_HELD_NO_CALLBACK */
            text = "the security callback was replaced after EMSGUARD_enable() (or the "
                   "SSL was made before it); each connection's suites are set to its own "
                   "minus those the policy disables, and its groups to the policy's";
            break;
        }
        emsguard_log(&st->policy, EG_LEVEL_WARNING, "SSL_CTX setting overridden: %s%s%s%s",
            text, detail != NULL ? " (" : "", detail != NULL ? detail : "",
            detail != NULL ? ")" : "");
    }
}
