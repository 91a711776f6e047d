#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Renegotiation by stock clients against a server with the policy (issue 15,
# C2): `openssl s_client` typing R and `gnutls-cli --rehandshake` offer
# Extended Master Secret in both ClientHellos.  A server with
# DisableServerExtendedMasterSecret=1 declined it the first time, so the
# connection has no EMS; the renegotiation changes nothing the client
# offered and must complete, as it does with a stock server.
#
# The server is stock `openssl s_server -client_renegotiation` with
# libemsguard-preload.so (policy from EMSGUARD_CONF), over TCP on 127.0.0.1.
#
#   BUILD=build SANITIZE= bash test/reneg_stock.sh
#   BUILD=build-san SANITIZE=1 bash test/reneg_stock.sh
#
# Every case prints PASS/FAIL; the summary is `N passed, M failed, K skipped`.
set -u

BUILD=${BUILD:-build}
OPENSSL=${OPENSSL:-openssl}
GNUTLS_CLI=${GNUTLS_CLI:-gnutls-cli}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
case "$BUILD" in /*) BDIR=$BUILD ;; *) BDIR=$ROOT/$BUILD ;; esac
PRELOAD=$BDIR/libemsguard-preload.so
TO=15
SERVER_PIDS=()
. "$HERE/lib.sh"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/eg-reneg.XXXXXX") || exit 2
trap 'cleanup_servers' EXIT
trap 'exit 130' INT TERM HUP

for f in "$PRELOAD" "$BDIR/libemsguard.so.0"; do
    if [ ! -e "$f" ]; then
        fail_now 00-prerequisites "$f not built"
        summary
        exit 1
    fi
done
for tool in "$OPENSSL" "$GNUTLS_CLI"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        fail_now 00-prerequisites "required peer '$tool' not installed (.ci/install-deps)"
        summary
        exit 1
    fi
done
# A sanitizer build must have libasan first in the process (see preload.sh).
ASAN_RT=$(ldd "$PRELOAD" 2>/dev/null | awk '$1 ~ /^libasan\.so/ { print $3; exit }')
if [ "${SANITIZE:-}" = 1 ] && [ -z "$ASAN_RT" ]; then
    fail_now 00-prerequisites "SANITIZE=1 but $PRELOAD is not linked against libasan"
    summary
    exit 1
fi
if [ -n "$ASAN_RT" ]; then
    PRE_ENV=(LD_PRELOAD="$ASAN_RT:$PRELOAD" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1)
else
    PRE_ENV=(LD_PRELOAD="$PRELOAD")
fi
if ! make_fixtures; then
    fail_now 00-prerequisites "cannot make a certificate"
    summary
    exit 1
fi

# eg_cnf FILE KEY=VALUE...: EMSGUARD_CONF for the preload (parsed, never loaded)
eg_cnf() {
    local file=$1 kv
    shift
    {
        eg_provider_cnf emsguard.so
        echo "EventLogging = 7"
        for kv in "$@"; do
            echo "${kv%%=*} = ${kv#*=}"
        done
    } >"$file"
}
eg_cnf "$TMP/ems-off.cnf" DisableServerExtendedMasterSecret=1
eg_cnf "$TMP/default.cnf"

# reneg_server NAME EGCONF: preloaded s_server, TLS 1.2, client renegotiation on
reneg_server() {
    SRV_ENV=(OPENSSL_CONF="$EMS_CNF" EMSGUARD_CONF="$2" "${PRE_ENV[@]}")
    start_server "$1" "$OPENSSL" s_server -accept @PORT@ -cert "$CERT" -key "$KEY" \
        -www -quiet -tls1_2 -client_renegotiation
}

# sclient_r OUT CNF: stock s_client types R, then asks for the status page
sclient_r() {
    local out=$1 cnf=$2
    { printf 'R\n'; sleep 1; printf 'GET / HTTP/1.0\r\n\r\n'; sleep 1; } |
        OPENSSL_CONF=$cnf timeout $TO "$OPENSSL" s_client -connect "127.0.0.1:$SRV_PORT" \
            -tls1_2 >"$out" 2>&1
    CRC=$?
    artifact "$out"
}

# expect_renegotiated OUT: s_client renegotiated and then got the page
expect_renegotiated() {
    expect_eq "s_client exit status" "$CRC" 0
    expect_grep "s_client renegotiated" "^RENEGOTIATING" "$1"
    expect_grep "page after the renegotiation" "^HTTP/1.0 200 ok" "$1"
    expect_nogrep "no alert" "alert" "$1"
}

# stop_reneg_server: SIGTERM, no crash, no refused renegotiation logged
stop_reneg_server() {
    stop_server "$SRV_PID"
    expect_eq "preloaded s_server exit status (SIGTERM)" "$SRV_RC" 143
    expect_nogrep "no refused renegotiation" "rejected renegotiation" "$SRV_ERR"
    san_clean "$SRV_ERR"
    artifact "$SRV_ERR"
}

begin 01-s_client-R-server-ems-off
if reneg_server srv1 "$TMP/ems-off.cnf"; then
    sclient_r "$TMP/c1.out" "$EMS_CNF"
    expect_renegotiated "$TMP/c1.out"
    expect_grep "connection without EMS" "Extended master secret: no" "$TMP/c1.out"
    stop_reneg_server
else
    server_up_or_fail srv1
fi
end_test

begin 02-gnutls-cli-rehandshake-server-ems-off
if reneg_server srv2 "$TMP/ems-off.cnf"; then
    timeout $TO "$GNUTLS_CLI" --insecure --rehandshake --priority NORMAL:-VERS-TLS1.3 \
        -p "$SRV_PORT" 127.0.0.1 </dev/null >"$TMP/g2.out" 2>&1
    expect_eq "gnutls-cli exit status" "$?" 0
    expect_grep "rehandshake completed" "ReHandshake was completed" "$TMP/g2.out"
    artifact "$TMP/g2.out"
    stop_reneg_server
else
    server_up_or_fail srv2
fi
end_test

begin 03-s_client-R-legacy-client-server-ems-off
# No EMS in either ClientHello: consistent as well.
if reneg_server srv3 "$TMP/ems-off.cnf"; then
    sclient_r "$TMP/c3.out" "$LEGACY_CNF"
    expect_renegotiated "$TMP/c3.out"
    stop_reneg_server
else
    server_up_or_fail srv3
fi
end_test

begin 04-control-s_client-R-default-policy
if reneg_server srv4 "$TMP/default.cnf"; then
    sclient_r "$TMP/c4.out" "$EMS_CNF"
    expect_renegotiated "$TMP/c4.out"
    expect_grep "connection with EMS" "Extended master secret: yes" "$TMP/c4.out"
    stop_reneg_server
else
    server_up_or_fail srv4
fi
end_test

summary
[ "$NFAIL" -eq 0 ] && [ "$NSKIP" -eq 0 ]
