/*
 * Reading the Extended Master Secret flag of an SSL_SESSION.  OpenSSL 3.0
 * exposes it only after a handshake (SSL_get_extms_support), so we read the
 * session's own encoding: a SEQUENCE whose optional field [13] EXPLICIT
 * INTEGER carries the session flags, bit 0x1 meaning EMS.
 */
#include <stdatomic.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
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
 * The memo: one atomic word per slot, the fingerprint of a master secret
 * with its two low bits replaced by "used" (2) and the EMS bit (1).  The
 * EMS flag and the master secret are fixed together when a handshake makes
 * a session (RFC 7627 derives the secret differently), and copies of a
 * session keep both, so the fingerprint identifies the answer.  A fixed
 * table: nothing is allocated per session, and a lost slot only costs a
 * re-read.
 *
 * Only a finished handshake writes it (emsguard_session_ems_note).  A
 * session read from elsewhere (d2i from an application's store) can pair
 * any secret with any flags; remembering what it says would let a forged
 * copy of a real non-EMS session's secret make that session look like EMS.
 */
#define MEMO_SLOTS 1024
#define MEMO_USED 0x2
#define MEMO_EMS 0x1

static _Atomic uint64_t ems_memo[MEMO_SLOTS];

static uint64_t master_secret_fp(const SSL_SESSION *sess)
{
    unsigned char secret[SSL_MAX_MASTER_KEY_LENGTH];
    size_t len = SSL_SESSION_get_master_key(sess, secret, sizeof(secret));
    uint64_t fp = len > 0 ? emsguard_fingerprint(secret, len) : 0;

    OPENSSL_cleanse(secret, sizeof(secret));
    return fp & ~(uint64_t)(MEMO_USED | MEMO_EMS);
}

static _Atomic uint64_t *memo_slot(uint64_t fp)
{
    return &ems_memo[(fp >> 2) % MEMO_SLOTS];
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
    memo_store(fp & ~(uint64_t)(MEMO_USED | MEMO_EMS), ems);
}

int emsguard_session_ems_fp(const SSL_SESSION *sess, uint64_t *fp_out)
{
    uint64_t fp, entry;

    *fp_out = 0;
    if (sess == NULL)
        return -1;
    *fp_out = fp = master_secret_fp(sess);
    if (fp != 0) {
        entry = atomic_load_explicit(memo_slot(fp), memory_order_relaxed);
        if ((entry & MEMO_USED) && (entry & ~(uint64_t)(MEMO_USED | MEMO_EMS)) == fp)
            return (entry & MEMO_EMS) != 0;
    }
    /* Not remembered: see the memo's comment. */
    return read_session_ems(sess);
}

int emsguard_session_ems(const SSL_SESSION *sess)
{
    uint64_t fp;

    return emsguard_session_ems_fp(sess, &fp);
}

int EMSGUARD_SESSION_has_ems(const SSL_SESSION *sess, int *has_ems)
{
    int ems;

    if (sess == NULL || has_ems == NULL) {
        emsguard_raise(EMSGUARD_R_INVALID_ARGUMENT,
            "EMSGUARD_SESSION_has_ems: session or result pointer is NULL");
        return 0;
    }
    if ((ems = emsguard_session_ems(sess)) < 0) {
        emsguard_raise(EMSGUARD_R_SESSION,
            "cannot read the session's flags from its encoding");
        return 0;
    }
    *has_ems = ems;
    return 1;
}
