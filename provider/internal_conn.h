/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-session and per-connection facts the hooks keep: a session's EMS
 * flag and memo, connection records, fingerprints, log-line text, the FTPS
 * diagnosis.
 * Included through internal.h, which every source file includes.
 */
#ifndef EMSGUARD_INTERNAL_CONN_H
#define EMSGUARD_INTERNAL_CONN_H

#include "internal_schannel.h"

/* ---- session_flags.c --------------------------------------------------- */
/*
 * Reads the session flags ([13] EXPLICIT INTEGER) from a DER-encoded
 * SSL_SESSION. Returns 1 and sets *flags (0 when the field is absent), or 0
 * if the encoding is malformed.
 */
int emsguard_der_session_flags(const unsigned char *der, size_t len,
    uint64_t *flags);
/*
 * The EMS bit of |sess|, its own flag as libssl reads it: 1 EMS, 0 no EMS,
 * -1 unreadable (allocation failure, bad encoding).  From the peer memo
 * (keyed by the session's peer certificate object) when it knows the
 * session, else from the session's encoding, which costs a DER encoding of
 * the whole session.  No memo keyed by the master secret answers here: a
 * copy can carry a genuine EMS session's secret with the flag cleared.
 */
int emsguard_session_ems(const SSL_SESSION *sess);
/*
 * The same for a client session about to be offered (and for
 * EMSGUARD_SESSION_has_ems): a bit read from the encoding is remembered for
 * the session's peer certificate, so the next offer is cheap.
 */
int emsguard_session_ems_offered(const SSL_SESSION *sess);
/*
 * Remembers |ems| as the flag of |sess| in the peer memo: only a flag libssl
 * established (a full handshake) or checked (a resumption: against the
 * server's EMS extension) for this object.
 */
void emsguard_session_ems_note_peer(const SSL_SESSION *sess, int ems);
/*
 * Server, a session libssl is about to resume from a ticket or the
 * application's cache (a new object each time): its EMS bit, and the
 * fingerprint of its master secret in *fp for a note at handshake end.
 * A remembered "non-EMS" answers at once.  A remembered "EMS" answers only
 * if |ems_answer_safe|: the ClientHello has EMS and this server did not
 * switch it off, so libssl itself refuses a session whose flag lacks EMS
 * (a full handshake), or the policy refuses EMS sessions anyway.  Otherwise
 * the session's encoding is read.
 */
int emsguard_session_ems_lookup(const SSL_SESSION *sess, int ems_answer_safe,
    uint64_t *fp);
/*
 * A full handshake's new session: remembers |ems|, how its master secret
 * was derived, for the secret's fingerprint.
 */
void emsguard_session_ems_note(const SSL_SESSION *sess, int ems);
/* emsguard_session_ems_note() with the fingerprint already known. */
void emsguard_session_ems_note_fp(uint64_t fp, int ems);
/*
 * A resumption libssl completed with EMS (|ems| 1): puts back an "EMS"
 * entry for the secret if the table lost it, never over a "non-EMS" one
 * (libssl checked the flag against the hello, not the secret's derivation).
 * |fp| 0: computed here.  Does nothing for |ems| != 1.
 */
void emsguard_session_ems_note_resumed(const SSL_SESSION *sess, uint64_t fp, int ems);
/*
 * The EMS bit of a session a handshake just made, read from its encoding
 * (no memo), with the fingerprint of its master secret in *fp.
 */
int emsguard_session_ems_fp(const SSL_SESSION *sess, uint64_t *fp);

/* ---- records.c -------------------------------------------------------- */
typedef void (*emsguard_info_fn)(const SSL *, int, int);
/*
 * What emsguard keeps per connection.  records.c only stores it; what the
 * fields mean is the hooks' (provider/hooks.h: the CONN_* flags).
 */
struct eg_conn {
    /*
     * The hooks' state that saw the handshake start (struct eg_ctx_state),
     * opaque here.  It holds a reference, which the callback given to
     * emsguard_conn_register() releases when the record goes.
     */
    void *st;
    uintptr_t flags; /* CONN_* */
    emsguard_info_fn app_info_cb; /* the application's per-SSL info callback */
    uintptr_t finished_tag; /* 8 bytes of the last Finished sent */
    /* The session whose EMS bit this handshake looked up, and its fingerprint. */
    const SSL_SESSION *fp_sess;
    uint64_t fp;
};
/*
 * The policy state of |ctx| (opaque here): from the table if it is there,
 * else from |ctx|'s ex_data (where it always is as well).
 */
void *emsguard_ctx_state_find(const SSL_CTX *ctx);
/*
 * Lists |st| (already in |ctx|'s ex_data at |ex_data_idx|, the same index
 * for every ctx) in the table, when a slot is free.
 */
void emsguard_ctx_state_publish(const SSL_CTX *ctx, void *st, int ex_data_idx);
/* Takes |ctx|'s state out of the table: |ctx| is being freed. */
void emsguard_ctx_state_withdraw(const SSL_CTX *ctx);
/*
 * Called with a record that goes because |ssl| is being freed (libssl
 * frees its ex_data first: the SSL's session and handshake state are still
 * there): releases conn->st.
 */
typedef void (*emsguard_conn_release_fn)(SSL *ssl, struct eg_conn *conn);
/*
 * Registers the SSL ex_data index whose callbacks free records, and the
 * function that releases what a record holds; 1 or 0.
 */
int emsguard_conn_register(emsguard_conn_release_fn on_release);
/* |ssl|'s record, or NULL if it has none. */
struct eg_conn *emsguard_conn_find(const SSL *ssl);
/* |ssl|'s record, made (zeroed) if it has none; NULL only out of memory. */
struct eg_conn *emsguard_conn_get(SSL *ssl);
/* The same, for a record that SSL_dup() must copy. */
struct eg_conn *emsguard_conn_get_durable(SSL *ssl);

/* ---- fingerprint.c ----------------------------------------------------- */
/* A keyed 64-bit fingerprint of |secret|; 0 (only) if the RNG failed. */
uint64_t emsguard_fingerprint(const unsigned char *secret, size_t len);

/* ---- peer_text.c ------------------------------------------------------- */
/* The peer address of |bio|'s socket ("unknown" without one), for log lines. */
void emsguard_peer_address(BIO *bio, char *buf, size_t len);
/* The SNI host name, from the raw ClientHello on a server ("-": none). */
void emsguard_sni_name(SSL *ssl, char *buf, size_t len);

/* ---- reuse_diagnosis.c ------------------------------------------------- */
/*
 * Client, handshake done after a withheld session: watch the connection
 * until SSL_free(), which prints the diagnosis if the peer then ended it
 * without sending data.  |policy| lives in |policy_ctx| (referenced).
 */
void emsguard_reuse_watch(SSL *ssl, SSL_CTX *policy_ctx, const EMSGUARD_POLICY *policy);
/* A new connection on |ssl| (SSL_clear()): the watched one is over. */
void emsguard_reuse_end(SSL *ssl);
/* This side sent close_notify: if the peer had not, it did not end the connection. */
void emsguard_reuse_close_sent(SSL *ssl);

#endif /* EMSGUARD_INTERNAL_CONN_H */
