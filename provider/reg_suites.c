/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The two registry cipher-suite lists and Schannel's precedence between
 * them.  Windows keeps its own order under ...\Cryptography\Configuration\
 * Local\SSL\00010002 (Functions, the list Enable-TlsCipherSuite and
 * Disable-TlsCipherSuite edit); the group-policy list under
 * SOFTWARE\Policies\...\SSL\00010002 overrides it whenever it is present.
 * An export may carry either or both, in any order, so the local list is
 * held until the file ends and stored as Functions only if no group-policy
 * list is in force then.
 */
#include <stdio.h>
#include <string.h>
#include "internal.h"
#include "reg_parser.h"

/* Functions holds |list|, read from a .reg file. */
static int functions_from(const EMSGUARD_POLICY *p, eg_suite_list list)
{
    return p->set[EG_KEY_FUNCTIONS] && p->source[EG_KEY_FUNCTIONS].kind == EG_SRC_REG
        && p->functions_list == list;
}

void emsguard_reg_policy_list_stored(struct reg_parser *rp)
{
    rp->policy->functions_list = EG_LIST_POLICY;
}

void emsguard_reg_hold_local_list(struct reg_parser *rp, unsigned long lineno,
    const char *list)
{
    snprintf(rp->local_functions, sizeof(rp->local_functions), "%s", list);
    rp->local_line = lineno;
}

void emsguard_reg_suite_list_deleted(struct reg_parser *rp, int local)
{
    EMSGUARD_POLICY *p = rp->policy;
    int from_local = functions_from(p, EG_LIST_LOCAL);

    if (local) {
        rp->local_line = 0;
        rp->local_functions[0] = '\0';
        p->local_list_at[0] = '\0';
    }
    /* The group-policy key's deletion also forgets an openssl.cnf or API list, as before. */
    if (local ? from_local : !from_local)
        emsguard_policy_unset(p, EG_KEY_FUNCTIONS);
}

int emsguard_reg_settle_suite_lists(struct reg_parser *rp)
{
    EMSGUARD_POLICY *p = rp->policy;
    char where[600];

    if (rp->local_line == 0)
        return 1;
    snprintf(p->local_list_at, sizeof(p->local_list_at), "%s:%lu", rp->name, rp->local_line);
    if (functions_from(p, EG_LIST_POLICY)) {
        const eg_source *s = &p->source[EG_KEY_FUNCTIONS];

        emsguard_policy_warn(p,
            "%s:%lu: info: Functions under [...\\Local\\SSL\\00010002] not used: the "
            "group-policy list (%s:%lu) overrides it, as in Schannel",
            rp->name, rp->local_line, p->files[s->file], (unsigned long)s->line);
        return 1;
    }
    snprintf(where, sizeof(where), "%s:%lu: ", rp->name, rp->local_line);
    if (!emsguard_policy_store(p, EG_KEY_FUNCTIONS, rp->local_functions, EG_SRC_REG,
            rp->name, (uint32_t)rp->local_line, where))
        return 0;
    p->functions_list = EG_LIST_LOCAL;
    return 1;
}
