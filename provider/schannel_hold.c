/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Holding the Schannel values on every connection, whatever the application
 * sets on the SSL_CTX or the SSL after EMSGUARD_enable(): the state built
 * once at enable (struct eg_schannel_hold), what is put back at handshake
 * start, the security-callback answers, and the check of a session offered
 * for resumption.  See internal.h for the contract; the per-handshake paths
 * allocate nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include "internal.h"

/*
 * Options the policy sets (clears) as a restriction: put back on a
 * connection whatever the application did.  The others (AllowInsecureRenego*
 * = 1, DisableRenego* = 0) loosen OpenSSL's default; an application that
 * changes them back only restricts, and keeps its choice.
 */
#define HOLD_SET_MASK (SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE \
    | SSL_OP_NO_TICKET | SSL_OP_NO_SSL_MASK | SSL_OP_NO_DTLS_MASK)
#define HOLD_CLEAR_MASK (SSL_OP_ALLOW_UNSAFE_LEGACY_RENEGOTIATION | SSL_OP_LEGACY_SERVER_CONNECT)

/* TLS IDs of the curves EccCurves can name (curve_names). */
static const struct {
    const char *name;
    uint16_t id;
} group_ids[] = {
    { "X25519", 0x001d }, { "X448", 0x001e }, { "P-256", 0x0017 },
    { "P-384", 0x0018 }, { "P-521", 0x0019 },
};

static int cmp_u16(const void *a, const void *b)
{
    uint16_t x = *(const uint16_t *)a, y = *(const uint16_t *)b;

    return (x > y) - (x < y);
}

static int has_u16(const uint16_t *set, size_t n, uint16_t v)
{
    return bsearch(&v, set, n, sizeof(v), cmp_u16) != NULL;
}

static int is_tls13_suite(const SSL_CIPHER *c)
{
    return SSL_CIPHER_get_kx_nid(c) == NID_kx_any;
}

/* The suites the policy's lists give on |ctx|: what an SSL of it gets. */
static int hold_suites(const struct eg_role_cfg *c, SSL_CTX *ctx, struct eg_schannel_hold *h)
{
    SSL *ssl = SSL_new(ctx);
    STACK_OF(SSL_CIPHER) *sk;
    int i, ok = 0;

    if (ssl == NULL) {
        emsguard_raise(ERR_R_MALLOC_FAILURE, "cannot allocate an SSL to read the policy's suites");
        return 0;
    }
    if (c->ciphers[0] != '\0' && !SSL_set_cipher_list(ssl, c->ciphers)) {
        emsguard_schannel_refused("the cipher list", c->ciphers);
        goto end;
    }
    if (c->suites_touched && !SSL_set_ciphersuites(ssl, c->suites)) {
        emsguard_schannel_refused("the TLS 1.3 cipher suites", c->suites);
        goto end;
    }
    sk = SSL_get_ciphers(ssl);
    for (i = 0; i < sk_SSL_CIPHER_num(sk); i++) {
        const SSL_CIPHER *s = sk_SSL_CIPHER_value(sk, i);

        if (is_tls13_suite(s) ? !h->tls13_held : !h->tls12_held)
            continue;
        if (h->n_ciphers == EG_HOLD_MAX_CIPHERS) {
            emsguard_raise(EMSGUARD_R_OUT_OF_RANGE, "the policy's cipher lists give more "
                "than %d suites", EG_HOLD_MAX_CIPHERS);
            goto end;
        }
        h->ciphers[h->n_ciphers++] = SSL_CIPHER_get_protocol_id(s);
    }
    qsort(h->ciphers, h->n_ciphers, sizeof(h->ciphers[0]), cmp_u16);
    ok = 1;
end:
    SSL_free(ssl);
    return ok;
}

static void hold_groups(const char *groups, struct eg_schannel_hold *h)
{
    size_t i;

    for (i = 0; i < sizeof(group_ids) / sizeof(group_ids[0]); i++)
        if (emsguard_list_has(groups, group_ids[i].name) && h->n_groups < EG_HOLD_MAX_GROUPS)
            h->groups[h->n_groups++] = group_ids[i].id;
    qsort(h->groups, h->n_groups, sizeof(h->groups[0]), cmp_u16);
}

/*
 * The ffdhe groups larger than the policy's, so that a connection whose
 * application (or libssl's automatic choice) would use a larger group than
 * ServerMinKeyBitLength keeps one at least as large: made once at enable,
 * a reference count per handshake.
 */
static int hold_larger_dh(struct eg_schannel_hold *h)
{
    uint32_t bits = (uint32_t)EVP_PKEY_get_bits(h->server_dh);
    size_t n = 0;

    while (bits < 8192 && n < sizeof(h->server_dh_larger) / sizeof(h->server_dh_larger[0])) {
        EVP_PKEY *dh = emsguard_schannel_ffdhe_at_least(bits + 1);

        if (dh == NULL)
            return 0;
        h->server_dh_larger[n++] = dh;
        bits = (uint32_t)EVP_PKEY_get_bits(dh);
    }
    return 1;
}

/*
 * The DH group size libssl's automatic choice gives |ssl| (t1_lib.c
 * ssl_get_auto_dh, dh_tmp_auto 1: the certificate key's security bits, at
 * least the security level's).  The SSL's current key stands for the
 * certificate libssl will pick (DHE needs RSA or DSA; a larger guess only
 * makes the group larger).  libssl gives no getter for dh_auto itself, so
 * this is what the server may have been going to use.
 */
static uint32_t auto_dh_bits(const SSL *ssl)
{
    static const int level_bits[] = { 0, 80, 112, 128, 192, 256 };
    EVP_PKEY *key = SSL_get_privatekey(ssl);
    int secbits = key != NULL ? EVP_PKEY_get_security_bits(key) : 80;
    int level = SSL_get_security_level(ssl);

    if (level > 5)
        level = 5;
    if (level > 0 && secbits < level_bits[level])
        secbits = level_bits[level];
    return secbits >= 192 ? 8192 : secbits >= 152 ? 4096 : secbits >= 128 ? 3072
        : secbits >= 112 ? 2048 : 1024;
}

/* The held ffdhe group of at least |bits| (the largest if none is). */
static EVP_PKEY *held_dh_at_least(const struct eg_schannel_hold *h, uint32_t bits)
{
    EVP_PKEY *dh = h->server_dh;
    size_t i;

    for (i = 0; i < sizeof(h->server_dh_larger) / sizeof(h->server_dh_larger[0])
         && (uint32_t)EVP_PKEY_get_bits(dh) < bits && h->server_dh_larger[i] != NULL; i++)
        dh = h->server_dh_larger[i];
    return dh;
}

int emsguard_schannel_hold_init(const EMSGUARD_POLICY *p, SSL_CTX *ctx, int per_ssl,
    struct eg_schannel_hold *h)
{
    struct eg_role_cfg c;
    int role;

    memset(h, 0, sizeof(*h));
    if (!emsguard_schannel_any(p))
        return 1;
    for (role = EG_ROLE_CLIENT; role <= EG_ROLE_SERVER; role++) {
        uint64_t set, clear;

        emsguard_schannel_role_config(p, role, &c);
        h->role[role].tls = (struct eg_hold_range) { c.versions_touched, c.min_version,
            c.max_version };
        h->role[role].dtls = (struct eg_hold_range) { c.dtls_touched, c.dtls_min, c.dtls_max };
        set = c.opts_set;
        clear = c.opts_clear;
        if (c.versions_touched && c.min_version == 0)
            set |= SSL_OP_NO_SSL_MASK;
        if (c.dtls_touched && c.dtls_min == 0)
            set |= SSL_OP_NO_DTLS_MASK;
        if (role == EG_ROLE_SERVER && emsguard_policy_is_set(p, EG_KEY_SERVER_CACHE_TIME)
            && p->values[EG_KEY_SERVER_CACHE_TIME] == 0)
            set |= SSL_OP_NO_TICKET;
        /*
         * Only restrictions are put back on every connection.  A both-roles
         * ctx got none of the role's options at enable: the loosening ones
         * go on a connection only while the application has not chosen
         * (emsguard_schannel_hold_ssl), never over its own restriction.
         */
        h->role[role].opts_set = set & HOLD_SET_MASK;
        h->role[role].opts_clear = clear & HOLD_CLEAR_MASK;
        if (per_ssl) {
            h->role[role].loosen_set = set & ~(uint64_t)HOLD_SET_MASK;
            h->role[role].loosen_clear = clear & ~(uint64_t)HOLD_CLEAR_MASK;
        }
        if (c.versions_touched || c.dtls_touched)
            h->filter = 1; /* versions changed during the handshake */
        if (c.versions_touched || c.dtls_touched || h->role[role].opts_set
            || h->role[role].opts_clear || h->role[role].loosen_set
            || h->role[role].loosen_clear)
            h->active = 1;
    }
    h->opts_at_enable = SSL_CTX_get_options(ctx);
    /* Suites and groups: the same for both roles (c is the server's now). */
    h->tls12_held = c.ciphers[0] != '\0';
    h->tls13_held = c.suites_touched;
    if ((h->tls12_held || h->tls13_held) && !hold_suites(&c, ctx, h))
        return 0;
    if (c.groups != NULL)
        hold_groups(c.groups, h);
    if (h->tls12_held || h->tls13_held || h->n_groups > 0)
        h->active = h->filter = 1;
    if (emsguard_policy_is_set(p, EG_KEY_K_DH_SERVER_MIN)
        && p->values[EG_KEY_K_DH_SERVER_MIN] > 0) {
        h->server_dh_min = p->values[EG_KEY_K_DH_SERVER_MIN];
        if ((h->server_dh = emsguard_schannel_ffdhe_at_least(h->server_dh_min)) == NULL)
            return emsguard_schannel_refused("the DH group for ServerMinKeyBitLength", "ffdhe");
        if (!hold_larger_dh(h))
            return emsguard_schannel_refused("the DH groups above ServerMinKeyBitLength", "ffdhe");
        h->active = h->filter = 1;
    }
    /* PKCS MinKeyBitLength: emsguard's verify callback must stay the SSL's. */
    if (emsguard_schannel_min_bits(p, EG_KEY_K_PKCS_CLIENT_MIN) > 0
        || emsguard_schannel_min_bits(p, EG_KEY_K_PKCS_SERVER_MIN) > 0)
        h->active = 1;
    if (emsguard_policy_is_set(p, EG_KEY_SERVER_CACHE_TIME)) {
        uint32_t ms = p->values[EG_KEY_SERVER_CACHE_TIME];

        if (ms == 0)
            h->server_cache_off = 1;
        else
            h->server_lifetime = (long)((ms + 999) / 1000);
        h->active = 1;
    }
    if (emsguard_policy_is_set(p, EG_KEY_MAX_CACHE_SIZE)) {
        if (p->values[EG_KEY_MAX_CACHE_SIZE] == 0)
            h->server_cache_off = 1;
        else
            h->server_cache_max = (long)p->values[EG_KEY_MAX_CACHE_SIZE];
        h->active = 1;
    }
    return 1;
}

void emsguard_schannel_hold_clear(struct eg_schannel_hold *h)
{
    size_t i;

    EVP_PKEY_free(h->server_dh);
    h->server_dh = NULL;
    for (i = 0; i < sizeof(h->server_dh_larger) / sizeof(h->server_dh_larger[0]); i++) {
        EVP_PKEY_free(h->server_dh_larger[i]);
        h->server_dh_larger[i] = NULL;
    }
}

/* Order of versions: DTLS numbers decrease, DTLS1_BAD_VER is the oldest. */
static int version_rank(int v, int dtls)
{
    if (!dtls)
        return v;
    return v == DTLS1_BAD_VER ? 0 : 0x10000 - v;
}

void emsguard_schannel_no_version(SSL *ssl)
{
    int dtls = SSL_is_dtls(ssl);

    /* A minimum above the maximum: libssl finds no version to offer or accept. */
    SSL_set_min_proto_version(ssl, dtls ? DTLS1_2_VERSION : TLS1_3_VERSION);
    SSL_set_max_proto_version(ssl, dtls ? DTLS1_VERSION : SSL3_VERSION);
    SSL_set_options(ssl, SSL_OP_NO_SSL_MASK | SSL_OP_NO_DTLS_MASK);
}

/* The SSL's range intersected with the policy's. */
static unsigned hold_versions(SSL *ssl, const struct eg_hold_range *r, int dtls)
{
    int min = (int)SSL_get_min_proto_version(ssl), max = (int)SSL_get_max_proto_version(ssl);
    int want_min, want_max;

    if (r->min == 0) {
        /* Every version disabled; the options (HOLD_SET_MASK) say so too. */
        want_min = dtls ? DTLS1_2_VERSION : TLS1_3_VERSION;
        want_max = dtls ? DTLS1_VERSION : SSL3_VERSION;
    } else {
        want_min = min == 0 || version_rank(min, dtls) < version_rank(r->min, dtls) ? r->min : min;
        want_max = max == 0 || version_rank(max, dtls) > version_rank(r->max, dtls) ? r->max : max;
    }
    if (want_min == min && want_max == max)
        return 0;
    /* An application minimum above the policy's maximum: nothing left, fails. */
    SSL_set_min_proto_version(ssl, want_min);
    SSL_set_max_proto_version(ssl, want_max);
    return EG_HELD_VERSIONS;
}

unsigned emsguard_schannel_hold_ssl(const struct eg_schannel_hold *h, int role, SSL *ssl)
{
    int dtls = SSL_is_dtls(ssl);
    const struct eg_hold_range *r = dtls ? &h->role[role].dtls : &h->role[role].tls;
    uint64_t set = h->role[role].opts_set, clear = h->role[role].opts_clear;
    unsigned fixed = 0;

    if (r->touched)
        fixed |= hold_versions(ssl, r, dtls);
    if ((set | clear) != 0) {
        uint64_t o = SSL_get_options(ssl);

        if ((o & set) != set || (o & clear) != 0) {
            SSL_clear_options(ssl, clear);
            SSL_set_options(ssl, set);
            fixed |= EG_HELD_OPTIONS;
        }
    }
    if ((h->role[role].loosen_set | h->role[role].loosen_clear) != 0) {
        uint64_t o = SSL_get_options(ssl);
        /* Bits still as at enable: the application (ctx or SSL) has not chosen. */
        uint64_t untouched = ~(o ^ h->opts_at_enable);

        SSL_clear_options(ssl, h->role[role].loosen_clear & untouched);
        SSL_set_options(ssl, h->role[role].loosen_set & untouched);
    }
    /*
     * The server's DH group: no getter tells what the application set
     * (s_server turns SSL_CTX_set_dh_auto on after SSL_CTX_new), so the
     * policy's group goes on every server connection: an atomic reference
     * count, no allocation.
     */
    if (role == EG_ROLE_SERVER && h->server_dh != NULL) {
        /*
         * Never smaller than what the server may have used: the group the
         * application set on the ctx after enable (security_cb notes its
         * size), or libssl's automatic choice.
         */
        uint32_t want = auto_dh_bits(ssl),
            app = atomic_load_explicit(&h->app_dh_bits, memory_order_relaxed);
        EVP_PKEY *dh = held_dh_at_least(h, want > app ? want : app);

        ERR_set_mark();
        SSL_set_dh_auto(ssl, 0);
        if (EVP_PKEY_up_ref(dh) && !SSL_set0_tmp_dh_pkey(ssl, dh))
            EVP_PKEY_free(dh);
        ERR_pop_to_mark();
    }
    return fixed;
}

/*
 * Called for every security check of a connection (about 80 per handshake
 * and side): the common answers come first and cheaply.
 */
int emsguard_schannel_hold_allows(const struct eg_schannel_hold *h, const SSL *ssl,
    int op, int nid, void *other, unsigned *what)
{
    int role;

    switch (op & SSL_SECOP_OTHER_TYPE) {
    case SSL_SECOP_OTHER_CIPHER: {
        const SSL_CIPHER *c = other;

        /* In the policy's lists, or of a kind (TLS 1.3 or not) it leaves alone. */
        if (c == NULL || (!h->tls12_held && !h->tls13_held)
            || has_u16(h->ciphers, h->n_ciphers, SSL_CIPHER_get_protocol_id(c))
            || (is_tls13_suite(c) ? !h->tls13_held : !h->tls12_held))
            return 1;
        *what = EG_HELD_SUITES;
        return 0;
    }
    case SSL_SECOP_OTHER_CURVE: {
        const unsigned char *g = other;

        if (h->n_groups == 0 || g == NULL)
            return 1;
        role = SSL_is_server(ssl) ? EG_ROLE_SERVER : EG_ROLE_CLIENT;

        /*
         * CURVE_CHECK also vets a certificate's curve.  libssl compares that
         * with the configured groups on the client side only (t1_lib.c
         * tls1_check_group_id, check_own_groups = !s->server), so only the
         * client's check is held to the policy's groups, as at enable.
         */
        if (((op & ~SSL_SECOP_PEER) == SSL_SECOP_CURVE_CHECK && role == EG_ROLE_SERVER)
            || has_u16(h->groups, h->n_groups, (uint16_t)(g[0] << 8 | g[1])))
            return 1;
        *what = EG_HELD_GROUPS;
        return 0;
    }
    case SSL_SECOP_OTHER_PKEY:
        /* The server's own DH group (statem_srvr.c, ServerKeyExchange). */
        if (op == SSL_SECOP_TMP_DH && h->server_dh_min > 0 && SSL_is_server(ssl)
            && other != NULL && (uint32_t)EVP_PKEY_get_bits(other) < h->server_dh_min) {
            *what = EG_HELD_DH;
            return 0;
        }
        return 1;
    case SSL_SECOP_OTHER_NONE:
        if (op == SSL_SECOP_VERSION) {
            int dtls = SSL_is_dtls(ssl);
            const struct eg_hold_range *r;

            role = SSL_is_server(ssl) ? EG_ROLE_SERVER : EG_ROLE_CLIENT;
            r = dtls ? &h->role[role].dtls : &h->role[role].tls;

            /*
             * libssl's check at state machine start is of the method's
             * nominal version, before any is negotiated (statem.c).
             */
            if (!r->touched || SSL_get_state(ssl) == TLS_ST_BEFORE)
                return 1;
            if (r->min != 0 && version_rank(nid, dtls) >= version_rank(r->min, dtls)
                && version_rank(nid, dtls) <= version_rank(r->max, dtls))
                return 1;
            *what = EG_HELD_LATE_VERSION;
            return 0;
        }
        return 1;
    default:
        return 1;
    }
}

int emsguard_schannel_hold_session_fresh(const struct eg_schannel_hold *h,
    const SSL_SESSION *sess)
{
    time_t now, made;

    if (h->server_lifetime <= 0)
        return 1;
    made = emsguard_session_time(sess);
    now = time(NULL);
    /* A session from the future (clock skew between fleet members) is judged as new. */
    return now <= made || now - made <= (time_t)h->server_lifetime;
}

int emsguard_schannel_hold_session_ok(const struct eg_schannel_hold *h, const SSL *ssl,
    const SSL_SESSION *sess)
{
    const SSL_CIPHER *c = SSL_SESSION_get0_cipher(sess);
    int dtls = SSL_is_dtls(ssl), v = SSL_SESSION_get_protocol_version(sess);
    const struct eg_hold_range *r = dtls ? &h->role[EG_ROLE_SERVER].dtls
                                         : &h->role[EG_ROLE_SERVER].tls;
    unsigned what = 0;

    /*
     * libssl resumes a TLS <= 1.2 session with its own suite, checked only
     * against the client's list (statem_srvr.c tls_early_post_process_client_hello):
     * no security callback question, so the policy's suites are asked here.
     * A suite libssl could not name is not one the policy allows.
     */
    if (h->tls12_held && (c == NULL
            || !emsguard_schannel_hold_allows(h, ssl, SSL_SECOP_CIPHER_SHARED, 0,
                (void *)c, &what)))
        return 0;
    if (r->touched && (r->min == 0 || version_rank(v, dtls) < version_rank(r->min, dtls)
            || version_rank(v, dtls) > version_rank(r->max, dtls)))
        return 0;
    return emsguard_schannel_hold_session_fresh(h, sess);
}

/* Appends |name| to the growing ':'-list in |buf|; 0 if it does not fit. */
static int append_name(char *buf, size_t len, size_t *used, const char *name)
{
    int n = snprintf(buf + *used, len - *used, "%s%s", *used > 0 ? ":" : "", name);

    if (n < 0 || (size_t)n >= len - *used)
        return 0;
    *used += (size_t)n;
    return 1;
}

int emsguard_schannel_hold_suites(const struct eg_schannel_hold *h,
    const EMSGUARD_POLICY *policy, SSL *ssl)
{
    STACK_OF(SSL_CIPHER) *sk = SSL_get_ciphers(ssl);
    size_t len = 64 * (size_t)sk_SSL_CIPHER_num(sk) + 1, used12 = 0, used13 = 0;
    char *tls12 = OPENSSL_zalloc(len), *tls13 = OPENSSL_zalloc(len);
    struct eg_role_cfg c;
    int i, ok = 0;

    if (tls12 == NULL || tls13 == NULL) {
        emsguard_raise(ERR_R_MALLOC_FAILURE, "cannot allocate the connection's suite lists");
        goto end;
    }
    /* The SSL's list (the application's), in its order, minus what the policy leaves out. */
    for (i = 0; i < sk_SSL_CIPHER_num(sk); i++) {
        const SSL_CIPHER *s = sk_SSL_CIPHER_value(sk, i);
        int tls13_suite = is_tls13_suite(s);

        if ((tls13_suite ? h->tls13_held : h->tls12_held)
            && !has_u16(h->ciphers, h->n_ciphers, SSL_CIPHER_get_protocol_id(s)))
            continue;
        if (!append_name(tls13_suite ? tls13 : tls12, len, tls13_suite ? &used13 : &used12,
                SSL_CIPHER_get_name(s))) {
            emsguard_raise(EMSGUARD_R_OUT_OF_RANGE, "the connection's suite list is too long");
            goto end;
        }
    }
    if (h->tls12_held) {
        if (used12 > 0) {
            if (!SSL_set_cipher_list(ssl, tls12)) {
                emsguard_schannel_refused("the connection's cipher list", tls12);
                goto end;
            }
        } else if (SSL_is_dtls(ssl)) {
            emsguard_schannel_no_version(ssl);
        } else {
            /* No TLS <= 1.2 suite left: TLS 1.3 or nothing. */
            SSL_set_min_proto_version(ssl, TLS1_3_VERSION);
        }
    }
    /* An empty TLS 1.3 list is allowed: TLS 1.3 then has no suite. */
    if (h->tls13_held && !SSL_set_ciphersuites(ssl, tls13)) {
        emsguard_schannel_refused("the connection's TLS 1.3 cipher suites", tls13);
        goto end;
    }
    /* Groups: the policy's (no cheap way to read the SSL's back in 3.0). */
    emsguard_schannel_role_config(policy, EG_ROLE_SERVER, &c);
    if (c.groups != NULL && !SSL_set1_groups_list(ssl, c.groups)) {
        emsguard_schannel_refused("the groups", c.groups);
        goto end;
    }
    ok = 1;
end:
    OPENSSL_free(tls12);
    OPENSSL_free(tls13);
    return ok;
}
