/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the session-flag reader, emsguard_der_session_flags(),
 * on arbitrary bytes (the corpus holds real i2d_SSL_SESSION encodings).
 *
 * Differential checks against libssl's own decoder: when d2i_SSL_SESSION()
 * accepts the input, the library must be able to tell the session's EMS
 * state (emsguard_session_ems() re-encodes it, so "unreadable" would refuse
 * a good session), and where it also reads the input itself it must read
 * the same EMS bit as from libssl's re-encoding.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include "oracles.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t flags = 0;
    int direct, ems, has_ems = -1;
    const unsigned char *p = data;
    SSL_SESSION *sess;
    unsigned char *copy;

    /* An exact-size copy, so a read past the end is caught at once. */
    if ((copy = malloc(size > 0 ? size : 1)) == NULL)
        abort();
    memcpy(copy, data, size);
    direct = emsguard_der_session_flags(copy, size, &flags);
    free(copy);
    if (size > LONG_MAX || (sess = d2i_SSL_SESSION(NULL, &p, (long)size)) == NULL) {
        ERR_clear_error();
        return 0;
    }
    ems = emsguard_session_ems(sess);
    if (fuzz_verbose())
        fprintf(stderr, "direct=%d flags=0x%llx ems=%d\n", direct,
            (unsigned long long)flags, ems);
    FUZZ_CHECK(ems == 0 || ems == 1,
        "libssl decodes the session, emsguard cannot read its flags (%d)", ems);
    FUZZ_CHECK(EMSGUARD_SESSION_has_ems(sess, &has_ems) && has_ems == ems,
        "EMSGUARD_SESSION_has_ems disagrees with emsguard_session_ems");
    /* The input itself, where it ends with the session libssl decoded. */
    if (direct && p == data + size)
        FUZZ_CHECK((int)(flags & 1) == ems,
            "flags read from the input (0x%llx) and from libssl's re-encoding "
            "disagree on EMS (%d)", (unsigned long long)flags, ems);
    SSL_SESSION_free(sess);
    ERR_clear_error();
    return 0;
}
