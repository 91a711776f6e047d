/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Calls SSL_CTX_new() twice, found at run time (dlsym), and prints what it
 * got.  test/preload.sh builds it twice: linked against fake_libssl.c's
 * libssl.so.1.1 (a libssl that is not OpenSSL 3), and linked against no
 * libssl at all (then the only SSL_CTX_new in the process is the one in
 * libemsguard-preload.so).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    void *(*ctx_new)(const void *);
    void *sym = dlsym(RTLD_DEFAULT, "SSL_CTX_new");
    int i;

    if (sym == NULL) {
        printf("no SSL_CTX_new\n");
        return 0;
    }
    memcpy(&ctx_new, &sym, sizeof(ctx_new));
    for (i = 0; i < 2; i++)
        printf("ctx=%p\n", ctx_new(NULL));
    return 0;
}
