/* SPDX-License-Identifier: Apache-2.0 */
/*
 * In-memory TLS handshake harness: a client and a server SSL joined by a BIO
 * pair, driven to completion in one thread, no sockets.  Used by
 * check_handshake.c.
 */
#ifndef EMSGUARD_TEST_HARNESS_H
#define EMSGUARD_TEST_HARNESS_H

#include <stddef.h>
#include <openssl/ssl.h>

/* How the server may resume a TLS 1.2 session. */
typedef enum {
    HS_MECH_SESSION_ID = 0, /* internal session-ID cache, no tickets */
    HS_MECH_EXT_CACHE, /* external cache callbacks only, no tickets */
    HS_MECH_TICKET, /* RFC 5077 tickets only, no server cache */
    HS_MECH_COUNT
} hs_mech;

const char *hs_mech_name(hs_mech mech);

/* Context options (bit flags). */
#define HS_TLS13 0x1 /* allow TLS 1.3 (default: TLS 1.2 only) */
#define HS_NO_EMS 0x2 /* legacy peer: SSL_OP_NO_EXTENDED_MASTER_SECRET */

/*
 * A server ctx with a throwaway P-256 certificate, set up for |mech|.  With
 * HS_MECH_EXT_CACHE it uses the harness's external cache (hs_ext_cache_*).
 * With HS_MECH_TICKET the ticket keys are fixed, so two ctxs share them.
 */
SSL_CTX *hs_server_ctx(hs_mech mech, int flags);
SSL_CTX *hs_client_ctx(int flags);

/* What one handshake did, as both ends and the wire saw it. */
typedef struct {
    int ok; /* both ends completed the handshake */
    int reused; /* the client reports a resumption */
    int server_reused; /* the server reports a resumption */
    int ems; /* client: EMS negotiated (SSL_get_extms_support) */
    int version; /* negotiated protocol version, 0 if none */
    int hello_ems; /* ClientHello carried extension 23 */
    int hello_offered; /* ClientHello offered a session (ID or ticket) */
    int server_sent_ticket; /* NewSessionTicket seen from the server */
    int server_alert; /* description of a fatal alert the server sent, -1 */
    int client_alert; /* description of a fatal alert the client sent, -1 */
    SSL_SESSION *session; /* client's session afterwards (owned), or NULL */
} hs_result;

/*
 * Runs a handshake between new SSLs of |sctx| and |cctx|.  If |offer| is not
 * NULL the client offers a fresh copy of it (OpenSSL marks an offered session
 * not resumable after a failed attempt, so the caller's stays usable).  After
 * the handshake one byte goes each way, which also delivers TLS 1.3 tickets.
 * Fills *res (release it with hs_result_clear()); returns res->ok.
 */
int hs_handshake(SSL_CTX *sctx, SSL_CTX *cctx, const SSL_SESSION *offer,
    hs_result *res);
void hs_result_clear(hs_result *res);
/*
 * Joins the caller's |client| and |server| SSLs through a BIO pair (they take
 * it over) and drives the handshake; 1 when both ends completed it.
 */
int hs_connect(SSL *client, SSL *server);
/*
 * One step of one end of a connection the caller drives itself: 1 done, 0
 * waiting for the peer, -1 failed.  hs_step() runs SSL_do_handshake();
 * hs_io_step() does too while the SSL is in a handshake, and otherwise reads
 * one byte, so it also carries a renegotiation the peer started.
 */
int hs_step(SSL *ssl);
int hs_io_step(SSL *ssl);
/* Library context for the ctxs made from now on (NULL: the default). */
void hs_set_libctx(OSSL_LIB_CTX *libctx);
/* Server name the client sends from now on (NULL: none). */
void hs_set_sni(const char *name);

/*
 * Reads a ClientHello handshake message |p| of |len| bytes (TLS: 4-byte
 * header; DTLS: 12, and a cookie) written by a client capped at (D)TLS 1.2:
 * *offered is 1 when it offers a session (a non-empty session ID or
 * ticket), *ems when it carries extension 23.  A truncated message leaves
 * what it could not reach at 0.
 */
void hs_read_client_hello(const unsigned char *p, size_t len, int dtls, int *offered,
    int *ems);

/* A fresh, independent copy of |sess| (through DER), or NULL. */
SSL_SESSION *hs_session_copy(const SSL_SESSION *sess);

/*
 * The external session cache used by HS_MECH_EXT_CACHE ctxs: one process-wide
 * table shared by every such ctx (like a memcached in front of a fleet).  It
 * stores DER copies.  The counters let tests see which callbacks ran.
 */
void hs_ext_cache_reset(void);
size_t hs_ext_cache_size(void);
int hs_ext_cache_new_calls(void);
int hs_ext_cache_get_calls(void);
int hs_ext_cache_remove_calls(void);
/* Installs the cache's callbacks on |ctx| (used by hs_server_ctx). */
void hs_ext_cache_install(SSL_CTX *ctx);
/*
 * Clears the EMS flag in every stored session (a forged server-side record,
 * for the client-side consistency check); returns how many it changed.
 */
int hs_ext_cache_forget_ems(void);
/* Stores |sess| directly, as another server of the fleet would. */
int hs_ext_cache_put(const SSL_SESSION *sess);

/*
 * Runs |fn| with stderr sent to a temporary file and returns what it wrote
 * (a static buffer, up to 8 KiB), or NULL if stderr could not be redirected.
 */
const char *hs_capture_stderr(void (*fn)(void));

/* Frees the harness's key and certificate and the external cache. */
void hs_cleanup(void);

/*
 * Whether two security callbacks are code of the same shared object
 * (dladdr): "emsguard's", when which of its callbacks a ctx holds depends
 * on what it chains.
 */
typedef int (*hs_security_fn)(const SSL *, const SSL_CTX *, int, int, int, void *, void *);
int hs_same_object(hs_security_fn a, hs_security_fn b);

#endif
