/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A stand-in for "a libssl that is not OpenSSL 3" (Debian 12 ships no other
 * libssl), built by test/preload.sh as libssl.so.1.1.  It exports the two
 * entry points libemsguard-preload.so interposes and a version function that
 * says 1; libemsguard-preload.so must forward to it untouched and say once
 * that the policy is not applied.
 */
#include <stddef.h>

void *SSL_CTX_new(const void *meth);
void *SSL_CTX_new_ex(void *libctx, const char *propq, const void *meth);
unsigned int OPENSSL_version_major(void);

#define FAKE_CTX ((void *)0x5eed)

void *SSL_CTX_new(const void *meth)
{
    (void)meth;
    return FAKE_CTX;
}

void *SSL_CTX_new_ex(void *libctx, const char *propq, const void *meth)
{
    (void)libctx;
    (void)propq;
    (void)meth;
    return FAKE_CTX;
}

unsigned int OPENSSL_version_major(void)
{
    return 1;
}
