#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `emsguard probe` against local peers on 127.0.0.1: every verdict row, the
# exit status, the text report, and every --json document validated against
# docs/probe.schema.json (python3-jsonschema).
#
#   BUILD=build bash test/probe.sh             (make integration-check)
#   BUILD=build-san SANITIZE=1 bash test/probe.sh
#
#   peer                                   expected
#   stock s_server, EMS                    findings: resumes non-EMS sessions
#   stock s_server, legacy (no EMS)        findings: no EMS
#   eg_peer server (emsguard API)          compliant
#   s_server + libemsguard-preload.so      compliant
#   gnutls-serv / gnutls-serv %NO_SESSION_HASH   findings
#   probe_peer dhe (keeps leading zeros)   findings: DHE leading-zero failures
#     (ECDHE preferred; and --dhe-first: DHE in every handshake)
#   probe_peer dhe --correct --renew       leading zeros handled, ticket renewal
#   vsftpd require_ssl_reuse=YES (--starttls ftp): legacy, EMS (findings),
#   and with libemsguard-preload.so (compliant)
#   error paths: closed port, non-TLS listener, hanging server (timeout),
#   garbage, truncated record, TLS 1.3-only server, DNS failure, usage.
#
# The JSON document is the one asserted row by row; the text report of the
# same peer must show the same rows with the same status.  Every case prints
# `PASS name` or `FAIL name: details`; the last line is
# `N passed, M failed, K skipped` (test/lib.sh).  A missing peer program or
# python3-jsonschema is a FAIL.  vsftpd must be started as root.
#
# Environment: BUILD, SANITIZE, OPENSSL, GNUTLS_SERV, VSFTPD, KEEP_TMP=1,
# VERBOSE=1.
set -u

BUILD=${BUILD:-build}
OPENSSL=${OPENSSL:-openssl}
GNUTLS_SERV=${GNUTLS_SERV:-gnutls-serv}
VSFTPD=${VSFTPD:-/usr/sbin/vsftpd}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
case "$BUILD" in
/*) BDIR=$BUILD ;;
*) BDIR=$ROOT/$BUILD ;;
esac
EMSG=$BDIR/tools/emsguard
PEER=$BDIR/test/probe_peer
EG=$BDIR/test/eg_peer
PRELOAD=$BDIR/libemsguard-preload.so
SCHEMA=$ROOT/docs/probe.schema.json

TO=20            # timeout for openssl helpers, seconds
PTO=180          # bound on one whole probe run, seconds
SERVER_PIDS=()
# shellcheck source=test/lib.sh
. "$HERE/lib.sh"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/eg-probe.XXXXXX") || exit 2
trap cleanup_servers EXIT
trap 'exit 130' INT TERM HUP

prereq_fail() {
    echo "probe.sh: $1" >&2
    fail_now 00-prerequisites "$1"
    summary
    exit 1
}

for f in "$EMSG" "$PEER" "$EG" "$PRELOAD"; do
    [ -x "$f" ] || [ -f "$f" ] || prereq_fail "$f not built (make BUILD_DIR=... tests)"
done
for tool in "$OPENSSL" "$GNUTLS_SERV" "$PYTHON"; do
    command -v "$tool" >/dev/null 2>&1 || prereq_fail "required program '$tool' not installed (.ci/install-deps)"
done
"$PYTHON" -c 'import jsonschema' 2>/dev/null \
    || prereq_fail "python3-jsonschema not installed (.ci/install-deps)"
make_fixtures || prereq_fail "cannot make a certificate"

# Sanitizer builds: the preloaded s_server needs libasan in front (see preload.sh).
ASAN_RT=$(ldd "$PRELOAD" 2>/dev/null | awk '$1 ~ /^libasan\.so/ { print $3; exit }')
if [ -n "$ASAN_RT" ]; then
    PRE_ENV=(LD_PRELOAD="$ASAN_RT:$PRELOAD" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1)
else
    PRE_ENV=(LD_PRELOAD="$PRELOAD")
fi

# The JSON checker (pcheck.py), probe/verify and the expected rows of each
# kind of server: test/probe_lib.sh, shared with probe_mail.sh.
# shellcheck source=test/probe_lib.sh
. "$HERE/probe_lib.sh"
write_pcheck "$TMP/pcheck.py"

# ---- 01-05: s_server, eg_peer, gnutls-serv -------------------------------------

begin 01-stock-s_server-ems
if stock_server 01-s_server "$EMS_CNF"; then
    probe 01 "127.0.0.1:$SRV_PORT"
    mapfile -t R < <(rows_stock_ems)
    verify 01 1 "${R[@]}" "$REMEDY_UPDATE"
    alert40 01
    expect_grep "text verdict" "^verdict: NOT safe for Windows clients" "$TMP/01.txt"
    stop_server "$SRV_PID"
else
    server_up_or_fail 01-s_server
fi
end_test

begin 02-stock-s_server-legacy
if stock_server 02-s_server "$LEGACY_CNF"; then
    probe 02 "127.0.0.1:$SRV_PORT"
    mapfile -t R < <(rows_legacy)
    verify 02 1 "${R[@]}" "$REMEDY_EMS"
    expect_grep "negotiated line" "^negotiated: TLSv1\\.2 .*, EMS no$" "$TMP/02.txt"
    stop_server "$SRV_PID"
else
    server_up_or_fail 02-s_server
fi
end_test

begin 03a-policy-eg_peer-server
if eg_server 03a-eg; then
    artifact "$SRV_OUT" "$SRV_ERR"
    probe 03a "127.0.0.1:$SRV_PORT"
    mapfile -t R < <(rows_policy)
    verify 03a 0 "${R[@]}"
    alert40 03a
    expect_grep "text verdict" "^verdict: Safe for Windows clients" "$TMP/03a.txt"
    stop_server "$SRV_PID"
    check_eg_exit
    expect_eq "server counter policy_bypassed" "$(counter "$SRV_OUT" policy_bypassed)" 0
    expect_ge "server counter aborted_inconsistent" "$(counter "$SRV_OUT" aborted_inconsistent)" 4
else
    server_up_or_fail 03a-eg
fi
end_test

begin 03b-policy-s_server-preload
SRV_ENV=(OPENSSL_CONF="$EMS_CNF" "${PRE_ENV[@]}")
if start_server 03b-s_server-preload "$OPENSSL" s_server -accept @PORT@ -cert "$CERT" \
        -key "$KEY" -www -quiet; then
    artifact "$SRV_ERR"
    probe 03b "127.0.0.1:$SRV_PORT"
    mapfile -t R < <(rows_policy)
    verify 03b 0 "${R[@]}"
    alert40 03b
    stop_server "$SRV_PID"
    expect_grep "preloaded server logged the aborted resumption" \
        "^emsguard: error: role=server aborted resumption" "$SRV_ERR"
    san_clean "$SRV_ERR"
else
    server_up_or_fail 03b-s_server-preload
fi
SRV_ENV=()
end_test

gserv() {
    SRV_ENV=()
    start_server "$1" "$GNUTLS_SERV" --echo -p @PORT@ --x509certfile "$CERT" \
        --x509keyfile "$KEY" --priority "$2"
}

# GnuTLS with EMS answers an EMS session offered without EMS with a full
# handshake (RFC 7627 wants an abort): info, not a finding.
begin 04-gnutls-serv
if gserv 04-gnutls-serv 'NORMAL:-VERS-ALL:+VERS-TLS1.2'; then
    probe 04 "127.0.0.1:$SRV_PORT"
    mapfile -t R < <(EMS_NONEMS=full_handshake/info rows_stock_ems)
    verify 04 1 "${R[@]}" "$REMEDY_UPDATE"
    stop_server "$SRV_PID"
else
    server_up_or_fail 04-gnutls-serv
fi
end_test

begin 05-gnutls-serv-no-session-hash
if gserv 05-gnutls-serv 'NORMAL:%NO_SESSION_HASH'; then
    probe 05 "127.0.0.1:$SRV_PORT"
    mapfile -t R < <(rows_legacy)
    verify 05 1 "${R[@]}" "$REMEDY_EMS"
    stop_server "$SRV_PID"
else
    server_up_or_fail 05-gnutls-serv
fi
end_test

# ---- 06-07: DHE without EMS ---------------------------------------------------

# peer_zeros FILE: leading-zero DH secrets the DHE peer counted itself
peer_zeros() { awk '$1 == "dh" { print $5 }' "$1"; }
json_dhe() { "$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["dhe"][sys.argv[2]])' "$1" "$2"; }

begin 06-dhe-leading-zero-buggy
SRV_ENV=()
if start_server 06-dhe "$PEER" dhe @PORT@; then
    artifact "$SRV_OUT" "$SRV_ERR"
    probe 06 "127.0.0.1:$SRV_PORT" --max-handshakes 6000
    mapfile -t R < <(DHE_NEG=negotiated/info DHE_LZ=failed/finding rows_legacy)
    verify 06 1 "${R[@]}" "$REMEDY_EMS" "$REMEDY_DHE" "$REMEDY_UPDATE" \
        dhenum.leading_zero_handshakes=3 dhenum.leading_zero_failed=3 dhenum.negotiable_without_ems=true
    expect_grep "text row" "^DH secrets with leading 0 +3/3 fail " "$TMP/06.txt"
    stop_server "$SRV_PID"
    # The peer's own count of padded (broken) secrets: the 3 + 3 the two
    # runs saw, nothing else (ECDHE everywhere else).
    expect_eq "leading-zero secrets counted by the buggy peer" "$(peer_zeros "$SRV_OUT")" 6
    echo "    06: DHE handshakes until 3 leading-zero secrets: json run $(json_dhe "$TMP/06.json" handshakes)"
else
    server_up_or_fail 06-dhe
fi
end_test

# A buggy server that picks DHE for everyone: each of the probe's other
# handshakes also meets the bug 1 time in 256; the probe repeats such a
# handshake once, so the rows stay those of any legacy server.
begin 06b-dhe-buggy-dhe-for-every-handshake
if start_server 06b-dhe "$PEER" dhe @PORT@ --dhe-first; then
    artifact "$SRV_OUT" "$SRV_ERR"
    probe 06b "127.0.0.1:$SRV_PORT" --max-handshakes 6000
    mapfile -t R < <(DHE_NEG=negotiated/info DHE_LZ=failed/finding rows_legacy)
    verify 06b 1 "${R[@]}" "$REMEDY_EMS" "$REMEDY_DHE" "$REMEDY_UPDATE" \
        dhenum.leading_zero_handshakes=3 dhenum.leading_zero_failed=3
    expect_grep "negotiated DHE" "^negotiated: TLSv1\\.2 DHE-RSA-AES128-GCM-SHA256 DH-1024, EMS no$" "$TMP/06b.txt"
    stop_server "$SRV_PID"
    expect_ge "leading-zero secrets counted by the buggy peer" "$(peer_zeros "$SRV_OUT")" 6
else
    server_up_or_fail 06b-dhe
fi
end_test

begin 07-dhe-leading-zero-correct-ticket-renewal
if start_server 07-dhe "$PEER" dhe @PORT@ --correct --renew; then
    artifact "$SRV_OUT" "$SRV_ERR"
    probe 07 "127.0.0.1:$SRV_PORT" --max-handshakes 6000
    mapfile -t R < <(RENEW=renewed/info DHE_NEG=negotiated/info DHE_LZ=handled/ok rows_legacy)
    verify 07 1 "${R[@]}" "$REMEDY_EMS" \
        dhenum.leading_zero_handshakes=3 dhenum.leading_zero_failed=0 dhenum.other_failed=0
    expect_grep "text row" "^DH secrets with leading 0 +3/3 ok " "$TMP/07.txt"
    stop_server "$SRV_PID"
    expect_eq "leading-zero secrets seen by the correct peer" "$(peer_zeros "$SRV_OUT")" 6
    echo "    07: DHE handshakes until 3 leading-zero secrets: json run $(json_dhe "$TMP/07.json" handshakes)"
else
    server_up_or_fail 07-dhe
fi
end_test

# --max-handshakes bounds the run: 2 handshakes cannot decide.
begin 08-dhe-max-handshakes-undetermined
if start_server 08-dhe "$PEER" dhe @PORT@ --correct; then
    probe 08 "127.0.0.1:$SRV_PORT" --max-handshakes 2
    mapfile -t R < <(DHE_NEG=negotiated/info DHE_LZ=undetermined/finding rows_legacy)
    verify 08 1 "${R[@]}" "$REMEDY_EMS" "$REMEDY_DHE" dhenum.handshakes=2
    stop_server "$SRV_PID"
else
    server_up_or_fail 08-dhe
fi
end_test

# ---- 09-14: errors -----------------------------------------------------------

begin 09-error-closed-port
p=""
for _ in 1 2 3 4 5 6 7 8; do
    c=$(random_port)
    port_listening "$c" || { p=$c; break; }
done
perr 09 "emsguard probe: 127.0.0.1:$p: connection refused" refused "127.0.0.1:$p"
end_test

plain_peer() {
    local name=$1 mode=$2 msg=$3 kind=$4 t0 t1
    begin "$name"
    if start_server "$name" "$PEER" "$mode" @PORT@; then
        t0=$(date +%s%N)
        perr "$name" "${msg//@PORT@/$SRV_PORT}" "$kind" "127.0.0.1:$SRV_PORT" --timeout 1
        t1=$(date +%s%N)
        if [ "$mode" = hang ]; then
            # two runs, 1 s each: well below the 20 s a missing timeout would take
            local ms=$(((t1 - t0) / 1000000))
            echo "    $name: two probe runs against the hanging peer took $ms ms"
            [ "$ms" -lt 8000 ] || err "two runs with --timeout 1 took $ms ms"
        fi
        stop_server "$SRV_PID"
    else
        server_up_or_fail "$name"
    fi
    end_test
}

plain_peer 10-error-not-tls text \
    'emsguard probe: 127.0.0.1:@PORT@ does not speak TLS: it answered the ClientHello with "HTTP/1.1 400 Bad Request"' not_tls
plain_peer 11-error-timeout-hanging-server hang \
    "emsguard probe: 127.0.0.1:@PORT@: timed out after 1 s waiting for the server's reply to the ClientHello" timeout
plain_peer 12a-error-garbage garbage \
    'emsguard probe: 127.0.0.1:@PORT@ sent garbage instead of a TLS record (first bytes: 8f 00 d3 41 ff 07 99 10)' garbage
plain_peer 12b-error-truncated truncated \
    'emsguard probe: 127.0.0.1:@PORT@: truncated TLS response: the connection closed after 15 bytes' truncated

begin 13-error-tls13-only
if stock_server 13-s_server "$EMS_CNF" -tls1_3; then
    perr 13 "emsguard probe: 127.0.0.1:$SRV_PORT supports only TLS 1.3: Extended Master Secret does not apply (TLS 1.3 builds it into its key schedule)" \
        tls13_only "127.0.0.1:$SRV_PORT"
    stop_server "$SRV_PID"
else
    server_up_or_fail 13-s_server
fi
end_test

begin 14-error-dns-and-usage
probe 14 "no-such-host.invalid:443"
expect_eq "text exit status" "$TRC" 2
expect_grep "DNS message" "^emsguard probe: cannot resolve 'no-such-host\\.invalid': .+$" "$TMP/14.txt.err"
expect_eq "DNS message lines" "$(wc -l <"$TMP/14.txt.err" | tr -d ' ')" 1
if ! out=$("$PYTHON" "$TMP/pcheck.py" "$SCHEMA" "$TMP/14.json" exit=2 kind=dns 2>&1); then
    while IFS= read -r l; do err "$l"; done <<<"$out"
fi
"$EMSG" probe 127.0.0.1:1 --timeout 0 >"$TMP/14u.out" 2>"$TMP/14u.err"
expect_eq "bad --timeout exit status" "$?" 2
expect_grep "bad --timeout message" "^emsguard probe: --timeout wants seconds from 0\\.1 to 3600, not '0'$" "$TMP/14u.err"
"$EMSG" probe 127.0.0.1:1 --starttls xmpp >"$TMP/14v.out" 2>"$TMP/14v.err"
expect_eq "--starttls xmpp exit status" "$?" 2
expect_grep "--starttls xmpp message" "^emsguard probe: --starttls wants ftp, smtp, imap or pop3, not 'xmpp'$" "$TMP/14v.err"
artifact "$TMP/14u.err" "$TMP/14v.err"
end_test

# ---- 15: vsftpd, --starttls ftp -------------------------------------------------

vsftpd_case() {
    local name=$1 cnf=$2 kind=$3 ftp_user="" u home pasv
    begin "$name"
    if [ ! -x "$VSFTPD" ]; then
        err "vsftpd not installed at $VSFTPD (.ci/install-deps)"
        end_test
        return
    fi
    if [ "$(id -u)" -ne 0 ]; then
        err "vsftpd must be started as root; run this test as root, as CI does"
        end_test
        return
    fi
    for u in ftp daemon; do
        home=$(getent passwd "$u" | cut -d: -f6)
        if [ -n "$home" ] && [ -d "$home" ]; then ftp_user=$u; break; fi
    done
    if ! pasv=$(free_port_block 16); then
        err "no free passive port range"
        end_test
        return
    fi
    mkdir -p "$TMP/ftproot" "$TMP/empty"
    chmod 0755 "$TMP/ftproot" "$TMP/empty"
    echo probe >"$TMP/ftproot/file.txt"
    vsftpd_conf "$TMP/ftproot" "$ftp_user" "$TMP/empty" "$pasv" "$CERT" "$KEY" >"$TMP/$name.conf"
    SRV_ENV=(OPENSSL_CONF="$cnf")
    [ "$kind" = policy ] && SRV_ENV+=("${PRE_ENV[@]}")
    if start_server "$name" "$VSFTPD" "$TMP/$name.conf" -olisten_port=@PORT@ \
            -ovsftpd_log_file="$TMP/$name.vlog"; then
        artifact "$TMP/$name.vlog"
        probe "$name" "127.0.0.1:$SRV_PORT" --starttls ftp --timeout 10
        if [ "$kind" = legacy ]; then
            # vsftpd forks per connection: no session-ID resumption across
            # control connections; its tickets survive (one key per process).
            mapfile -t R < <(rows_legacy | sed -e 's/^resumption.session_id=.*/resumption.session_id=full_handshake\/info/' \
                -e 's/^session_id.nonems_session.ems_hello=.*/session_id.nonems_session.ems_hello=full_handshake\/ok/' \
                -e 's/^session_id.nonems_session.nonems_hello=.*/session_id.nonems_session.nonems_hello=full_handshake\/ok/')
            verify "$name" 1 "${R[@]}" "ftps.data_reuse=required/finding" "$REMEDY_EMS"
        elif [ "$kind" = policy ]; then
            # the stock vsftpd with libemsguard-preload.so: compliant
            mapfile -t R < <(rows_policy | sed -e 's/^resumption.session_id=.*/resumption.session_id=full_handshake\/info/' \
                -e 's/^session_id.ems_session.nonems_hello=.*/session_id.ems_session.nonems_hello=full_handshake\/info/' \
                -e 's/^session_id.ems_session.ems_hello=.*/session_id.ems_session.ems_hello=full_handshake\/info/')
            verify "$name" 0 "${R[@]}" "ftps.data_reuse=required/ok"
            san_clean "$SRV_ERR"
        else
            mapfile -t R < <(rows_stock_ems | sed -e 's/^resumption.session_id=.*/resumption.session_id=full_handshake\/info/' \
                -e 's/^session_id.nonems_session.nonems_hello=.*/session_id.nonems_session.nonems_hello=full_handshake\/ok/' \
                -e 's/^session_id.ems_session.nonems_hello=.*/session_id.ems_session.nonems_hello=full_handshake\/info/' \
                -e 's/^session_id.ems_session.ems_hello=.*/session_id.ems_session.ems_hello=full_handshake\/info/')
            verify "$name" 1 "${R[@]}" "ftps.data_reuse=required/ok" "$REMEDY_UPDATE"
        fi
        # vsftpd's own view: one data connection refused for lack of reuse per run.
        expect_eq "vsftpd 'No SSL session reuse on data channel.' lines" \
            "$(count_re "$TMP/$name.vlog" 'No SSL session reuse on data channel')" 2
        expect_eq "vsftpd 522 replies" "$(count_re "$TMP/$name.vlog" '"522 SSL connection failed: session reuse required"')" 2
        stop_server "$SRV_PID"
    else
        server_up_or_fail "$name"
    fi
    SRV_ENV=()
    end_test
}

vsftpd_case 15a-vsftpd-legacy-starttls-ftp "$LEGACY_CNF" legacy
vsftpd_case 15b-vsftpd-ems-starttls-ftp "$EMS_CNF" ems
# vsftpd caps its own address space (RLIMIT_AS, no option to turn it off),
# and AddressSanitizer's shadow memory does not fit: with the sanitizer
# build's preload library (linked against libasan) every session dies with
# "500 OOPS: mmap".  The probe itself is sanitized in every other case.
# So the sanitizer pass gives vsftpd the normal tree's preload library
# (mk/probe.mk builds it first); the probe stays the sanitized one.
if [ -n "$ASAN_RT" ]; then
    PLAIN_PRELOAD=${BDIR%-san}/libemsguard-preload.so
    if [ -f "$PLAIN_PRELOAD" ]; then
        SAN_PRE_ENV=("${PRE_ENV[@]}")
        PRE_ENV=(LD_PRELOAD="$PLAIN_PRELOAD")
        vsftpd_case 15c-vsftpd-preload-starttls-ftp "$EMS_CNF" policy
        PRE_ENV=("${SAN_PRE_ENV[@]}")
    else
        fail_now 15c-vsftpd-preload-starttls-ftp "$PLAIN_PRELOAD missing: the sanitizer pass needs the normal build's preload library for vsftpd (make all)"
    fi
else
    vsftpd_case 15c-vsftpd-preload-starttls-ftp "$EMS_CNF" policy
fi

summary
[ "$NFAIL" -eq 0 ] && [ "$NSKIP" -eq 0 ]
