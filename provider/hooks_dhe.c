/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DisableDHEWithoutExtendedMasterSecret: keeping TLS_DHE_* suites out of a
 * handshake without EMS, on the server (from the ClientHello callback) and
 * on a client that has EMS switched off (at handshake start).
 */
#include <stdio.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>
#include "hooks.h"

static int is_dhe(const SSL_CIPHER *c)
{
    int kx = SSL_CIPHER_get_kx_nid(c);

    return kx == NID_kx_dhe || kx == NID_kx_dhe_psk;
}

static int is_tls13_cipher(const SSL_CIPHER *c)
{
    return SSL_CIPHER_get_kx_nid(c) == NID_kx_any;
}

/* Could this server authenticate |c| with its current key? */
static int server_can_use(SSL *ssl, const SSL_CIPHER *c)
{
    EVP_PKEY *key = SSL_get_privatekey(ssl);

    switch (SSL_CIPHER_get_auth_nid(c)) {
    case NID_auth_rsa:
        return key != NULL && EVP_PKEY_is_a(key, "RSA");
    case NID_auth_ecdsa:
        return key != NULL && EVP_PKEY_is_a(key, "EC");
    case NID_auth_null:
    case NID_auth_psk:
        return 1;
    default:
        return 0; /* unsure: count it as not usable */
    }
}

/* Replaces |ssl|'s cipher list by the same list without TLS_DHE_*. */
int eg_drop_dhe(SSL *ssl)
{
    STACK_OF(SSL_CIPHER) *list = SSL_get_ciphers(ssl);
    char buf[4096] = "";
    size_t used = 0;
    int i, had_dhe = 0;

    for (i = 0; i < sk_SSL_CIPHER_num(list); i++) {
        const SSL_CIPHER *c = sk_SSL_CIPHER_value(list, i);
        const char *name = SSL_CIPHER_get_name(c);
        int n;

        if (is_dhe(c)) {
            had_dhe = 1;
            continue;
        }
        if (is_tls13_cipher(c))
            continue; /* kept by SSL_set_ciphersuites, not this list */
        n = snprintf(buf + used, sizeof(buf) - used, "%s%s", used > 0 ? ":" : "", name);
        if (n < 0 || (size_t)n >= sizeof(buf) - used)
            return 0;
        used += (size_t)n;
    }
    if (!had_dhe || used == 0)
        return 0;
    return SSL_set_cipher_list(ssl, buf);
}

/*
 * Server, ClientHello without EMS: steer away from TLS_DHE_* when the client
 * shares another suite we can use.  Stacks that mishandle a DH shared secret
 * with leading zero bytes fail 1 in 256 such handshakes with bad_record_mac.
 */
void eg_avoid_dhe_for_hello(struct eg_ctx_state *st, SSL *ssl)
{
    STACK_OF(SSL_CIPHER) *ours = SSL_get_ciphers(ssl);
    const unsigned char *ids;
    size_t len, i;
    int shared_dhe = 0, shared_other = 0;

    if ((len = SSL_client_hello_get0_ciphers(ssl, &ids)) == 0)
        return;
    for (i = 0; i + 1 < len; i += 2) {
        const SSL_CIPHER *c = SSL_CIPHER_find(ssl, ids + i);

        if (c == NULL || is_tls13_cipher(c) || sk_SSL_CIPHER_find(ours, (SSL_CIPHER *)c) < 0)
            continue;
        if (is_dhe(c))
            shared_dhe = 1;
        else if (server_can_use(ssl, c))
            shared_other = 1;
    }
    if (shared_dhe && shared_other && eg_drop_dhe(ssl))
        emsguard_log(&st->policy, EG_LEVEL_DEBUG,
            "server: ClientHello without EMS: TLS_DHE_* suites not selected");
}
