/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Schannel settings: the .reg reader's entry point, and mapping, applying and
 * holding Schannel values on OpenSSL objects.
 * Included through internal.h, which every source file includes.
 */
#ifndef EMSGUARD_INTERNAL_SCHANNEL_H
#define EMSGUARD_INTERNAL_SCHANNEL_H

#include "internal_policy.h"

/* ---- reg_file.c -------------------------------------------------------- */
/*
 * Applies a Windows Registry Editor export (REGEDIT4 or version 5.00, ANSI,
 * UTF-8 or UTF-16LE with BOM) to |policy|.  |name| names the file in
 * messages.  Returns 0 with "name:line: ..." raised on a syntax error or a
 * bad value; |policy| is then unchanged.
 */
int emsguard_reg_apply(EMSGUARD_POLICY *policy, const unsigned char *buf,
    size_t len, const char *name);

/* ---- schannel_map.c ---------------------------------------------------- */
/* The OpenSSL settings one role gets from the Schannel values. */
struct eg_role_cfg {
    int versions_touched;
    int min_version, max_version; /* 0: none left */
    int dtls_touched;
    int dtls_min, dtls_max;
    uint64_t opts_set, opts_clear;
    char ciphers[EG_STRING_MAX + 256]; /* "" leaves OpenSSL's */
    char suites[512];
    int suites_touched;
    const char *groups; /* NULL leaves OpenSSL's */
};
void emsguard_schannel_role_config(const EMSGUARD_POLICY *p, int role,
    struct eg_role_cfg *c);
/* True if the two roles' settings differ (a both-roles ctx then needs them
 * per connection). */
int emsguard_schannel_roles_differ(const EMSGUARD_POLICY *policy);
/* True if any Schannel mapping value is set. */
int emsguard_schannel_any(const EMSGUARD_POLICY *policy);
/* A MinKeyBitLength value, 0 when unset. */
uint32_t emsguard_schannel_min_bits(const EMSGUARD_POLICY *p, eg_key key);
/*
 * Why TLS 1.3 is off though the version range of a role allows it (the
 * suite list leaves no TLS 1.3 suite), as a warning; "" when it is not.
 */
void emsguard_schannel_tls13_off(const EMSGUARD_POLICY *p, char *buf, size_t len);

/* ---- schannel_apply.c -------------------------------------------------- */
/*
 * Applies the Schannel values of |policy| that concern |role| to |ctx| (if
 * |ssl| is NULL) or to |ssl|.  Returns 0 with an error raised if OpenSSL
 * refuses a setting.
 */
int emsguard_schannel_apply(const EMSGUARD_POLICY *policy, int role,
    SSL_CTX *ctx, SSL *ssl);
/* The server settings that exist only per SSL_CTX (cache, DH group). */
int emsguard_schannel_apply_server_ctx(const EMSGUARD_POLICY *policy,
    SSL_CTX *ctx);
/* Security-callback check (DH group a client accepts); 0 refuses. */
int emsguard_schannel_security_ok(const EMSGUARD_POLICY *p, int role, int op,
    void *other);
/* The peer certificate's RSA key size against PKCS MinKeyBitLength. */
int emsguard_schannel_peer_key_ok(const EMSGUARD_POLICY *p, int role,
    X509 *cert);
/*
 * The settings both roles share (cipher suites, groups) on |ctx|: a
 * both-roles ctx whose roles differ in the rest gets these once here.
 */
int emsguard_schannel_apply_shared(const EMSGUARD_POLICY *policy, SSL_CTX *ctx);
/* Raises EMSGUARD_R_OPENSSL_SETTING: OpenSSL refused |what| = |value|; 0. */
int emsguard_schannel_refused(const char *what, const char *value);
/* The ffdhe group a server uses when it must be at least |bits| strong. */
EVP_PKEY *emsguard_schannel_ffdhe_at_least(uint32_t bits);

/* ---- schannel_hold.c --------------------------------------------------- */
/*
 * What the Schannel values hold on every connection, whatever the
 * application sets on the SSL_CTX or the SSL after EMSGUARD_enable() (it
 * replaces what the policy put on the ctx: nginx sets its own protocols,
 * cipher list, session timeout and cache).  The policy only restricts: the
 * application may narrow further, never widen.  Built once at enable.
 *  - At handshake start (emsguard_schannel_hold_ssl): the SSL's protocol
 *    range is intersected with the policy's, the options the policy sets or
 *    clears as a restriction are put back, the server's DH group is the
 *    policy's.
 *  - In the security callback (emsguard_schannel_hold_allows): suites and
 *    groups outside the policy's, and versions outside its range, are
 *    refused wherever libssl asks, also after an SNI switch or a change the
 *    application makes during the handshake.
 */
#define EG_HOLD_MAX_CIPHERS 512
#define EG_HOLD_MAX_GROUPS 16
struct eg_hold_range {
    int touched;
    int min, max; /* 0 min: no version left */
};
struct eg_schannel_hold {
    int active; /* something below is set: on_handshake_start looks */
    int filter; /* the security callback must filter */
    struct {
        struct eg_hold_range tls, dtls;
        uint64_t opts_set, opts_clear; /* put back at handshake start */
        /*
         * A both-roles ctx whose roles differ: options the policy only
         * loosens (AllowInsecureRenego* = 1, DisableRenego* = 0), applied to
         * a connection only where its option is still as the ctx had it at
         * enable, i.e. the application has not chosen since.
         */
        uint64_t loosen_set, loosen_clear;
    } role[2]; /* by eg_role */
    uint64_t opts_at_enable; /* the ctx's options before the policy's */
    int tls12_held, tls13_held; /* the suite lists are the policy's */
    size_t n_ciphers;
    uint16_t ciphers[EG_HOLD_MAX_CIPHERS]; /* allowed protocol IDs, sorted */
    size_t n_groups;
    uint16_t groups[EG_HOLD_MAX_GROUPS]; /* allowed TLS group IDs; none: any */
    uint32_t server_dh_min; /* ServerMinKeyBitLength */
    EVP_PKEY *server_dh; /* the group the server uses, at least that big */
    EVP_PKEY *server_dh_larger[4]; /* the larger ffdhe groups, by size; NULL: none */
    /* Size of the DH group the application set on the ctx after enable (security_cb). */
    _Atomic uint32_t app_dh_bits;
    long server_lifetime; /* ServerCacheTime in s; 0: no limit */
    int server_cache_off; /* ServerCacheTime=0 or MaximumCacheSize=0 */
    long server_cache_max; /* MaximumCacheSize > 0; 0: no limit */
};
/* What had to be put back (or was refused), for the warning. */
#define EG_HELD_VERSIONS 0x1 /* the SSL's protocol range was wider */
#define EG_HELD_OPTIONS 0x2
#define EG_HELD_SUITES 0x4 /* a suite outside the policy's was asked for */
#define EG_HELD_GROUPS 0x8
#define EG_HELD_LATE_VERSION 0x10 /* a version outside the range, during a handshake */
#define EG_HELD_DH 0x20 /* a server DH group below ServerMinKeyBitLength */
#define EG_HELD_LIFETIME 0x40 /* a session lifetime above ServerCacheTime */
#define EG_HELD_CACHE 0x80 /* a server session cache the policy has not */
#define EG_HELD_CACHE_SIZE 0x100 /* ... or one larger than MaximumCacheSize */
#define EG_HELD_NO_CALLBACK 0x200 /* the security callback is not emsguard's */
#define EG_HELD_VERIFY 0x400 /* ... nor the verify callback (PKCS MinKeyBitLength) */
#define EG_HELD_LAST EG_HELD_VERIFY
/*
 * Builds |h| for |ctx| (an SSL of it tells which suites the policy's lists
 * give).  |per_ssl|: the roles differ and nothing role-specific went on the
 * ctx, so every option of the role is put on each connection.  Returns 0
 * with an error raised (allocation, or OpenSSL refused a list).
 */
int emsguard_schannel_hold_init(const EMSGUARD_POLICY *policy, SSL_CTX *ctx,
    int per_ssl, struct eg_schannel_hold *h);
void emsguard_schannel_hold_clear(struct eg_schannel_hold *h);
/* At handshake start: puts the policy back on |ssl|; returns EG_HELD_* bits. */
unsigned emsguard_schannel_hold_ssl(const struct eg_schannel_hold *h, int role,
    SSL *ssl);
/*
 * A TLS <= 1.2 session offered to a server for resumption that the server
 * did not necessarily make under the policy (another fleet member's ticket
 * or cache entry, or one from before a policy change): 1 if its suite and
 * protocol version are the policy's and it is not older than
 * ServerCacheTime.
 */
int emsguard_schannel_hold_session_ok(const struct eg_schannel_hold *h, const SSL *ssl,
    const SSL_SESSION *sess);
/* The same for the age alone (TLS 1.3 tickets). */
int emsguard_schannel_hold_session_fresh(const struct eg_schannel_hold *h,
    const SSL_SESSION *sess);
/* Security-callback check: 0 refuses, with *what set to an EG_HELD_* bit. */
int emsguard_schannel_hold_allows(const struct eg_schannel_hold *h, const SSL *ssl,
    int op, int nid, void *other, unsigned *what);
/*
 * When the security callback that filters suites and groups was replaced:
 * |ssl|'s own suite lists become its current ones minus what the policy
 * leaves out, its groups the policy's.  0 with an error raised.
 */
int emsguard_schannel_hold_suites(const struct eg_schannel_hold *h,
    const EMSGUARD_POLICY *policy, SSL *ssl);
/* |ssl| can negotiate no protocol version at all (fail closed). */
void emsguard_schannel_no_version(SSL *ssl);

#endif /* EMSGUARD_INTERNAL_SCHANNEL_H */
