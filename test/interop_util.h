/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Peers for check_interop.c: a server that renews TLS 1.2 session tickets
 * inside abbreviated handshakes, a throwaway client certificate, and a
 * connection driver that keeps both ends alive after the handshake so the
 * server can renegotiate.
 */
#ifndef EMSGUARD_TEST_INTEROP_UTIL_H
#define EMSGUARD_TEST_INTEROP_UTIL_H

#include <openssl/ssl.h>
#include <openssl/x509.h>

/* ---- ticket keys through SSL_CTX_set_tlsext_ticket_key_evp_cb ----------- */

/*
 * Installs the test's ticket key callback on |ctx|.  It replaces the fixed
 * keys of a harness ticket ctx (libssl then ignores those).  When |renew| is
 * set, every ticket it decrypts is answered with 2, "valid, but renew", so
 * libssl sends a NewSessionTicket in the abbreviated handshake; otherwise
 * with 1.  Every ctx shares one key, so tickets move freely between them.
 */
int io_ticket_keys_install(SSL_CTX *ctx, int renew);

/* How often the key callback ran since io_ticket_stats_reset(). */
typedef struct {
    int encrypts; /* tickets issued */
    int decrypts; /* tickets accepted (key name known) */
    int renewals; /* ... of which answered "renew" */
    int unknown; /* tickets with a foreign key name */
} io_ticket_stats;

void io_ticket_stats_reset(void);
io_ticket_stats io_ticket_stats_get(void);

/* ---- client certificate --------------------------------------------------- */

/* A P-256 self-signed client certificate, made once; NULL on failure. */
X509 *io_client_cert(void);
/* Loads that certificate and its key into |ctx|; returns 1 on success. */
int io_use_client_cert(SSL_CTX *ctx);

/*
 * Server verify callbacks.  io_verify_accept_ours accepts exactly the test's
 * client certificate (it is self-signed, so OpenSSL's own verdict is "no"),
 * io_verify_reject_all refuses any certificate.  Both count their calls.
 */
int io_verify_accept_ours(int preverify_ok, X509_STORE_CTX *store);
int io_verify_reject_all(int preverify_ok, X509_STORE_CTX *store);
int io_verify_calls(void);

/* ---- a live connection ---------------------------------------------------- */

/* What the two ends wrote, as their message callbacks saw it. */
typedef struct {
    int hello_requests; /* HelloRequest sent by the server */
    int client_hellos; /* ClientHello sent by the client */
    int cert_requests; /* CertificateRequest sent by the server */
    int client_certs; /* Certificate sent by the client */
    int tickets; /* NewSessionTicket sent by the server */
    int server_finished; /* Finished sent by the server */
    int client_finished; /* Finished sent by the client */
    int server_alert; /* last fatal alert the server sent, -1 if none */
    int client_alert; /* last fatal alert the client sent, -1 if none */
    int warning_alerts; /* warning alerts other than close_notify, any end */
} io_wire;

typedef struct {
    SSL *client;
    SSL *server;
    io_wire wire;
} io_conn;

/*
 * Makes the two SSLs, joined by a BIO pair.  The client offers a fresh copy
 * of |offer| if it is not NULL.  Returns 1 on success; io_conn_close()
 * releases everything in any case.
 */
int io_conn_open(io_conn *c, SSL_CTX *sctx, SSL_CTX *cctx,
    const SSL_SESSION *offer);
/* Runs the first handshake; 1 if both ends completed it. */
int io_conn_handshake(io_conn *c);
/*
 * Server-initiated renegotiation: SSL_renegotiate() on the server, then both
 * ends are pumped with SSL_read() until the server's new handshake has
 * finished and the client is out of init, or one end fails.  Returns 1 if the
 * renegotiation completed on both ends.
 */
int io_conn_server_renegotiate(io_conn *c);
/* One byte each way over the current keys; 1 on success. */
int io_conn_exchange(io_conn *c);
/* Shuts both ends down (so the sessions stay resumable) and frees them. */
void io_conn_close(io_conn *c);

/* Frees the client key and certificate. */
void io_cleanup(void);

#endif
