/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal declarations shared by emsguard's source files, one header per
 * layer, each building on the one before: the policy, Schannel settings,
 * connection facts, the provider module.
 */
#ifndef EMSGUARD_INTERNAL_H
#define EMSGUARD_INTERNAL_H

#include "internal_policy.h"
#include "internal_schannel.h"
#include "internal_conn.h"
#include "internal_module.h"

#endif /* EMSGUARD_INTERNAL_H */
