/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The buggy DHE peer (see dhe_buggy.h): EVP_PKEY_derive interposed for one
 * library context.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <openssl/dh.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include "dhe_buggy.h"

typedef int (*derive_fn)(EVP_PKEY_CTX *ctx, unsigned char *key, size_t *keylen);

static derive_fn real_derive;
static pthread_once_t real_once = PTHREAD_ONCE_INIT;
static OSSL_LIB_CTX *_Atomic buggy_libctx;
static atomic_int keep_zeros = 1;
static atomic_ulong n_derivations, n_leading_zero;
static EVP_PKEY *buggy_key;
static X509 *buggy_cert;

static void find_real_derive(void)
{
    /* POSIX allows this conversion for dlsym results. */
    real_derive = (derive_fn)dlsym(RTLD_NEXT, "EVP_PKEY_derive");
}

/*
 * Every EVP_PKEY_derive call of the process lands here (libssl's included,
 * because the executable exports this definition).
 */
int EVP_PKEY_derive(EVP_PKEY_CTX *ctx, unsigned char *key, size_t *keylen)
{
    OSSL_LIB_CTX *target = atomic_load(&buggy_libctx);
    int watched, ret;

    pthread_once(&real_once, find_real_derive);
    if (real_derive == NULL)
        return -2; /* "not supported": the caller fails cleanly */
    /* key == NULL only asks for the length: nothing to change or count. */
    watched = target != NULL && key != NULL && ctx != NULL
        && EVP_PKEY_CTX_get0_libctx(ctx) == target && EVP_PKEY_CTX_is_a(ctx, "DH");
    if (!watched)
        return real_derive(ctx, key, keylen);
    /* Padding to the prime's length is the bug: RFC 5246 strips the zeros. */
    if (atomic_load(&keep_zeros) && EVP_PKEY_CTX_set_dh_pad(ctx, 1) <= 0)
        return 0;
    if ((ret = real_derive(ctx, key, keylen)) <= 0)
        return ret;
    atomic_fetch_add(&n_derivations, 1);
    /*
     * Padded, a leading zero is visible; stripped (observe mode), it shows
     * as a secret shorter than the prime.
     */
    if (*keylen > 0 && (key[0] == 0
            || *keylen < (size_t)EVP_PKEY_get_size(EVP_PKEY_CTX_get0_pkey(ctx))))
        atomic_fetch_add(&n_leading_zero, 1);
    return ret;
}

int dhe_buggy_init(void)
{
    OSSL_LIB_CTX *libctx;
    void *in_use;

    if (atomic_load(&buggy_libctx) != NULL)
        return 1;
    pthread_once(&real_once, find_real_derive);
    in_use = dlsym(RTLD_DEFAULT, "EVP_PKEY_derive");
    if (real_derive == NULL || in_use != (void *)EVP_PKEY_derive
        || (void *)real_derive == in_use) {
        fprintf(stderr, "dhe_buggy: EVP_PKEY_derive is not interposed "
                        "(link the executable with "
                        "-Wl,--export-dynamic-symbol=EVP_PKEY_derive)\n");
        return 0;
    }
    if ((libctx = OSSL_LIB_CTX_new()) == NULL)
        return 0;
    if (!dhe_rsa_credentials(libctx, 1024, &buggy_key, &buggy_cert)) {
        OSSL_LIB_CTX_free(libctx);
        return 0;
    }
    atomic_store(&n_derivations, 0);
    atomic_store(&n_leading_zero, 0);
    atomic_store(&buggy_libctx, libctx);
    return 1;
}

OSSL_LIB_CTX *dhe_buggy_libctx(void)
{
    return atomic_load(&buggy_libctx);
}

void dhe_buggy_set_keep_zeros(int on)
{
    atomic_store(&keep_zeros, on != 0);
}

void dhe_buggy_get_stats(dhe_buggy_stats *stats)
{
    stats->derivations = atomic_load(&n_derivations);
    stats->leading_zero = atomic_load(&n_leading_zero);
}

int dhe_rsa_credentials(OSSL_LIB_CTX *libctx, int bits, EVP_PKEY **key,
    X509 **cert)
{
    X509_NAME *name;

    *cert = NULL;
    if ((*key = EVP_PKEY_Q_keygen(libctx, NULL, "RSA", (size_t)bits)) == NULL
        || (*cert = X509_new_ex(libctx, NULL)) == NULL)
        goto err;
    name = X509_get_subject_name(*cert);
    if (X509_set_version(*cert, 2)
        && ASN1_INTEGER_set(X509_get_serialNumber(*cert), 1)
        && X509_gmtime_adj(X509_getm_notBefore(*cert), -3600)
        && X509_gmtime_adj(X509_getm_notAfter(*cert), 86400)
        && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
               (const unsigned char *)"emsguard-dhe-test", -1, -1, 0)
        && X509_set_issuer_name(*cert, name)
        && X509_set_pubkey(*cert, *key)
        && X509_sign(*cert, *key, EVP_sha256()) > 0)
        return 1;
err:
    X509_free(*cert);
    EVP_PKEY_free(*key);
    *cert = NULL;
    *key = NULL;
    return 0;
}

SSL_CTX *dhe_buggy_ctx(int server)
{
    OSSL_LIB_CTX *libctx = atomic_load(&buggy_libctx);
    SSL_CTX *ctx;

    if (libctx == NULL
        || (ctx = SSL_CTX_new_ex(libctx, NULL,
                server ? TLS_server_method() : TLS_client_method())) == NULL)
        return NULL;
    SSL_CTX_set_security_level(ctx, 1);
    SSL_CTX_set_options(ctx, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)
        || !SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION)
        || !SSL_CTX_set_cipher_list(ctx, DHE_BUGGY_CIPHERS))
        goto err;
    if (server) {
        SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
        if (SSL_CTX_use_certificate(ctx, buggy_cert) != 1
            || SSL_CTX_use_PrivateKey(ctx, buggy_key) != 1
            || !SSL_CTX_set_dh_auto(ctx, 1))
            goto err;
    }
    return ctx;
err:
    SSL_CTX_free(ctx);
    return NULL;
}

void dhe_buggy_cleanup(void)
{
    OSSL_LIB_CTX *libctx = atomic_exchange(&buggy_libctx, NULL);

    X509_free(buggy_cert);
    EVP_PKEY_free(buggy_key);
    buggy_cert = NULL;
    buggy_key = NULL;
    OSSL_LIB_CTX_free(libctx);
}
