/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The policy's rules, one function each: every hook, the TLS1-PRF guard and
 * the provider ask these instead of reading the keys themselves, so that a
 * rule is decided in one place (docs/enforcement.md points here).  Pure
 * functions of the policy and their arguments: no I/O, no allocation.
 */
#include "internal.h"

int emsguard_role_uses_ems(const EMSGUARD_POLICY *policy, eg_role role)
{
    eg_key k = role == EG_ROLE_SERVER ? EG_KEY_DISABLE_SERVER_EMS
                                      : EG_KEY_DISABLE_CLIENT_EMS;

    return policy->values[k] == 0;
}

eg_verdict emsguard_resumption_verdict(const EMSGUARD_POLICY *policy,
    eg_role role, int session_ems)
{
    if (session_ems < 0)
        return EG_REFUSE_UNREADABLE;
    if (!emsguard_role_uses_ems(policy, role))
        /*
         * Schannel's legacy mode: this role does no EMS, so an EMS session
         * cannot be resumed consistently; give it a full handshake rather
         * than the abort stock OpenSSL produces.
         */
        return session_ems ? EG_REFUSE_EMS_DISABLED : EG_ALLOW;
    if (!session_ems && !policy->values[EG_KEY_ALLOW_LEGACY_RESUMPTION])
        return EG_REFUSE_NO_EMS;
    return EG_ALLOW;
}


int emsguard_policy_requires_ems(const EMSGUARD_POLICY *policy, eg_role role)
{
    if (!policy->values[EG_KEY_REQUIRE_EMS])
        return 0;
    /*
     * A derivation (the TLS1-PRF guard) has no role: RequireExtendedMasterSecret=1
     * refuses every master secret without EMS there, whatever the roles'
     * Disable*ExtendedMasterSecret say.
     */
    if (role == EG_ROLE_UNKNOWN)
        return 1;
    /*
     * A role that does no EMS (Disable*ExtendedMasterSecret=1, Schannel's
     * legacy mode) cannot require it: the requirement does not bind it.
     */
    return emsguard_role_uses_ems(policy, role);
}

int emsguard_policy_drops_dhe(const EMSGUARD_POLICY *policy, eg_role role,
    int ems_off)
{
    /*
     * The same for both roles: some stacks computed the DHE premaster
     * secret without stripping its leading zero bytes (about one full DHE
     * handshake in 256 fails with bad_record_mac); the knowledge base's
     * advice is to avoid DHE with peers that do not use EMS (README, "DHE
     * and peers without EMS").  A server steers away from DHE, a client
     * does not offer it.
     */
    (void)role;
    return ems_off && policy->values[EG_KEY_DISABLE_DHE_WITHOUT_EMS] != 0;
}
