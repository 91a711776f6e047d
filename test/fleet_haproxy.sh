#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# HAProxy as the TLS terminator (`bind ... ssl crt ...`) under the preload
# (LD_PRELOAD=$BUILD/libemsguard-preload.so), alone and in a fleet of two
# that share ticket keys (`tls-ticket-keys`), one stock and one preloaded.
#
#   BUILD=build SANITIZE= bash test/fleet_haproxy.sh
#   BUILD=build-san SANITIZE=1 bash test/fleet_haproxy.sh
#
#   case                                         H0 (stock)  H1 (preload)
#   01 a legacy client resumes on stock H0 (control): ticket and session ID
#   02 a legacy client gets full handshakes on H1: no ticket, nothing cached
#   03 an EMS client resumes on H1: ticket, session ID (HAProxy's own shared
#      session cache), and TLS 1.3
#   04 H0's legacy ticket (same keys) is never resumed on H1
#   05 EMS tickets resume across H0 and H1, both ways
#   06 H0 restarted preloaded (full rollout): no legacy ticket from it, the
#      stock era's legacy ticket refused, EMS tickets still resume across
#
# Both members read one tls-ticket-keys file (three 48-byte keys, base64);
# HAProxy gives every TLS connection the session ID context "HAProxy", so
# tickets move between members on different ports.  Legacy clients are stock
# `openssl s_client` with `Options = -ExtendedMasterSecret` (LEGACY_CNF),
# EMS clients EMS_CNF; TLS 1.2 unless a case says otherwise.  Each client
# sends `GET /<tag>`; a handshake is judged by s_client (`New,` / `Reused,`)
# and by HAProxy's own log line for that request (ssl_fc_is_resumed).  The
# preloaded member runs with EMSGUARD_CONF = the defaults plus
# EventLogging=3 (refusals logged to its stderr, with HAProxy's log) and
# EMSGUARD_DEBUG=1 (its "policy from" line proves the preload was active).
#
# Sanitizer builds: libasan preloaded in front of the preload library into
# HAProxy, ASAN_OPTIONS=detect_leaks=0; any sanitizer report in its stderr
# fails the case.  HAProxy is started and stopped here (test/lib.sh:
# start_haproxy_tls) with a configuration of its own; /etc/haproxy and the
# system service are never used.
#
# Every case prints `PASS name` or `FAIL name: details`; the last line is
# `N passed, M failed, K skipped`.  A missing haproxy or openssl is a FAIL.
# Environment: BUILD, SANITIZE, OPENSSL, HAPROXY, KEEP_TMP=1, VERBOSE=1.
set -u

OPENSSL=${OPENSSL:-openssl}
HAPROXY=${HAPROXY:-haproxy}
HERE=$(cd "$(dirname "$0")" && pwd)

TO=20            # timeout for every client run, seconds
SERVER_PIDS=()
# shellcheck source=test/lib.sh
. "$HERE/lib.sh"
script_start fleet-haproxy
unset EMSGUARD_CONF EMSGUARD_DEBUG

# ---- prerequisites ------------------------------------------------------------

require_preload
command -v "$HAPROXY" >/dev/null 2>&1 \
    || prereq_fail "haproxy not installed (.ci/install-deps installs haproxy)"

make_fixtures || prereq_fail "cannot make a certificate"

EG_CNF=$TMP/eg-log3.cnf
write_eg_module_cnf "$EG_CNF" emsguard.so EventLogging=3
HAPROXY_ENV=(EMSGUARD_DEBUG=1)

# HAProxy wants at least three keys; it encrypts with one and decrypts with all.
KEYS=$TMP/ticket.keys
for _ in 1 2 3; do
    "$OPENSSL" rand 48 | "$OPENSSL" base64 -A
    echo
done >"$KEYS"
BINDOPTS="tls-ticket-keys $KEYS"

# ---- the members ----------------------------------------------------------------

H0_PID="" H1_PID=""

# start_member 0|1 NAME EGCONF: (re)starts H0 or H1.
start_member() {
    start_haproxy_tls "$2" "$3" "$BINDOPTS"
    local rc=$?
    if [ "$1" = 0 ]; then
        H0_PID=$HAP_PID H0_PORT=$HAP_PORT H0_LOG=$HAP_LOG H0_EG=$3
    else
        H1_PID=$HAP_PID H1_PORT=$HAP_PORT H1_LOG=$HAP_LOG H1_EG=$3
    fi
    return "$rc"
}

# stop_member 0|1: stops it; a sanitizer report fails the current case.
stop_member() {
    local pid=$H0_PID log=$H0_LOG
    [ "$1" = 1 ] && pid=$H1_PID log=$H1_LOG
    [ -n "$pid" ] || return 0
    stop_tree "$pid"
    san_clean "$log"
    if [ "$1" = 0 ]; then H0_PID=""; else H1_PID=""; fi
}

# up 0|1...: the members run, each with the policy it should have.
up() {
    local m pid log eg
    for m in "$@"; do
        pid=$H0_PID log=${H0_LOG:-} eg=${H0_EG:-}
        [ "$m" = 1 ] && pid=$H1_PID log=${H1_LOG:-} eg=${H1_EG:-}
        if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
            err "H$m not running: $(tail -n 3 "$log" 2>/dev/null | tr '\n' ' ')"
            return 1
        fi
        artifact "$log"
        [ -n "$eg" ] && expect_asan_mapped "H$m" "$pid"
        expect_eq "H$m: preload 'policy from' lines" \
            "$(count_re "$log" "^emsguard-preload: debug: policy from ")" "$([ -n "$eg" ] && echo 1 || echo 0)"
    done
    return 0
}

# ---- clients ------------------------------------------------------------------

# hs TAG CNF 0|1 WANT [s_client args]: one connection with `GET /TAG` from a
# stock s_client (OPENSSL_CONF=CNF, TLS 1.2 unless PROTO says otherwise) to
# H0 or H1; WANT is New or Reused.  Checks s_client's verdict, HAProxy's log
# line, and that EMS was negotiated exactly for EMS clients (TLS 1.2).
hs() {
    local tag=$1 cnf=$2 m=$3 want=$4 port=$H0_PORT log=$H0_LOG out=$TMP/$1.txt
    local got sv wems i proto=${PROTO:--tls1_2}
    shift 4
    [ "$m" = 1 ] && port=$H1_PORT log=$H1_LOG
    printf 'GET /%s HTTP/1.0\r\nHost: localhost\r\n\r\n' "$tag" \
        | OPENSSL_CONF=$cnf timeout $TO "$OPENSSL" s_client -connect "127.0.0.1:$port" \
            -servername localhost "$proto" -ign_eof "$@" >"$out" 2>&1
    CRC=$?
    artifact "$out"
    got=$(awk '/^(New|Reused), / { sub(/,$/, "", $1); print $1; exit }' "$out")
    expect_eq "$tag: s_client exit status" "$CRC" 0
    expect_eq "$tag: handshake on H$m (s_client)" "${got:-none}" "$want"
    expect_grep "$tag: H$m served the request" "^HTTP/1\\.[01] 200" "$out"
    if [ "$proto" = -tls1_2 ]; then
        wems=yes
        [ "$cnf" = "$LEGACY_CNF" ] && wems=no
        expect_eq "$tag: Extended master secret" \
            "$(awk -F': *' '/Extended master secret/ { print $2; exit }' "$out")" "$wems"
    fi
    for ((i = 0; i < 40; i++)); do
        sv=$(awk -v r="\"GET /$tag HTTP/1.0\"" '$1 == "fleet" && index($0, r) { print $4 }' "$log")
        [ -n "$sv" ] && break
        sleep 0.05
    done
    expect_eq "$tag: handshake on H$m (its log)" "${sv:-no line}" \
        "$([ "$want" = Reused ] && echo resumed=1 || echo resumed=0)"
}

# hs_maybe TAG CNF 0|1 New SESSFILE: hs with -sess_in SESSFILE, or nothing
# when s_client saved no session (nothing resumable to offer).
hs_maybe() {
    [ -s "$5" ] && hs "$1" "$2" "$3" "$4" -sess_in "$5"
    return 0
}

has_ticket() {
    [ -s "$1" ] && "$OPENSSL" sess_id -in "$1" -noout -text 2>/dev/null | grep -q "TLS session ticket:"
}

# mark 0|1; refusals 0|1 VIA: emsguard's no-ems refusals since the mark.
mark() { if [ "$1" = 0 ]; then M0=$(wc -l <"$H0_LOG"); else M1=$(wc -l <"$H1_LOG"); fi; }
refusals() {
    local log=$H0_LOG m=${M0:-0}
    [ "$1" = 1 ] && log=$H1_LOG m=${M1:-0}
    tail -n +"$((m + 1))" "$log" \
        | grep -Ec "^emsguard: warning: role=server refused resumption, full handshake instead: reason=no-ems .*via=$2( |\$)"
}

# resumes_on CASE CNF 0|1 SESS CLIENT: on member H0|H1 a full handshake gets
# a ticket (saved in SESS.tkt) that resumes, and one without tickets a
# session ID (SESS.sid) that resumes; CLIENT names the client in messages.
resumes_on() {
    hs "$1-tkt-full" "$2" "$3" New -sess_out "$4.tkt"
    has_ticket "$4.tkt" || err "H$3 issued no ticket to the $5 client"
    hs "$1-tkt-resume" "$2" "$3" Reused -sess_in "$4.tkt"
    hs "$1-sid-full" "$2" "$3" New -no_ticket -sess_out "$4.sid"
    hs "$1-sid-resume" "$2" "$3" Reused -no_ticket -sess_in "$4.sid"
}

# ---- cases ------------------------------------------------------------------------

start_member 0 h0-stock ""
start_member 1 h1-preload "$EG_CNF"
echo "    H0 (stock) 127.0.0.1:${H0_PORT:-none}, H1 (preload) 127.0.0.1:${H1_PORT:-none}"

begin 01-stock-haproxy-resumes-legacy-sessions
if up 0; then
    resumes_on 01 "$LEGACY_CNF" 0 "$TMP/legacy-h0" legacy
fi
end_test

begin 02-preloaded-haproxy-legacy-client-full-handshakes
if up 1; then
    rm -f "$TMP/legacy-h1.tkt" "$TMP/legacy-h1.sid"
    hs 02-tkt-full "$LEGACY_CNF" 1 New -sess_out "$TMP/legacy-h1.tkt"
    has_ticket "$TMP/legacy-h1.tkt" && err "H1 issued a ticket for a non-EMS session"
    hs_maybe 02-tkt-again1 "$LEGACY_CNF" 1 New "$TMP/legacy-h1.tkt"
    hs_maybe 02-tkt-again2 "$LEGACY_CNF" 1 New "$TMP/legacy-h1.tkt"
    hs 02-sid-full "$LEGACY_CNF" 1 New -no_ticket -sess_out "$TMP/legacy-h1.sid"
    hs_maybe 02-sid-again1 "$LEGACY_CNF" 1 New "$TMP/legacy-h1.sid"
    hs_maybe 02-sid-again2 "$LEGACY_CNF" 1 New "$TMP/legacy-h1.sid"
    # Nothing H1 made for a legacy client resumes on the stock member either.
    hs_maybe 02-tkt-on-h0 "$LEGACY_CNF" 0 New "$TMP/legacy-h1.tkt"
fi
end_test

begin 03-preloaded-haproxy-ems-client-resumes
if up 1; then
    resumes_on 03 "$EMS_CNF" 1 "$TMP/ems-h1" EMS
    PROTO=-tls1_3 hs 03-tls13-full "$EMS_CNF" 1 New -sess_out "$TMP/ems-h1.tls13"
    PROTO=-tls1_3 hs 03-tls13-resume "$EMS_CNF" 1 Reused -sess_in "$TMP/ems-h1.tls13"
fi
end_test

begin 04-shared-keys-stock-legacy-ticket-never-resumed-on-preloaded
if up 0 1; then
    mark 1
    hs 04-offer1 "$LEGACY_CNF" 1 New -sess_in "$TMP/legacy-h0.tkt"
    hs 04-offer2 "$LEGACY_CNF" 1 New -sess_in "$TMP/legacy-h0.tkt"
    # H1 decrypted H0's ticket (shared keys) and emsguard refused it.
    expect_eq "H1's refusals reason=no-ems via=ticket" "$(refusals 1 ticket)" 2
    # The same ticket still resumes on stock H0: the keys are shared.
    hs 04-control-h0 "$LEGACY_CNF" 0 Reused -sess_in "$TMP/legacy-h0.tkt"
fi
end_test

begin 05-shared-keys-ems-tickets-resume-across
if up 0 1; then
    hs 05-full-h0 "$EMS_CNF" 0 New -sess_out "$TMP/ems-h0.tkt"
    hs 05-h0-on-h1 "$EMS_CNF" 1 Reused -sess_in "$TMP/ems-h0.tkt"
    hs 05-h1-on-h0 "$EMS_CNF" 0 Reused -sess_in "$TMP/ems-h1.tkt"
    PROTO=-tls1_3 hs 05-tls13-h1-on-h0 "$EMS_CNF" 0 Reused -sess_in "$TMP/ems-h1.tls13"
fi
stop_member 0
end_test

start_member 0 h0-preload "$EG_CNF"

begin 06-full-rollout-shared-keys
if up 0 1; then
    rm -f "$TMP/legacy-h0b.tkt"
    hs 06-legacy-full "$LEGACY_CNF" 0 New -sess_out "$TMP/legacy-h0b.tkt"
    has_ticket "$TMP/legacy-h0b.tkt" && err "H0 issued a ticket for a non-EMS session"
    mark 0
    mark 1
    hs 06-stock-era-legacy-on-h0 "$LEGACY_CNF" 0 New -sess_in "$TMP/legacy-h0.tkt"
    hs 06-stock-era-legacy-on-h1 "$LEGACY_CNF" 1 New -sess_in "$TMP/legacy-h0.tkt"
    expect_eq "H0's refusals reason=no-ems via=ticket" "$(refusals 0 ticket)" 1
    expect_eq "H1's refusals reason=no-ems via=ticket" "$(refusals 1 ticket)" 1
    hs 06-ems-full-h0 "$EMS_CNF" 0 New -sess_out "$TMP/ems-h0b.tkt"
    hs 06-ems-h0-on-h1 "$EMS_CNF" 1 Reused -sess_in "$TMP/ems-h0b.tkt"
    hs 06-stock-era-ems-on-h0 "$EMS_CNF" 0 Reused -sess_in "$TMP/ems-h0.tkt"
fi
stop_member 0
stop_member 1
end_test

summary
[ "$NFAIL" -eq 0 ]
