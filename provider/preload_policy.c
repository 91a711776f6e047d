/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Where the preload's policy comes from, and when it is read again: the
 * file EMSGUARD_CONF names, else the policy of the configuration the
 * process's OpenSSL loaded (libemsguard's EMSGUARD_POLICY_from_provider()),
 * else the defaults.  Decided at the first SSL_CTX, read again when an
 * emsguard provider was loaded or unloaded since; a policy that cannot be
 * read fails closed.
 */
#include <pthread.h>
#include <stdlib.h>
#include "preload_shared.h"

const char *config_file; /* NULL: the process's openssl.cnf */
/* SSL_CTXs this library enabled, for the message when the policy changes. */
unsigned long ctxs_enabled;

/*
 * The policy in force: replaced (policy_in_force()) when an emsguard
 * provider was loaded or unloaded since it was read, and never freed, so
 * that a thread enabling an SSL_CTX with the one before can finish (the
 * policies replaced stay on retired_policies: one per change of values).
 */
static EMSGUARD_POLICY *policy;
/* EMSGUARD_provider_generation() when |policy| was read. */
static uint64_t policy_generation;
static pthread_mutex_t redecide_lock = PTHREAD_MUTEX_INITIALIZER;
struct retired_policy {
    EMSGUARD_POLICY *policy;
    struct retired_policy *next;
};
static struct retired_policy *retired_policies;
/* The policy is decided at the first SSL_CTX (decide_policy()). */
static pthread_once_t policy_once = PTHREAD_ONCE_INIT;
static int policy_decided; /* written once, inside policy_once */

/*
 * Reads the policy into |into|: the file EMSGUARD_CONF names, else what
 * the process's OpenSSL loaded (the emsguard provider active in the default
 * library context; without one, the process's configuration file, where a
 * provider that is configured but failed to activate fails closed: see
 * EMSGUARD_POLICY_from_provider()).  0 with the reason on the error queue.
 */
static int read_policy(EMSGUARD_POLICY *into, int *found)
{
    int ok;

    in_emsguard++;
    ok = config_file != NULL ? eg.policy_from_config(into, config_file, found)
                             : eg.policy_from_provider(into, NULL, found);
    in_emsguard--;
    return ok;
}

/*
 * Once, after libssl made the process's first SSL_CTX: by then OpenSSL has
 * loaded the configuration the program chose (OPENSSL_INIT_set_config_filename()
 * or _appname() before its first SSL_CTX_new(), as Postfix's tls_config_file
 * and tls_config_name do), which need not be the default file.  Not in
 * init(), which can run at a dlopen() or dlsym() before the program's own
 * OpenSSL initialisation: asking OpenSSL for its providers there would make
 * it load the default file first, and ignore the program's choice for good.
 */
static void decide_policy(void)
{
    int found = 0;

    /* Read before the policy: a change while it is read is seen next time. */
    __atomic_store_n(&policy_generation, eg.provider_generation(), __ATOMIC_RELAXED);
    if ((policy = eg.policy_new()) == NULL || !read_policy(policy, &found)) {
        say("error: invalid configuration; every SSL_CTX_new() will fail:");
        print_errors();
        return;
    }
    policy_decided = 1;
    if (debug_enabled())
        say("debug: policy from %s", found ? (config_file != NULL ? config_file
                                                                  : "openssl.cnf")
                                           : "built-in defaults");
}

int have_policy(void)
{
    pthread_once(&policy_once, decide_policy);
    return policy_decided;
}

/* The Require value of |p|, for the message below. */
static uint32_t require_of(const EMSGUARD_POLICY *p)
{
    uint32_t v = 0;

    return eg.policy_get_dword(p, "RequireExtendedMasterSecret", &v) ? v : 0;
}

/*
 * An emsguard provider was loaded or unloaded since |policy| was read (a
 * program that loads its configuration after a first SSL_CTX, with
 * CONF_modules_load_file() or OSSL_PROVIDER_load()): read it again, under
 * the lock.  The SSL_CTXs made before keep theirs (emsguard refuses to
 * enable an SSL_CTX a second time with other values): said once per
 * change, loudly.  Returns the policy in force, or NULL with the reason on
 * the error queue (every SSL_CTX_new() then fails until it can be read).
 */
static EMSGUARD_POLICY *redecide_policy(void)
{
    static int read_failure_said;
    EMSGUARD_POLICY *fresh, *old, *current;
    struct retired_policy *r;
    uint64_t generation;
    unsigned long earlier;
    int found = 0;

    pthread_mutex_lock(&redecide_lock);
    old = __atomic_load_n(&policy, __ATOMIC_ACQUIRE);
    generation = eg.provider_generation();
    if (generation == __atomic_load_n(&policy_generation, __ATOMIC_ACQUIRE)) {
        pthread_mutex_unlock(&redecide_lock); /* another thread did it */
        return old;
    }
    if ((fresh = eg.policy_new()) == NULL || !read_policy(fresh, &found)) {
        if (!read_failure_said) {
            read_failure_said = 1;
            say_loud("error: an emsguard provider was loaded or unloaded after this process "
                     "made its first SSL_CTX, and the policy cannot be read again; every "
                     "SSL_CTX_new() fails until it can:");
            print_errors();
            if (fresh != NULL) /* the reason again, on this caller's queue */
                (void)read_policy(fresh, &found);
        }
        pthread_mutex_unlock(&redecide_lock);
        eg.policy_free(fresh);
        return NULL;
    }
    if (eg.policy_equal(fresh, old)) {
        eg.policy_free(fresh);
        current = old;
    } else if ((r = malloc(sizeof(*r))) == NULL) {
        pthread_mutex_unlock(&redecide_lock);
        eg.policy_free(fresh);
        say_loud("error: the emsguard policy changed and there is no memory to keep the "
                 "new one; SSL_CTX_new() fails");
        return NULL;
    } else {
        r->policy = old;
        r->next = retired_policies;
        retired_policies = r;
        __atomic_store_n(&policy, fresh, __ATOMIC_RELEASE);
        current = fresh;
        earlier = __atomic_load_n(&ctxs_enabled, __ATOMIC_RELAXED);
        say_loud("warning: the emsguard policy changed after this process made SSL_CTXs "
                 "(an emsguard provider was loaded or unloaded; now from %s): SSL_CTXs made "
                 "from now on get it, the %lu made before keep the policy they got, which "
                 "is weaker if the new one is stricter%s",
            found ? "the emsguard provider active in the default library context"
                  : "the built-in defaults",
            earlier,
            require_of(old) < require_of(fresh)
                ? "; those earlier SSL_CTXs do NOT require Extended Master Secret "
                  "(RequireExtendedMasterSecret=1 now)"
                : "");
    }
    __atomic_store_n(&policy_generation, generation, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&redecide_lock);
    return current;
}

/*
 * The policy for an SSL_CTX made now.  EMSGUARD_CONF's is fixed; the
 * provider's is read again only when an emsguard provider was initialised
 * or torn down since: one atomic load in libemsguard per SSL_CTX_new().
 */
EMSGUARD_POLICY *policy_in_force(void)
{
    if (config_file != NULL
        || eg.provider_generation() == __atomic_load_n(&policy_generation, __ATOMIC_ACQUIRE))
        return __atomic_load_n(&policy, __ATOMIC_ACQUIRE);
    return redecide_policy();
}

/* The policy could not be read: its reason again, on this caller's error queue. */
void raise_policy_error(void)
{
    EMSGUARD_POLICY *scratch = eg.policy_new();
    int found;

    if (scratch != NULL)
        (void)read_policy(scratch, &found);
    eg.policy_free(scratch);
}
