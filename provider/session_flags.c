/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading the Extended Master Secret flag of an SSL_SESSION.  OpenSSL 3.0
 * exposes it only after a handshake (SSL_get_extms_support), so we read the
 * session's own encoding: a SEQUENCE whose optional field [13] EXPLICIT
 * INTEGER carries the session flags, bit 0x1 meaning EMS.
 */
#include <stdatomic.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include "internal.h"

#define SESSION_FLAG_EXTMS 0x1 /* SSL_SESS_FLAG_EXTMS in libssl */
#define TAG_SEQUENCE 0x30
#define TAG_INTEGER 0x02
#define TAG_FLAGS 0xAD /* [13], context-specific, constructed */

/* Reads one TLV header at *p; returns 0 when it does not fit in |end|. */
static int read_tlv(const unsigned char **p, const unsigned char *end,
    unsigned int *tag, size_t *len)
{
    const unsigned char *q = *p;
    size_t n, i;

    if (q >= end)
        return 0;
    *tag = *q++;
    if ((*tag & 0x1f) == 0x1f) /* high tag number: skip its bytes */
        do {
            if (q >= end)
                return 0;
        } while (*q++ & 0x80);
    if (q >= end)
        return 0;
    if ((*q & 0x80) == 0) {
        *len = *q++;
    } else {
        n = *q++ & 0x7f;
        if (n == 0 || n > sizeof(size_t) - 1) /* indefinite or absurd */
            return 0;
        for (*len = 0, i = 0; i < n; i++) {
            if (q >= end)
                return 0;
            *len = (*len << 8) | *q++;
        }
    }
    if (*len > (size_t)(end - q))
        return 0;
    *p = q;
    return 1;
}

int emsguard_der_session_flags(const unsigned char *der, size_t len,
    uint64_t *flags)
{
    const unsigned char *p = der, *end = der + len, *seq_end;
    unsigned int tag;
    size_t l;

    if (der == NULL || !read_tlv(&p, end, &tag, &l) || tag != TAG_SEQUENCE)
        return 0;
    seq_end = p + l;
    *flags = 0; /* an absent field means no flags */
    while (p < seq_end) {
        if (!read_tlv(&p, seq_end, &tag, &l))
            return 0;
        if (tag == TAG_FLAGS) {
            const unsigned char *in = p, *in_end = p + l;
            uint64_t v = 0;
            size_t il, i;

            if (!read_tlv(&in, in_end, &tag, &il) || tag != TAG_INTEGER
                || il == 0 || in + il != in_end)
                return 0;
            if (in[0] & 0x80) /* negative: not a valid flags word */
                return 0;
            if (il > 9 || (il == 9 && in[0] != 0))
                return 0;
            for (i = 0; i < il; i++)
                v = (v << 8) | in[i];
            *flags = v;
            return 1;
        }
        p += l;
    }
    return p == seq_end;
}

/* Reads the bit from the session's encoding: about a microsecond or more. */
static int read_session_ems(const SSL_SESSION *sess)
{
    unsigned char *der = NULL;
    int len;
    uint64_t flags;
    int ok;

    /* One pass: i2d allocates the buffer itself when *pp is NULL. */
    if ((len = i2d_SSL_SESSION(sess, &der)) <= 0 || der == NULL)
        return -1;
    ok = emsguard_der_session_flags(der, (size_t)len, &flags);
    /* The encoding holds the master secret. */
    OPENSSL_clear_free(der, (size_t)len);
    if (!ok)
        return -1;
    return (flags & SESSION_FLAG_EXTMS) != 0;
}

/*
 * Two memos, so that the common resumptions need not DER-encode the session
 * (about 1.8 microseconds for a client session with a P-256 certificate,
 * some 2.5 % of a TLS 1.2 resumption counting both ends).  Each says
 * only what it can vouch for, and each is a fixed table of atomic words: no
 * allocation per session, and a lost slot only costs a re-read.
 *
 * libssl acts on the session's own flag (ssl_sess.c ssl_get_prev_session,
 * extensions.c final_ems), and a session read from elsewhere -- an
 * application's cache or store, a ticket another server issued -- can pair
 * any master secret with any flag: a copy of a genuine EMS session with the
 * flag cleared in its encoding resumes without EMS wherever the ClientHello
 * lacks it.  So no answer of a memo may stand in for a session's flag
 * unless acting on a wrong answer cannot resume a session whose flag lacks
 * EMS, and only what libssl established may be written.
 */
#define MEMO_SLOTS 1024
#define MEMO_USED 0x2
#define MEMO_EMS 0x1
#define MEMO_BITS ((uint64_t)(MEMO_USED | MEMO_EMS))

/*
 * The secret memo (server role): the fingerprint of a master secret, with
 * its two low bits replaced by "used" and the EMS bit, meaning how that
 * secret was derived (RFC 7627 derives it differently).
 *  - Only a full handshake knows that, so only a full handshake writes
 *    "non-EMS" (emsguard_session_ems_note).  A resumption completed with EMS
 *    may put back an "EMS" entry a full handshake wrote and the table lost
 *    (emsguard_session_ems_note_resumed), never over a "non-EMS" one: libssl
 *    checked the session's flag against the ClientHello, not how its secret
 *    was derived.
 *  - "non-EMS" is a refusal, and true of every copy of the session.
 *  - "EMS" is used only where libssl itself then refuses a session whose
 *    flag lacks EMS (the caller says so: emsguard_session_ems_lookup).
 */
static _Atomic uint64_t ems_memo[MEMO_SLOTS];

static uint64_t master_secret_fp(const SSL_SESSION *sess)
{
    unsigned char secret[SSL_MAX_MASTER_KEY_LENGTH];
    size_t len = SSL_SESSION_get_master_key(sess, secret, sizeof(secret));
    uint64_t fp = len > 0 ? emsguard_fingerprint(secret, len) : 0;

    OPENSSL_cleanse(secret, sizeof(secret));
    return fp & ~MEMO_BITS;
}

static _Atomic uint64_t *memo_slot(uint64_t fp)
{
    return &ems_memo[(fp >> 2) % MEMO_SLOTS];
}

/* The remembered bit for |fp|: 1, 0, or -1 when not remembered. */
static int memo_answer(uint64_t fp)
{
    uint64_t entry;

    if (fp == 0)
        return -1;
    entry = atomic_load_explicit(memo_slot(fp), memory_order_relaxed);
    if ((entry & MEMO_USED) && (entry & ~MEMO_BITS) == fp)
        return (entry & MEMO_EMS) != 0;
    return -1;
}

static void memo_store(uint64_t fp, int ems)
{
    _Atomic uint64_t *slot = memo_slot(fp);
    uint64_t entry = fp | MEMO_USED | (ems ? MEMO_EMS : 0);

    /* Most notes repeat the entry: a read keeps the line shared between threads. */
    if (fp != 0 && ems >= 0 && atomic_load_explicit(slot, memory_order_relaxed) != entry)
        atomic_store_explicit(slot, entry, memory_order_relaxed);
}

void emsguard_session_ems_note(const SSL_SESSION *sess, int ems)
{
    if (sess != NULL)
        memo_store(master_secret_fp(sess), ems);
}

void emsguard_session_ems_note_fp(uint64_t fp, int ems)
{
    memo_store(fp & ~MEMO_BITS, ems);
}

void emsguard_session_ems_note_resumed(const SSL_SESSION *sess, uint64_t fp, int ems)
{
    if (ems != 1 || sess == NULL)
        return;
    if ((fp &= ~MEMO_BITS) == 0)
        fp = master_secret_fp(sess);
    /* Known either way: "EMS" needs nothing, "non-EMS" must stay. */
    if (memo_answer(fp) < 0)
        memo_store(fp, 1);
}

int emsguard_session_ems_lookup(const SSL_SESSION *sess, int ems_answer_safe,
    uint64_t *fp_out)
{
    int known;

    *fp_out = 0;
    if (sess == NULL)
        return -1;
    *fp_out = master_secret_fp(sess);
    known = memo_answer(*fp_out);
    if (known == 0 || (known == 1 && ems_answer_safe))
        return known;
    return read_session_ems(sess);
}

/*
 * The peer memo (client role, and EMSGUARD_SESSION_has_ems): the address of
 * the X509 object a session holds as its peer certificate, with the EMS bit
 * of the sessions holding it.  Every session holding one X509 object has the
 * same flag: libssl gives a session a peer only by decoding a certificate
 * (from the wire, or from a session's encoding in d2i_SSL_SESSION) into a
 * new object, or by sharing it with a copy that takes the flag along
 * (ssl_session_dup, SSL_SESSION_dup); OpenSSL 3.0 to 3.5 have no setter for
 * either.  Even d2i_SSL_SESSION() into an existing session object, the one
 * way an object's flag can change afterwards, gives it a new peer object
 * (decoded while the old one is still held).  An X509 object's address is
 * forgotten when it is freed (an X509 ex_data free callback, which libcrypto
 * calls for every X509 it frees), so it cannot stand for a later object.
 *
 * Sessions with no peer certificate (PSK, anonymous, raw public keys) are
 * read every time.  A session's master secret does not identify it here: a
 * client offering a copy with the flag cleared to a server without EMS
 * would resume it, and nothing in libssl stops that.
 */
static _Atomic uint64_t peer_memo[MEMO_SLOTS];
static CRYPTO_ONCE peer_memo_once = CRYPTO_ONCE_STATIC_INIT;
static atomic_int peer_memo_ready; /* the free callback is registered */

static _Atomic uint64_t *peer_slot(const X509 *peer)
{
    uint64_t h = (uint64_t)(uintptr_t)peer * UINT64_C(0x9E3779B97F4A7C15);

    return &peer_memo[(h >> 32) % MEMO_SLOTS];
}

/* The X509 is being freed: its address may come back as another certificate. */
static void peer_freed(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
    long argl, void *argp)
{
    _Atomic uint64_t *slot = peer_slot(parent);
    uint64_t entry = atomic_load_explicit(slot, memory_order_acquire);

    (void)ptr;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if ((entry & MEMO_USED) && (entry & ~MEMO_BITS) == (uint64_t)(uintptr_t)parent)
        atomic_compare_exchange_strong_explicit(slot, &entry, 0,
            memory_order_acq_rel, memory_order_acquire);
}

static void init_peer_memo(void)
{
    if (X509_get_ex_new_index(0, "emsguard: forget a peer certificate's EMS bit when it is freed",
            NULL, NULL, peer_freed) >= 0)
        atomic_store_explicit(&peer_memo_ready, 1, memory_order_release);
}

/* The session's peer certificate if the peer memo can key on it, else NULL. */
static const X509 *memo_peer(const SSL_SESSION *sess)
{
    const X509 *peer = SSL_SESSION_get0_peer((SSL_SESSION *)sess);

    if (peer == NULL || ((uintptr_t)peer & MEMO_BITS) != 0)
        return NULL;
    return peer;
}

/* The remembered flag of |sess|: 1, 0, or -1 when not remembered. */
static int peer_answer(const SSL_SESSION *sess)
{
    const X509 *peer = memo_peer(sess);
    uint64_t entry;

    /* Nothing is stored before the free callback is in place. */
    if (peer == NULL || !atomic_load_explicit(&peer_memo_ready, memory_order_acquire))
        return -1;
    entry = atomic_load_explicit(peer_slot(peer), memory_order_acquire);
    if ((entry & MEMO_USED) && (entry & ~MEMO_BITS) == (uint64_t)(uintptr_t)peer)
        return (entry & MEMO_EMS) != 0;
    return -1;
}

void emsguard_session_ems_note_peer(const SSL_SESSION *sess, int ems)
{
    const X509 *peer = sess != NULL ? memo_peer(sess) : NULL;
    _Atomic uint64_t *slot;
    uint64_t entry;

    if (peer == NULL || ems < 0
        || !CRYPTO_THREAD_run_once(&peer_memo_once, init_peer_memo)
        || !atomic_load_explicit(&peer_memo_ready, memory_order_acquire))
        return;
    slot = peer_slot(peer);
    entry = (uint64_t)(uintptr_t)peer | MEMO_USED | (ems ? MEMO_EMS : 0);
    if (atomic_load_explicit(slot, memory_order_relaxed) != entry)
        atomic_store_explicit(slot, entry, memory_order_release);
}

int emsguard_session_ems(const SSL_SESSION *sess)
{
    int ems;

    if (sess == NULL)
        return -1;
    if ((ems = peer_answer(sess)) >= 0)
        return ems;
    return read_session_ems(sess);
}

int emsguard_session_ems_offered(const SSL_SESSION *sess)
{
    int ems;

    if (sess == NULL)
        return -1;
    if ((ems = peer_answer(sess)) >= 0)
        return ems;
    ems = read_session_ems(sess);
    emsguard_session_ems_note_peer(sess, ems);
    return ems;
}

int emsguard_session_ems_fp(const SSL_SESSION *sess, uint64_t *fp_out)
{
    *fp_out = 0;
    if (sess == NULL)
        return -1;
    *fp_out = master_secret_fp(sess);
    return read_session_ems(sess);
}

int EMSGUARD_SESSION_has_ems(const SSL_SESSION *sess, int *has_ems)
{
    int ems;

    if (sess == NULL || has_ems == NULL) {
        emsguard_raise(EMSGUARD_R_INVALID_ARGUMENT,
            "EMSGUARD_SESSION_has_ems: session or result pointer is NULL");
        return 0;
    }
    /* The object's own flag, remembered for it (the peer memo). */
    if ((ems = emsguard_session_ems_offered(sess)) < 0) {
        emsguard_raise(EMSGUARD_R_SESSION,
            "cannot read the session's flags from its encoding");
        return 0;
    }
    *has_ems = ems;
    return 1;
}
