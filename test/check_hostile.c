/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Hostile peers (issue 6).  Hand-built ClientHellos and broken records are
 * fed to an emsguard server SSL through memory BIOs, and a real client turns
 * EMS off (or on) for a renegotiation.  Each case asserts that the server
 * fails cleanly with the exact alert OpenSSL 3.0 sends, that it never hangs
 * (every loop is bounded), and that the same SSL_CTX then still serves an EMS
 * client (full handshake and resumption) and a legacy client, with the
 * emsguard counters exactly where they should be.
 *
 *   BUILD=build build/test/check_hostile
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/tls1.h>
#include "emsguard.h"
#include "harness.h"
#include "harness_check.h"

/* SSL calls per phase: memory BIOs never block, so a few always suffice. */
#define MAX_STEPS 32
#define NO_ALERT (-1)

/* The alerts OpenSSL 3.0.22 sends, as measured (see the case tables). */
#define AL_DECODE_ERROR SSL_AD_DECODE_ERROR /* 50 */
#define AL_ILLEGAL_PARAMETER SSL_AD_ILLEGAL_PARAMETER /* 47 */
#define AL_HANDSHAKE_FAILURE SSL_AD_HANDSHAKE_FAILURE /* 40 */
#define AL_RECORD_OVERFLOW SSL_AD_RECORD_OVERFLOW /* 22 */
#define AL_UNEXPECTED_MESSAGE SSL_AD_UNEXPECTED_MESSAGE /* 10 */

/* ---- a ClientHello builder ---------------------------------------------- */

typedef struct {
    unsigned char b[4096];
    size_t n;
} bytes;

static void put(bytes *o, const void *p, size_t n)
{
    ck_assert_msg(o->n + n <= sizeof(o->b), "ClientHello builder overflow");
    if (n > 0)
        memcpy(o->b + o->n, p, n);
    o->n += n;
}

static void set_int(bytes *o, size_t at, unsigned long v, int width)
{
    int i;

    for (i = 0; i < width; i++)
        o->b[at + (size_t)i] = (unsigned char)(v >> (8 * (width - 1 - i)));
}

static void put_int(bytes *o, unsigned long v, int width)
{
    size_t at = o->n;
    unsigned char zero[4] = { 0 };

    put(o, zero, (size_t)width);
    set_int(o, at, v, width);
}

/* A length field to fill in once what it covers is written. */
static size_t open_len(bytes *o, int width)
{
    size_t at = o->n;

    put_int(o, 0, width);
    return at;
}

static void close_len(bytes *o, size_t at, int width)
{
    set_int(o, at, (unsigned long)(o->n - at - (size_t)width), width);
}

typedef struct {
    unsigned type;
    const unsigned char *body;
    size_t len;
    size_t claim_extra; /* added to the length field: a lying extension */
} ext;

/* Just enough for OpenSSL to pick ECDHE-ECDSA with the harness's P-256 key. */
static const unsigned char groups[] = { 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17 };
static const unsigned char point_formats[] = { 0x01, 0x00 };
static const unsigned char sigalgs[] = { 0x00, 0x04, 0x04, 0x03, 0x08, 0x04 };
static const unsigned char one_byte[] = { 0x00 };
static const unsigned char suites[] = {
    0xc0, 0x2b, 0xc0, 0x2c, /* ECDHE-ECDSA-AES128/256-GCM */
    0x00, 0xff /* TLS_EMPTY_RENEGOTIATION_INFO_SCSV */
};

#define EXT_GROUPS { TLSEXT_TYPE_supported_groups, groups, sizeof(groups), 0 }
#define EXT_POINTS { TLSEXT_TYPE_ec_point_formats, point_formats, sizeof(point_formats), 0 }
#define EXT_SIGALGS { TLSEXT_TYPE_signature_algorithms, sigalgs, sizeof(sigalgs), 0 }
#define EXT_EMS { TLSEXT_TYPE_extended_master_secret, NULL, 0, 0 }

#define RECORD_LEN_AT 3 /* 2 bytes: type(1) version(2) length(2) */
#define HS_LEN_AT 6 /* 3 bytes: record header(5) msg_type(1) length(3) */

/* One TLS 1.2 ClientHello in one handshake record, extensions as given. */
static void build_hello(bytes *o, const ext *exts, size_t n_exts)
{
    size_t rec, hs, list, i;
    unsigned char random[32];

    memset(o, 0, sizeof(*o));
    for (i = 0; i < sizeof(random); i++)
        random[i] = (unsigned char)(0xa0 + i);
    put_int(o, SSL3_RT_HANDSHAKE, 1);
    put_int(o, TLS1_VERSION, 2); /* record version of a first ClientHello */
    rec = open_len(o, 2);
    put_int(o, SSL3_MT_CLIENT_HELLO, 1);
    hs = open_len(o, 3);
    put_int(o, TLS1_2_VERSION, 2);
    put(o, random, sizeof(random));
    put_int(o, 0, 1); /* no session ID */
    put_int(o, sizeof(suites), 2);
    put(o, suites, sizeof(suites));
    put_int(o, 1, 1); /* one compression method: null */
    put_int(o, 0, 1);
    list = open_len(o, 2);
    for (i = 0; i < n_exts; i++) {
        put_int(o, exts[i].type, 2);
        put_int(o, exts[i].len + exts[i].claim_extra, 2);
        put(o, exts[i].body, exts[i].len);
    }
    close_len(o, list, 2);
    close_len(o, hs, 3);
    close_len(o, rec, 2);
}

static unsigned get16(const unsigned char *p)
{
    return ((unsigned)p[0] << 8) | p[1];
}

static size_t get24(const unsigned char *p)
{
    return ((size_t)p[0] << 16) | ((size_t)p[1] << 8) | p[2];
}

/*
 * How many times extension |type| occurs in a ClientHello handshake message
 * (header included), or -1 if the message does not parse.
 */
static int hello_ext_count(const unsigned char *p, size_t len, unsigned type)
{
    size_t off = 4 + 2 + 32, end;
    int count = 0;

    if (len < 4 || p[0] != SSL3_MT_CLIENT_HELLO || get24(p + 1) != len - 4
        || len < off + 1)
        return -1;
    off += 1 + p[off]; /* session ID */
    if (len < off + 2)
        return -1;
    off += 2 + get16(p + off); /* cipher suites */
    if (len < off + 1)
        return -1;
    off += 1 + p[off]; /* compression methods */
    if (len < off + 2 || (end = off + 2 + get16(p + off)) != len)
        return -1;
    for (off += 2; off + 4 <= end; off += 4 + get16(p + off + 2))
        count += get16(p + off) == type;
    return off == end ? count : -1;
}

/* ---- what the server wrote ------------------------------------------------ */

typedef struct {
    size_t written; /* bytes */
    int records_ok; /* the bytes are whole TLS records */
    int alert_level, alert; /* the first alert, or NO_ALERT */
    int server_hello; /* a ServerHello was sent ... */
    unsigned sh_version; /* ... with this version */
    int sh_ems; /* ... and extension 23 */
} server_output;

static void read_server_hello(const unsigned char *p, size_t len, server_output *o)
{
    size_t off = 2 + 32;

    if (len < off + 1)
        return;
    o->server_hello = 1;
    o->sh_version = get16(p);
    off += 1 + p[off]; /* session ID */
    off += 2 + 1; /* cipher suite, compression */
    if (len < off + 2)
        return;
    for (off += 2; off + 4 <= len; off += 4 + get16(p + off + 2))
        if (get16(p + off) == TLSEXT_TYPE_extended_master_secret)
            o->sh_ems = 1;
}

/* Splits plaintext server output into records; reads alerts and ServerHello. */
static void parse_output(const unsigned char *p, size_t n, server_output *o)
{
    static unsigned char hs[65536];
    size_t off = 0, hs_len = 0, len;

    memset(o, 0, sizeof(*o));
    o->written = n;
    o->alert = o->alert_level = NO_ALERT;
    while (off + 5 <= n && off + 5 + (len = get16(p + off + 3)) <= n) {
        const unsigned char *body = p + off + 5;

        if (p[off] == SSL3_RT_ALERT && len >= 2 && o->alert == NO_ALERT) {
            o->alert_level = body[0];
            o->alert = body[1];
        } else if (p[off] == SSL3_RT_HANDSHAKE && hs_len + len <= sizeof(hs)) {
            memcpy(hs + hs_len, body, len);
            hs_len += len;
        }
        off += 5 + len;
    }
    o->records_ok = off == n;
    if (hs_len >= 4 && hs[0] == SSL3_MT_SERVER_HELLO && 4 + get24(hs + 1) <= hs_len)
        read_server_hello(hs + 4, get24(hs + 1), o);
}

/* ---- what a test owns ------------------------------------------------------ */

/*
 * Everything a test allocates is registered here and freed by the teardown,
 * also when an assertion fails half-way: the suite runs without fork, under
 * LeakSanitizer, and a failure should not bury its message under leaks.
 */
#define MAX_OWNED 64

static struct {
    SSL *ssl[MAX_OWNED];
    SSL_SESSION *sess[MAX_OWNED];
    SSL_CTX *ctx[MAX_OWNED];
    size_t n_ssl, n_sess, n_ctx;
} owned;

static SSL *own_ssl(SSL *ssl)
{
    ck_assert_ptr_nonnull(ssl);
    ck_assert_uint_lt(owned.n_ssl, MAX_OWNED);
    return owned.ssl[owned.n_ssl++] = ssl;
}

static SSL_SESSION *own_session(SSL_SESSION *sess)
{
    ck_assert_uint_lt(owned.n_sess, MAX_OWNED);
    return owned.sess[owned.n_sess++] = sess;
}

static SSL_CTX *own_ctx(SSL_CTX *ctx)
{
    ck_assert_ptr_nonnull(ctx);
    ck_assert_uint_lt(owned.n_ctx, MAX_OWNED);
    return owned.ctx[owned.n_ctx++] = ctx;
}

static void setup(void)
{
    memset(&owned, 0, sizeof(owned));
    hs_ext_cache_reset();
    hs_set_sni(NULL);
}

static void teardown(void)
{
    size_t i;

    for (i = 0; i < owned.n_ssl; i++)
        SSL_free(owned.ssl[i]); /* and its BIOs */
    for (i = 0; i < owned.n_sess; i++)
        SSL_SESSION_free(owned.sess[i]);
    for (i = 0; i < owned.n_ctx; i++)
        SSL_CTX_free(owned.ctx[i]);
    memset(&owned, 0, sizeof(owned));
    hs_ext_cache_reset();
    ERR_clear_error();
}

/* ---- a server SSL fed by hand ---------------------------------------------- */

typedef struct {
    SSL *ssl;
    BIO *in; /* what the server reads: our bytes */
    BIO *out; /* what it writes */
} hostile_conn;

typedef struct {
    int outcome; /* 1 handshake done, 0 waiting for input, -1 failed */
    int ssl_error; /* SSL_get_error() of the last call */
    char reason[160]; /* the first error on the queue, or "" */
    server_output wire; /* what it wrote during this run */
} run_result;

static void conn_open(hostile_conn *c, SSL_CTX *sctx)
{
    c->ssl = own_ssl(SSL_new(sctx));
    c->in = BIO_new(BIO_s_mem());
    c->out = BIO_new(BIO_s_mem());
    if (c->in == NULL || c->out == NULL) {
        BIO_free(c->in);
        BIO_free(c->out);
        ck_abort_msg("out of memory");
    }
    SSL_set_bio(c->ssl, c->in, c->out);
    SSL_set_accept_state(c->ssl);
}

static void conn_feed(hostile_conn *c, const unsigned char *p, size_t n)
{
    if (n > 0)
        ck_assert_int_eq(BIO_write(c->in, p, (int)n), (int)n);
}

/* From now on an empty input reads as end of file: the peer has closed. */
static void conn_eof(hostile_conn *c)
{
    BIO_set_mem_eof_return(c->in, 0);
}

static size_t drain(BIO *b, unsigned char *buf, size_t cap)
{
    size_t n = 0;
    int r;

    while (n < cap && (r = BIO_read(b, buf + n, (int)(cap - n))) > 0)
        n += (size_t)r;
    return n;
}

/* Steps the server until it finishes, fails, or needs input it lacks. */
static void conn_run(hostile_conn *c, run_result *r)
{
    static unsigned char out[65536];
    unsigned long err;
    int i, ret;

    memset(r, 0, sizeof(*r));
    for (i = 0; i < MAX_STEPS; i++) {
        if ((ret = SSL_do_handshake(c->ssl)) == 1) {
            r->outcome = 1;
            break;
        }
        r->ssl_error = SSL_get_error(c->ssl, ret);
        if (r->ssl_error == SSL_ERROR_WANT_READ && BIO_ctrl_pending(c->in) > 0)
            continue;
        r->outcome = (r->ssl_error == SSL_ERROR_WANT_READ
                         || r->ssl_error == SSL_ERROR_WANT_WRITE)
            ? 0
            : -1;
        break;
    }
    ck_assert_msg(i < MAX_STEPS, "server still busy after %d steps", MAX_STEPS);
    if ((err = ERR_peek_error()) != 0)
        ERR_error_string_n(err, r->reason, sizeof(r->reason));
    parse_output(out, drain(c->out, out, sizeof(out)), &r->wire);
}

static const char *alert_name(int alert)
{
    return alert == NO_ALERT ? "none" : SSL_alert_desc_string_long(alert);
}

static void print_case(const char *name, hs_mech mech, const run_result *r)
{
    printf("  %-48s %-14s alert %3d %-22s | %s\n", name, hs_mech_name(mech),
        r->wire.alert, alert_name(r->wire.alert),
        r->reason[0] ? r->reason : "(no error queued)");
}

/*
 * A clean rejection: the handshake failed, one fatal alert with |alert| went
 * out as a well-formed record, and poking the dead SSL again changes nothing.
 */
static void assert_rejected(hostile_conn *c, const run_result *r, int alert,
    const char *name)
{
    run_result again;

    ck_assert_msg(r->outcome == -1, "%s: server did not fail (outcome %d)", name, r->outcome);
    ck_assert_msg(r->ssl_error == SSL_ERROR_SSL, "%s: SSL_get_error %d, expected SSL_ERROR_SSL",
        name, r->ssl_error);
    ck_assert_msg(r->wire.records_ok, "%s: server output is not whole records", name);
    ck_assert_msg(!r->wire.server_hello, "%s: server sent a ServerHello", name);
    ck_assert_msg(r->wire.alert_level == SSL3_AL_FATAL, "%s: alert level %d, expected fatal",
        name, r->wire.alert_level);
    ck_assert_msg(r->wire.alert == alert, "%s: server sent alert %d (%s), expected %d (%s)",
        name, r->wire.alert, alert_name(r->wire.alert), alert, alert_name(alert));
    ERR_clear_error();
    conn_run(c, &again);
    ck_assert_msg(again.outcome == -1 && again.wire.written == 0,
        "%s: the failed SSL did something on a second call", name);
}

/* ---- the server still serves ------------------------------------------------ */

typedef uint64_t counts[EMSGUARD_CNT_MAX];

static SSL_CTX *policy_server(hs_mech mech)
{
    SSL_CTX *ctx = own_ctx(hs_server_ctx(mech, 0));
    EMSGUARD_POLICY *policy = EMSGUARD_POLICY_new();
    int ok = policy != NULL
        && EMSGUARD_POLICY_set(policy, EMSGUARD_EVENT_LOGGING, "0")
        && EMSGUARD_enable_policy(ctx, policy);

    EMSGUARD_POLICY_free(policy);
    ck_assert_msg(ok, "cannot enable the policy");
    return ctx;
}

static SSL_CTX *client(int flags)
{
    return own_ctx(hs_client_ctx(flags));
}

/* hs_handshake(), the client's session kept until the teardown. */
static void handshake(SSL_CTX *sctx, SSL_CTX *cctx, const SSL_SESSION *offer,
    hs_result *r)
{
    hs_handshake(sctx, cctx, offer, r);
    if (r->session != NULL)
        own_session(r->session);
}

static void assert_counters(const SSL_CTX *sctx, const counts want, const char *when)
{
    int i;

    for (i = 0; i < EMSGUARD_CNT_MAX; i++) {
        uint64_t v = 0;

        ck_assert_int_eq(EMSGUARD_CTX_get_counter(sctx, (EMSGUARD_COUNTER)i, &v), 1);
        ck_assert_msg(v == want[i], "%s: counter %s is %" PRIu64 ", expected %" PRIu64,
            when, EMSGUARD_counter_name((EMSGUARD_COUNTER)i), v, want[i]);
    }
}

/* What one full handshake of a legacy client costs on a policy server. */
static void count_legacy_full(hs_mech mech, counts want)
{
    want[EMSGUARD_CNT_FULL_HANDSHAKES]++;
    want[EMSGUARD_CNT_FULL_WITHOUT_EMS]++;
    /* Its session is dropped where this mechanism would have kept it. */
    if (mech == HS_MECH_TICKET)
        want[EMSGUARD_CNT_TICKETS_WITHHELD]++;
    else
        want[EMSGUARD_CNT_SESSIONS_NOT_CACHED]++;
}

/*
 * On the same ctx: an EMS client gets a full handshake and resumes it; a
 * legacy client gets a full handshake, and another when it tries to resume.
 */
static void assert_still_serving(SSL_CTX *sctx, hs_mech mech, counts want,
    const char *when)
{
    SSL_CTX *ems = client(0), *legacy = client(HS_NO_EMS);
    hs_result full, again, lfull, lagain;

    handshake(sctx, ems, NULL, &full);
    ck_assert_msg(full.ok && !full.reused && full.ems && full.hello_ems,
        "%s: EMS client: ok %d reused %d ems %d (server alert %d)", when,
        full.ok, full.reused, full.ems, full.server_alert);
    want[EMSGUARD_CNT_FULL_HANDSHAKES]++;
    handshake(sctx, ems, full.session, &again);
    ck_assert_msg(again.ok && again.reused && again.server_reused && again.ems,
        "%s: EMS client did not resume: ok %d reused %d/%d (server alert %d)", when,
        again.ok, again.reused, again.server_reused, again.server_alert);
    want[EMSGUARD_CNT_RESUMPTIONS]++;

    handshake(sctx, legacy, NULL, &lfull);
    ck_assert_msg(lfull.ok && !lfull.reused && !lfull.ems && !lfull.hello_ems,
        "%s: legacy client: ok %d reused %d ems %d (server alert %d)", when,
        lfull.ok, lfull.reused, lfull.ems, lfull.server_alert);
    count_legacy_full(mech, want);
    handshake(sctx, legacy, lfull.session, &lagain);
    ck_assert_msg(lagain.ok && !lagain.reused && !lagain.server_reused && !lagain.ems,
        "%s: legacy client's second handshake: ok %d reused %d/%d (server alert %d)",
        when, lagain.ok, lagain.reused, lagain.server_reused, lagain.server_alert);
    count_legacy_full(mech, want);
    assert_counters(sctx, want, when);
}

/* ---- positive control: the builder's ClientHello is accepted ---------------- */

static void control(SSL_CTX *sctx, hs_mech mech, int with_ems)
{
    const ext with[] = { EXT_GROUPS, EXT_POINTS, EXT_SIGALGS, EXT_EMS };
    const ext without[] = { EXT_GROUPS, EXT_POINTS, EXT_SIGALGS };
    hostile_conn c;
    run_result r;
    bytes in;

    if (with_ems)
        build_hello(&in, with, sizeof(with) / sizeof(with[0]));
    else
        build_hello(&in, without, sizeof(without) / sizeof(without[0]));
    ck_assert_int_eq(hello_ext_count(in.b + 5, in.n - 5,
                         TLSEXT_TYPE_extended_master_secret),
        with_ems);
    conn_open(&c, sctx);
    conn_feed(&c, in.b, in.n);
    conn_run(&c, &r);
    print_case(with_ems ? "control: well-formed, empty ext 23"
                        : "control: well-formed, no ext 23",
        mech, &r);
    ck_assert_msg(r.outcome == 0 && r.ssl_error == SSL_ERROR_WANT_READ,
        "control: server did not wait for the client's next flight (outcome %d, %s)",
        r.outcome, r.reason);
    ck_assert_msg(r.wire.records_ok && r.wire.server_hello && r.wire.alert == NO_ALERT,
        "control: no ServerHello (alert %d)", r.wire.alert);
    ck_assert_uint_eq(r.wire.sh_version, TLS1_2_VERSION);
    ck_assert_int_eq(r.wire.sh_ems, with_ems);
}

START_TEST(test_control_builder)
{
    hs_mech mech = (hs_mech)_i;
    SSL_CTX *sctx = policy_server(mech);
    counts want = { 0 };

    assert_still_serving(sctx, mech, want, "before");
    control(sctx, mech, 1);
    control(sctx, mech, 0);
    /* Unfinished handshakes count for nothing. */
    assert_counters(sctx, want, "after the controls");
    assert_still_serving(sctx, mech, want, "after the controls");
}
END_TEST

/* ---- malformed and duplicated extensions ------------------------------------ */

struct hello_case {
    const char *name;
    ext exts[6];
    size_t n_exts;
    int alert;
};

/*
 * RFC 7627 section 5.1: extension 23 is empty, anything else is
 * decode_error.  Duplicates: OpenSSL answers illegal_parameter
 * (SSL_R_BAD_EXTENSION) for any extension type it knows.
 */
static const struct hello_case hello_cases[] = {
    { "ext 23 with a 1-byte body",
        { EXT_GROUPS, EXT_POINTS, EXT_SIGALGS,
            { TLSEXT_TYPE_extended_master_secret, one_byte, 1, 0 } },
        4, AL_DECODE_ERROR },
    { "ext 23 claiming 4 bytes past the list end",
        { EXT_GROUPS, EXT_POINTS, EXT_SIGALGS,
            { TLSEXT_TYPE_extended_master_secret, NULL, 0, 4 } },
        4, AL_DECODE_ERROR },
    { "ext 23 twice",
        { EXT_GROUPS, EXT_POINTS, EXT_SIGALGS, EXT_EMS, EXT_EMS }, 5,
        AL_ILLEGAL_PARAMETER },
    { "ext 23 twice, not adjacent",
        { EXT_EMS, EXT_GROUPS, EXT_POINTS, EXT_SIGALGS, EXT_EMS }, 5,
        AL_ILLEGAL_PARAMETER },
    { "supported_groups twice (with ext 23)",
        { EXT_GROUPS, EXT_POINTS, EXT_SIGALGS, EXT_EMS, EXT_GROUPS }, 5,
        AL_ILLEGAL_PARAMETER },
    { "signature_algorithms twice (no ext 23)",
        { EXT_SIGALGS, EXT_GROUPS, EXT_POINTS, EXT_SIGALGS }, 4,
        AL_ILLEGAL_PARAMETER },
};
#define N_HELLO_CASES (sizeof(hello_cases) / sizeof(hello_cases[0]))

START_TEST(test_bad_hello)
{
    const struct hello_case *hc = &hello_cases[(size_t)_i / HS_MECH_COUNT];
    hs_mech mech = (hs_mech)(_i % HS_MECH_COUNT);
    SSL_CTX *sctx = policy_server(mech);
    counts want = { 0 };
    hostile_conn c;
    run_result r;
    bytes in;

    assert_still_serving(sctx, mech, want, "before");
    build_hello(&in, hc->exts, hc->n_exts);
    conn_open(&c, sctx);
    conn_feed(&c, in.b, in.n);
    conn_run(&c, &r);
    print_case(hc->name, mech, &r);
    assert_rejected(&c, &r, hc->alert, hc->name);
    assert_counters(sctx, want, hc->name);
    assert_still_serving(sctx, mech, want, hc->name);
}
END_TEST

/* ---- truncated and oversized records ---------------------------------------- */

struct trunc_case {
    const char *name;
    /* Builds the input from a well-formed ClientHello; returns bytes to send. */
    size_t (*make)(bytes *in);
    int waits; /* the server must wait for more before the EOF */
    int alert;
};

static const ext good_exts[] = { EXT_GROUPS, EXT_POINTS, EXT_SIGALGS, EXT_EMS };

static size_t good_hello(bytes *in)
{
    build_hello(in, good_exts, sizeof(good_exts) / sizeof(good_exts[0]));
    return in->n;
}

static size_t cut_in_body(bytes *in)
{
    return 5 + (good_hello(in) - 5) / 2;
}

static size_t cut_in_header(bytes *in)
{
    good_hello(in);
    return 3;
}

static size_t record_longer_than_sent(bytes *in)
{
    size_t n = good_hello(in);

    set_int(in, RECORD_LEN_AT, (unsigned long)(n - 5 + 100), 2);
    return n;
}

static size_t record_over_max(bytes *in)
{
    size_t n = good_hello(in);

    set_int(in, RECORD_LEN_AT, 0xffff, 2);
    return n;
}

static size_t handshake_longer_than_record(bytes *in)
{
    size_t n = good_hello(in);

    set_int(in, HS_LEN_AT, (unsigned long)(n - 9 + 64), 3);
    return n;
}

static size_t handshake_over_max(bytes *in)
{
    size_t n = good_hello(in);

    set_int(in, HS_LEN_AT, 0xffffff, 3);
    return n;
}

/* The rest of the message never comes: application data does instead. */
static size_t handshake_then_app_data(bytes *in)
{
    static const unsigned char app[] = { SSL3_RT_APPLICATION_DATA, 0x03, 0x03, 0x00, 0x04, 'd', 'a', 't', 'a' };

    handshake_longer_than_record(in);
    put(in, app, sizeof(app));
    return in->n;
}

/* Alerts as OpenSSL 3.0.22 sends them; an EOF mid-record is decode_error. */
static const struct trunc_case trunc_cases[] = {
    { "record cut in its body, then EOF", cut_in_body, 1, AL_DECODE_ERROR },
    { "record cut in its header, then EOF", cut_in_header, 1, AL_DECODE_ERROR },
    { "record length 100 past the data, then EOF", record_longer_than_sent, 1,
        AL_DECODE_ERROR },
    { "record length 0xffff", record_over_max, 0, AL_RECORD_OVERFLOW },
    { "handshake length 64 past the record, then EOF", handshake_longer_than_record, 1,
        AL_DECODE_ERROR },
    { "handshake length 0xffffff", handshake_over_max, 0, AL_ILLEGAL_PARAMETER },
    { "handshake length past the record, then app data", handshake_then_app_data, 0,
        AL_UNEXPECTED_MESSAGE },
};
#define N_TRUNC_CASES (sizeof(trunc_cases) / sizeof(trunc_cases[0]))

START_TEST(test_truncated)
{
    const struct trunc_case *tc = &trunc_cases[(size_t)_i / HS_MECH_COUNT];
    hs_mech mech = (hs_mech)(_i % HS_MECH_COUNT);
    SSL_CTX *sctx = policy_server(mech);
    counts want = { 0 };
    hostile_conn c;
    run_result r;
    bytes in;
    size_t n;

    assert_still_serving(sctx, mech, want, "before");
    n = tc->make(&in);
    conn_open(&c, sctx);
    conn_feed(&c, in.b, n);
    conn_run(&c, &r);
    if (tc->waits) {
        /* A short read is not an error yet: the rest may be in flight. */
        ck_assert_msg(r.outcome == 0 && r.ssl_error == SSL_ERROR_WANT_READ
                && r.wire.written == 0,
            "%s: server did not wait quietly (outcome %d, wrote %zu, %s)", tc->name,
            r.outcome, r.wire.written, r.reason);
        conn_eof(&c);
        conn_run(&c, &r);
    }
    print_case(tc->name, mech, &r);
    assert_rejected(&c, &r, tc->alert, tc->name);
    assert_counters(sctx, want, tc->name);
    assert_still_serving(sctx, mech, want, tc->name);
}
END_TEST

/* ---- EMS changed by a renegotiation ------------------------------------------ */

#define MAX_HELLOS 4

/* What one end's message callback saw. */
typedef struct {
    int hellos; /* ClientHellos received (server) */
    int hello_ems[MAX_HELLOS]; /* ext 23 count in each, -1 unparsable */
    int alert; /* first fatal alert this end sent, or NO_ALERT */
    int warning; /* first warning alert this end sent, or NO_ALERT */
} msg_view;

static void on_message(int write_p, int version, int content_type,
    const void *buf, size_t len, SSL *ssl, void *arg)
{
    msg_view *v = arg;
    const unsigned char *p = buf;

    (void)version;
    (void)ssl;
    if (write_p && content_type == SSL3_RT_ALERT && len >= 2) {
        if (p[0] == SSL3_AL_FATAL && v->alert == NO_ALERT)
            v->alert = p[1];
        else if (p[0] == SSL3_AL_WARNING && v->warning == NO_ALERT)
            v->warning = p[1];
    } else if (!write_p && content_type == SSL3_RT_HANDSHAKE && len >= 1
        && p[0] == SSL3_MT_CLIENT_HELLO && v->hellos < MAX_HELLOS) {
        /* Decrypted by now: this is what came over the wire. */
        v->hello_ems[v->hellos++] = hello_ext_count(p, len,
            TLSEXT_TYPE_extended_master_secret);
    }
}

/* A client and a server SSL joined by four memory BIOs. */
typedef struct {
    SSL *client, *server;
    BIO *c_in, *c_out, *s_in, *s_out;
    msg_view cview, sview;
} mem_link;

static void link_open(mem_link *l, SSL_CTX *sctx, SSL_CTX *cctx)
{
    memset(l, 0, sizeof(*l));
    l->cview.alert = l->sview.alert = NO_ALERT;
    l->cview.warning = l->sview.warning = NO_ALERT;
    l->client = own_ssl(SSL_new(cctx));
    l->server = own_ssl(SSL_new(sctx));
    l->c_in = BIO_new(BIO_s_mem());
    l->c_out = BIO_new(BIO_s_mem());
    l->s_in = BIO_new(BIO_s_mem());
    l->s_out = BIO_new(BIO_s_mem());
    if (l->c_in == NULL || l->c_out == NULL || l->s_in == NULL || l->s_out == NULL) {
        BIO_free(l->c_in);
        BIO_free(l->c_out);
        BIO_free(l->s_in);
        BIO_free(l->s_out);
        ck_abort_msg("out of memory");
    }
    SSL_set_bio(l->client, l->c_in, l->c_out);
    SSL_set_bio(l->server, l->s_in, l->s_out);
    SSL_set_connect_state(l->client);
    SSL_set_accept_state(l->server);
    SSL_set_msg_callback(l->client, on_message);
    SSL_set_msg_callback_arg(l->client, &l->cview);
    SSL_set_msg_callback(l->server, on_message);
    SSL_set_msg_callback_arg(l->server, &l->sview);
}

static size_t pump(BIO *from, BIO *to)
{
    unsigned char buf[4096];
    size_t moved = 0;
    int n;

    while ((n = BIO_read(from, buf, sizeof(buf))) > 0) {
        ck_assert_int_eq(BIO_write(to, buf, n), n);
        moved += (size_t)n;
    }
    return moved;
}

static size_t pump_both(mem_link *l)
{
    size_t moved = pump(l->c_out, l->s_in);

    return moved + pump(l->s_out, l->c_in);
}

/*
 * One step of one end: the handshake while one is in progress, SSL_read
 * otherwise (which takes part in a renegotiation), as an application would.  Both ends share this
 * thread's error queue, so it is emptied first and the reason kept.
 * Returns 1 progress or data, 0 waiting, -1 failed.
 */
static int link_step(SSL *ssl, char *reason, size_t reason_len)
{
    unsigned char b;
    unsigned long err;
    int ret, e;

    ERR_clear_error();
    if (SSL_in_init(ssl))
        ret = SSL_do_handshake(ssl);
    else
        ret = SSL_read(ssl, &b, 1);
    if (ret > 0)
        return 1;
    e = SSL_get_error(ssl, ret);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    if (reason[0] == '\0') {
        if ((err = ERR_peek_error()) != 0)
            ERR_error_string_n(err, reason, reason_len);
        else
            snprintf(reason, reason_len, "SSL_get_error %d", e);
    }
    return -1;
}

typedef struct {
    int completed; /* both ends finished a second handshake */
    int server_failed, client_failed;
    char server_reason[160], client_reason[160];
} link_result;

/* Steps both ends until one fails or nothing moves any more. */
static void link_run(mem_link *l, link_result *r)
{
    int c = 0, s = 0, i;

    for (i = 0; i < MAX_STEPS; i++) {
        size_t moved;

        c = link_step(l->client, r->client_reason, sizeof(r->client_reason));
        moved = pump_both(l);
        s = link_step(l->server, r->server_reason, sizeof(r->server_reason));
        moved += pump_both(l);
        if (c < 0 || s < 0) {
            /* Let the other end read the alert. */
            if (c >= 0)
                c = link_step(l->client, r->client_reason, sizeof(r->client_reason));
            if (s >= 0)
                s = link_step(l->server, r->server_reason, sizeof(r->server_reason));
            pump_both(l);
            break;
        }
        if (moved == 0 && !SSL_in_init(l->client) && !SSL_in_init(l->server))
            break;
    }
    ck_assert_msg(i < MAX_STEPS, "connection still busy after %d steps", MAX_STEPS);
    r->client_failed = c < 0;
    r->server_failed = s < 0;
    r->completed = c >= 0 && s >= 0 && SSL_is_init_finished(l->client)
        && SSL_is_init_finished(l->server);
}

static int link_handshake(mem_link *l)
{
    link_result r;

    memset(&r, 0, sizeof(r));
    link_run(l, &r);
    return r.completed && l->sview.hellos == 1;
}

/* One byte from client to server: the connection still carries data. */
static int link_data_flows(mem_link *l)
{
    unsigned char b = 0;
    int i, s = 0;

    ERR_clear_error();
    if (SSL_write(l->client, "x", 1) != 1)
        return 0;
    for (i = 0; i < MAX_STEPS && s == 0; i++) {
        pump_both(l);
        if ((s = SSL_read(l->server, &b, 1)) <= 0)
            s = SSL_get_error(l->server, s) == SSL_ERROR_WANT_READ ? 0 : -1;
    }
    return s == 1 && b == 'x';
}

typedef enum {
    CLIENT_INITIATED, /* the client sends a new ClientHello */
    SERVER_INITIATED /* the server sends HelloRequest, the client answers */
} reneg_trigger;

/* Completed means: a new ClientHello, and both ends finished its handshake. */
static void renegotiate(mem_link *l, reneg_trigger who, link_result *r)
{
    SSL *initiator = who == CLIENT_INITIATED ? l->client : l->server;
    int hellos = l->sview.hellos, ret;

    memset(r, 0, sizeof(*r));
    ck_assert_int_eq(SSL_renegotiate(initiator), 1);
    /* Sends the ClientHello or the HelloRequest. */
    ERR_clear_error();
    ret = SSL_do_handshake(initiator);
    ck_assert_msg(ret == 1 || SSL_get_error(initiator, ret) == SSL_ERROR_WANT_READ,
        "cannot start the renegotiation");
    pump_both(l);
    link_run(l, r);
    r->completed = r->completed && l->sview.hellos == hellos + 1
        && !SSL_renegotiate_pending(initiator);
}

static const char *reason_or_none(const char *reason)
{
    return reason[0] ? reason : "(no error queued)";
}

/*
 * A connection whose first handshake had EMS |first_ems| renegotiates with EMS
 * the other way round: the client flips SSL_OP_NO_EXTENDED_MASTER_SECRET on
 * its SSL.  The ClientHellos the server received must show the flip; the
 * server must refuse the renegotiation.  Client-initiated renegotiation is
 * off by default in OpenSSL 3.0, so that trigger runs with
 * SSL_OP_ALLOW_CLIENT_RENEGOTIATION on the server SSL; a server-initiated one
 * (HelloRequest) needs nothing, and there the client also offers the
 * connection's session.  A HelloRequest or a refused renegotiation is no
 * handshake and must not be counted as one.
 */
static void reneg_flip(hs_mech mech, reneg_trigger who, int first_ems)
{
    SSL_CTX *sctx = policy_server(mech), *cctx = client(0);
    char name[80];
    counts want = { 0 };
    link_result r;
    mem_link l;
    int completed_ems = -1;

    snprintf(name, sizeof(name), "%s renegotiation %s EMS",
        who == CLIENT_INITIATED ? "client" : "server", first_ems ? "drops" : "adds");
    assert_still_serving(sctx, mech, want, "before");
    link_open(&l, sctx, cctx);
    if (who == CLIENT_INITIATED)
        SSL_set_options(l.server, SSL_OP_ALLOW_CLIENT_RENEGOTIATION);
    if (!first_ems)
        SSL_set_options(l.client, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    ck_assert_msg(link_handshake(&l), "%s: first handshake failed", name);
    ck_assert_int_eq(SSL_version(l.server), TLS1_2_VERSION);
    ck_assert_int_eq(SSL_get_extms_support(l.server), first_ems);
    ck_assert_int_eq(SSL_get_extms_support(l.client), first_ems);
    ck_assert_msg(link_data_flows(&l), "%s: no data after the first handshake", name);
    if (first_ems)
        want[EMSGUARD_CNT_FULL_HANDSHAKES]++;
    else
        count_legacy_full(mech, want);
    assert_counters(sctx, want, "after the first handshake");

    if (first_ems)
        SSL_set_options(l.client, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    else
        SSL_clear_options(l.client, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    renegotiate(&l, who, &r);

    ck_assert_int_eq(l.sview.hellos, 2);
    ck_assert_int_eq(l.sview.hello_ems[0], first_ems);
    ck_assert_msg(l.sview.hello_ems[1] == !first_ems,
        "%s: the renegotiation ClientHello carries ext 23 %d times", name,
        l.sview.hello_ems[1]);
    if (r.completed)
        completed_ems = SSL_get_extms_support(l.server);
    printf("  %-48s %-14s alert %3d %-22s | %s%s\n", name, hs_mech_name(mech),
        l.sview.alert, alert_name(l.sview.alert), reason_or_none(r.server_reason),
        !r.completed ? ""
            : completed_ems == 1 ? " [ACCEPTED: renegotiated with EMS]"
                                 : " [ACCEPTED: renegotiated without EMS]");
    if (r.completed)
        ck_abort_msg("GAP: %s (%s): the server completed a renegotiation that %s EMS "
                     "(first handshake %s EMS, renegotiated %s EMS); it must refuse it",
            name, hs_mech_name(mech), first_ems ? "drops" : "adds",
            first_ems ? "with" : "without", completed_ems == 1 ? "with" : "without");
    ck_assert_msg(r.server_failed, "%s: the server did not fail", name);
    ck_assert_msg(l.sview.alert == AL_HANDSHAKE_FAILURE,
        "%s: server sent alert %d (%s), expected %d (handshake_failure)", name,
        l.sview.alert, alert_name(l.sview.alert), AL_HANDSHAKE_FAILURE);
    ck_assert_msg(r.client_failed, "%s: the client did not see the failure", name);
    /*
     * emsguard's ClientHello callback rejects the change in either
     * direction before libssl looks at sessions or tickets, and counts it as
     * an inconsistent handshake.
     */
    want[EMSGUARD_CNT_ABORTED_INCONSISTENT]++;
    assert_counters(sctx, want, name);
    assert_still_serving(sctx, mech, want, name);
}

START_TEST(test_client_reneg_drops_ems)
{
    reneg_flip((hs_mech)_i, CLIENT_INITIATED, 1);
}
END_TEST

START_TEST(test_client_reneg_adds_ems)
{
    reneg_flip((hs_mech)_i, CLIENT_INITIATED, 0);
}
END_TEST

START_TEST(test_server_reneg_drops_ems)
{
    reneg_flip((hs_mech)_i, SERVER_INITIATED, 1);
}
END_TEST

START_TEST(test_server_reneg_adds_ems)
{
    reneg_flip((hs_mech)_i, SERVER_INITIATED, 0);
}
END_TEST

/*
 * Control: renegotiations that keep EMS complete, with EMS, both triggers,
 * and are counted as the handshakes they are.
 */
START_TEST(test_reneg_keeps_ems)
{
    hs_mech mech = (hs_mech)_i;
    SSL_CTX *sctx = policy_server(mech), *cctx = client(0);
    counts want = { 0 };
    link_result r;
    mem_link l;

    link_open(&l, sctx, cctx);
    SSL_set_options(l.server, SSL_OP_ALLOW_CLIENT_RENEGOTIATION);
    ck_assert(link_handshake(&l));
    renegotiate(&l, CLIENT_INITIATED, &r);
    ck_assert_msg(r.completed, "client renegotiation failed: alert %d, %s", l.sview.alert,
        reason_or_none(r.server_reason));
    ck_assert_int_eq(l.sview.hello_ems[1], 1);
    ck_assert_int_eq(SSL_get_extms_support(l.server), 1);
    renegotiate(&l, SERVER_INITIATED, &r);
    ck_assert_msg(r.completed, "server renegotiation failed: alert %d, %s", l.sview.alert,
        reason_or_none(r.server_reason));
    ck_assert_int_eq(l.sview.hello_ems[2], 1);
    ck_assert_int_eq(SSL_get_extms_support(l.server), 1);
    /* Answering a HelloRequest, the client offers the current session. */
    ck_assert_int_eq(SSL_session_reused(l.server), 1);
    ck_assert_msg(link_data_flows(&l), "no data after the renegotiations");
    /* The first handshake, the client's renegotiation; then a resumption. */
    want[EMSGUARD_CNT_FULL_HANDSHAKES] += 2;
    want[EMSGUARD_CNT_RESUMPTIONS]++;
    assert_counters(sctx, want, "renegotiations with EMS");
}
END_TEST

/*
 * OpenSSL 3.0's default: a client-initiated renegotiation is refused with a
 * no_renegotiation warning, whatever its EMS; the client then gives up.
 */
START_TEST(test_client_reneg_refused_by_default)
{
    hs_mech mech = (hs_mech)_i;
    SSL_CTX *sctx = policy_server(mech), *cctx = client(0);
    counts want = { 0 };
    link_result r;
    mem_link l;

    link_open(&l, sctx, cctx);
    ck_assert(link_handshake(&l));
    want[EMSGUARD_CNT_FULL_HANDSHAKES]++;
    SSL_set_options(l.client, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    renegotiate(&l, CLIENT_INITIATED, &r);
    printf("  %-48s %-14s alert %3d %-22s | client: %s\n", "client renegotiation, default server (warning)",
        hs_mech_name(mech), l.sview.warning, alert_name(l.sview.warning),
        reason_or_none(r.client_reason));
    ck_assert_msg(!r.completed, "renegotiation completed");
    ck_assert_int_eq(l.sview.hellos, 2);
    ck_assert_int_eq(l.sview.hello_ems[1], 0);
    ck_assert_int_eq(l.sview.warning, SSL_AD_NO_RENEGOTIATION);
    ck_assert_int_eq(l.sview.alert, NO_ALERT);
    ck_assert_msg(r.client_failed, "the client did not give up");
    ck_assert_int_eq(l.cview.alert, AL_HANDSHAKE_FAILURE);
    /* Nothing was negotiated: the counters must not move. */
    assert_counters(sctx, want, "refused renegotiation");
    assert_still_serving(sctx, mech, want, "refused renegotiation");
}
END_TEST

static Suite *hostile_suite(void)
{
    Suite *s = suite_create("hostile");
    TCase *tc;

    tc = tcase_create("builder-control");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_control_builder, 0, HS_MECH_COUNT);
    suite_add_tcase(s, tc);

    tc = tcase_create("extensions");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_bad_hello, 0, (int)N_HELLO_CASES * HS_MECH_COUNT);
    suite_add_tcase(s, tc);

    tc = tcase_create("records");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_truncated, 0, (int)N_TRUNC_CASES * HS_MECH_COUNT);
    suite_add_tcase(s, tc);

    tc = tcase_create("renegotiation");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_reneg_keeps_ems, 0, HS_MECH_COUNT);
    tcase_add_loop_test(tc, test_client_reneg_refused_by_default, 0, HS_MECH_COUNT);
    tcase_add_loop_test(tc, test_client_reneg_drops_ems, 0, HS_MECH_COUNT);
    tcase_add_loop_test(tc, test_server_reneg_drops_ems, 0, HS_MECH_COUNT);
    tcase_add_loop_test(tc, test_client_reneg_adds_ems, 0, HS_MECH_COUNT);
    tcase_add_loop_test(tc, test_server_reneg_adds_ems, 0, HS_MECH_COUNT);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    printf("  %-48s %-14s %-32s | %s\n", "case", "server", "alert the server sent", "server's error");
    return hs_run_suite(hostile_suite);
}
