#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A second TLS implementation as peer: GnuTLS (`gnutls-cli`, `gnutls-serv`,
# Debian package gnutls-bin) against emsguard (test/eg_peer), over TCP on
# 127.0.0.1, TLS 1.2 forced on both sides (EMS is built into TLS 1.3).
#
#   BUILD=build bash test/gnutls.sh        (make integration-check)
#
# GnuTLS without Extended Master Secret: `%NO_SESSION_HASH` in the priority
# string.  Session IDs only: `%NO_TICKETS` (gnutls-cli 3.7.9's --noticket
# alone still sends a TLS 1.2 ticket) and `gnutls-serv --noticket`; tickets
# only: `gnutls-serv --nodb`, and against eg_peer a ticket-capable client
# (OpenSSL then sends an empty session ID, so nothing goes to the ID cache).
#
# Server role (eg_peer server x `gnutls-cli -r`: one full handshake, one
# resumption attempt):   EMS client resumes; non-EMS client gets a full
#                        handshake, no alert.
# Client role (gnutls-serv x eg_peer client --reconnect 3): an EMS server
#                        resumes; a non-EMS session is never offered and
#                        every connection is a full handshake.
# Control rows (stock eg_peer --stock, stock `openssl s_client -reconnect`)
# show that the same GnuTLS peer does resume without emsguard.
#
# What gnutls-cli 3.7.9 prints (stdout): `- Options: extended master
# secret, ...` when EMS was negotiated, `*** This is a resumed session`
# after a resumption (nothing when the resumption attempt became a full
# handshake; `- Resume Handshake was completed` is printed either way), and
# `*** Received alert [N]` / `*** Fatal error` on failure.  With -d 4 its
# stderr logs every ClientHello extension it sends
# (`Sending extension Session Ticket/35 (176 bytes)`), which tells what it
# offered.  gnutls-serv prints one `* Accepted connection` block per
# connection with the same `Options:` and `resumed session` lines.
#
# Environment: BUILD (default build), OPENSSL (default openssl),
# GNUTLS_CLI, GNUTLS_SERV, KEEP_TMP=1, VERBOSE=1 (see integration.sh).
set -u

BUILD=${BUILD:-build}
OPENSSL=${OPENSSL:-openssl}
GNUTLS_CLI=${GNUTLS_CLI:-gnutls-cli}
GNUTLS_SERV=${GNUTLS_SERV:-gnutls-serv}
HERE=$(cd "$(dirname "$0")" && pwd)
EG=$(cd "$HERE/.." && pwd)/$BUILD/test/eg_peer
case "$BUILD" in /*) EG=$BUILD/test/eg_peer ;; esac

TO=20            # timeout for every client run, seconds
SERVER_PIDS=()
# shellcheck source=test/lib.sh
. "$HERE/lib.sh"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/eg-gnutls.XXXXXX") || exit 2

trap cleanup_servers EXIT
trap 'exit 130' INT TERM HUP

prereq_ok=1
if [ ! -x "$EG" ]; then
    fail_now 00-prerequisites "$EG not built (make $BUILD/test/eg_peer)"
    prereq_ok=0
fi
for tool in "$GNUTLS_CLI" "$GNUTLS_SERV" "$OPENSSL"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        fail_now "00-prerequisites-$(basename "$tool")" \
            "$tool not found (install gnutls-bin / openssl: .ci/install-deps)"
        prereq_ok=0
    fi
done
if [ $prereq_ok = 1 ] && ! make_fixtures; then
    fail_now 00-prerequisites "cannot make a certificate"
    prereq_ok=0
fi
if [ $prereq_ok = 0 ]; then
    summary
    exit 1
fi
echo "# $("$GNUTLS_CLI" --version 2>/dev/null | head -n 1), $("$OPENSSL" version)"

PRIO='NORMAL:-VERS-ALL:+VERS-TLS1.2'
# Failure lines of gnutls-cli (stdout or stderr) and gnutls-serv (stderr).
GNUTLS_FAIL_RE='\*\*\* (Received alert|Fatal error|Handshake has failed|handshake has failed)'
GSERV_FAIL_RE='Error in handshake|Received alert'

# The observed outcomes, printed as a table at the end.
TABLE=()
row() { TABLE+=("$(printf '%-7s %-29s %-27s %-11s %s' "$@")"); }

# gserv NAME PRIORITY ARGS...: gnutls-serv echo server on a fresh port.
gserv() {
    local name=$1 prio=$2
    shift 2
    SRV_ENV=()
    start_server "$name" "$GNUTLS_SERV" --echo -p @PORT@ --x509certfile "$CERT" \
        --x509keyfile "$KEY" --priority "$prio" "$@"
}

# gcli OUT PRIORITY ARGS...: `gnutls-cli -r` against SRV_PORT, which verifies
# the test certificate (so any "failed" line is real), debug log in OUT.dbg.
gcli() {
    local out=$1 prio=$2
    shift 2
    timeout $TO "$GNUTLS_CLI" -d 4 -r --x509cafile "$CERT" --verify-hostname localhost \
        --priority "$prio" -p "$SRV_PORT" "$@" 127.0.0.1 </dev/null >"$out" 2>"$out.dbg"
    CRC=$?
    artifact "$out" "$out.dbg"
}

# Readings of one gnutls-cli -r run (OUT, OUT.dbg).
g_resumed()     { count_re "$1" '^\*\*\* This is a resumed session'; }
g_completed()   { count_re "$1" '^- (Resume )?Handshake was completed'; }
g_ems()         { count_re "$1" '^- Options: .*extended master secret'; }
g_hellos()      { count_re "$1.dbg" 'CLIENT HELLO was queued'; }
g_hello_ems()   { count_re "$1.dbg" 'Sending extension Extended Master Secret/23'; }
g_ticket_ext()  { count_re "$1.dbg" 'Sending extension Session Ticket/35'; }
g_ticket_sent() { count_re "$1.dbg" 'Sending extension Session Ticket/35 \([1-9][0-9]* bytes\)'; }
g_ticket_recv() { count_re "$1.dbg" 'received session ticket'; }
# the session IDs printed for the two connections, one line
g_ids()         { awk '/^- Session ID:/ { printf "%s ", $4 }' "$1"; }

# g_common DESC OUT: the run completed both handshakes without an alert, and
# its debug log has the format this script reads.
g_common() {
    expect_eq "$1: gnutls-cli exit status" "$CRC" 0
    expect_eq "$1: completed handshakes" "$(g_completed "$2")" 2
    expect_eq "$1: ClientHellos in the debug log (format check)" "$(g_hellos "$2")" 2
    expect_nogrep "$1: alert or failure" "$GNUTLS_FAIL_RE" "$2"
    expect_nogrep "$1: alert or failure" "$GNUTLS_FAIL_RE" "$2.dbg"
}

# g_same_ids DESC OUT: both connections show the same, non-empty session ID
# (a session-ID resumption); g_diff_ids: two different IDs.
g_same_ids() {
    local a b
    read -r a b <<<"$(g_ids "$2")"
    if [ -z "$a" ] || [ "$a" != "${b:-}" ]; then
        err "$1: session IDs '$a' '${b:-}', want the same ID twice"
    fi
}
g_diff_ids() {
    local a b
    read -r a b <<<"$(g_ids "$2")"
    if [ -z "$a" ] || [ -z "${b:-}" ] || [ "$a" = "$b" ]; then
        err "$1: session IDs '$a' '${b:-}', want two different IDs"
    fi
}

# ---- server role: eg_peer server x gnutls-cli ---------------------------------

# gcli_vs_eg_server NAME MODE KIND: MODE tickets|session-ids, KIND ems|no-ems.
gcli_vs_eg_server() {
    local name=$1 mode=$2 kind=$3 prio=$PRIO out r e label=""
    local sargs=() cargs=()
    if [ "$kind" = no-ems ]; then
        prio+=':%NO_SESSION_HASH'
        label=" %NO_SESSION_HASH"
    fi
    if [ "$mode" = session-ids ]; then
        sargs=(--no-ticket)
        cargs=(--noticket)
        prio+=':%NO_TICKETS'
    fi
    begin "$name"
    if eg_server "$name-policy" "${sargs[@]}"; then
        artifact "$SRV_OUT" "$SRV_ERR"
        out=$TMP/$name-policy.txt
        gcli "$out" "$prio" "${cargs[@]}"
        g_common "policy" "$out"
        r=$(g_resumed "$out")
        e=$(g_ems "$out")
        if [ "$mode" = tickets ]; then
            expect_ge "policy: ticket extension in both ClientHellos" "$(g_ticket_ext "$out")" 2
        else
            expect_eq "policy: ticket extensions sent" "$(g_ticket_ext "$out")" 0
        fi
        if [ "$kind" = ems ]; then
            expect_eq "policy: gnutls-cli resumed" "$r" 1
            expect_eq "policy: gnutls-cli EMS connections" "$e" 2
            expect_eq "policy: ClientHellos with EMS" "$(g_hello_ems "$out")" 2
            if [ "$mode" = tickets ]; then
                expect_eq "policy: ticket offered on reconnect" "$(g_ticket_sent "$out")" 1
                # An empty ID in the first ServerHello: the session went
                # into the ticket only, not into the session-ID cache.
                expect_eq "policy: ServerHellos with an empty session ID" \
                    "$(count_re "$out.dbg" 'SessionID length: 0$')" 1
            else
                g_same_ids "policy" "$out"
            fi
        else
            expect_eq "policy: gnutls-cli resumed" "$r" 0
            expect_eq "policy: gnutls-cli EMS connections" "$e" 0
            expect_eq "policy: ClientHellos with EMS" "$(g_hello_ems "$out")" 0
            if [ "$mode" = tickets ]; then
                expect_eq "policy: tickets received" "$(g_ticket_recv "$out")" 0
            else
                g_diff_ids "policy" "$out"
            fi
        fi
        stop_server "$SRV_PID"
        check_eg_exit
        expect_grep "server conn 0 full handshake" "^conn 0: New ems=$([ "$kind" = ems ] && echo yes || echo no) " "$SRV_OUT"
        expect_nogrep "server handshake failure" "^conn [0-9]+: failed" "$SRV_OUT"
        if [ "$kind" = ems ]; then
            expect_grep "server conn 1 resumed with EMS" "^conn 1: Reused ems=yes " "$SRV_OUT"
            expect_eq "counter resumptions" "$(counter "$SRV_OUT" resumptions)" 1
            expect_eq "counter full_handshakes" "$(counter "$SRV_OUT" full_handshakes)" 1
        else
            expect_grep "server conn 1 full handshake" "^conn 1: New ems=no " "$SRV_OUT"
            expect_eq "counter resumptions" "$(counter "$SRV_OUT" resumptions)" 0
            expect_eq "counter full_without_ems" "$(counter "$SRV_OUT" full_without_ems)" 2
            if [ "$mode" = tickets ]; then
                expect_ge "counter tickets_withheld" "$(counter "$SRV_OUT" tickets_withheld)" 1
            else
                expect_ge "counter sessions_not_cached" "$(counter "$SRV_OUT" sessions_not_cached)" 1
            fi
        fi
        row server "eg_peer (emsguard)" "gnutls-cli$label" "$mode" \
            "reconnect: $([ "$r" = 1 ] && echo resumed || echo full) ems=$([ "$e" = 2 ] && echo yes || echo no) alerts=$(count_re "$out" "$GNUTLS_FAIL_RE")"
    else
        server_up_or_fail "$name-policy"
    fi

    # Control: without emsguard the same non-EMS client resumes.
    if [ "$kind" = no-ems ]; then
        if eg_server "$name-stock" --stock "${sargs[@]}"; then
            artifact "$SRV_OUT" "$SRV_ERR"
            out=$TMP/$name-stock.txt
            gcli "$out" "$prio" "${cargs[@]}"
            g_common "control (--stock)" "$out"
            r=$(g_resumed "$out")
            expect_eq "control (--stock): gnutls-cli resumed" "$r" 1
            expect_eq "control (--stock): gnutls-cli EMS connections" "$(g_ems "$out")" 0
            if [ "$mode" = tickets ]; then
                expect_eq "control (--stock): ticket offered on reconnect" "$(g_ticket_sent "$out")" 1
            else
                g_same_ids "control (--stock)" "$out"
            fi
            stop_server "$SRV_PID"
            check_eg_exit
            expect_grep "control (--stock): server resumed" "^conn 1: Reused ems=no " "$SRV_OUT"
            row server "eg_peer --stock" "gnutls-cli %NO_SESSION_HASH" "$mode" \
                "reconnect: $([ "$r" = 1 ] && echo resumed || echo full) ems=no (control)"
        else
            server_up_or_fail "$name-stock"
        fi
    fi
    end_test
}

gcli_vs_eg_server 01a-gnutls-cli-ems-tickets tickets ems
gcli_vs_eg_server 01b-gnutls-cli-ems-session-ids session-ids ems
gcli_vs_eg_server 02a-gnutls-cli-no-ems-tickets tickets no-ems
gcli_vs_eg_server 02b-gnutls-cli-no-ems-session-ids session-ids no-ems

# ---- client role: gnutls-serv x eg_peer client --------------------------------

# eg_client_vs_gserv NAME MODE KIND
eg_client_vs_gserv() {
    local name=$1 mode=$2 kind=$3 prio=$PRIO out sargs cargs=() scargs=()
    local want_resumed=0 want_conns=4 reused offered ems label=""
    if [ "$kind" = no-ems ]; then
        prio+=':%NO_SESSION_HASH'
        label=" %NO_SESSION_HASH"
    fi
    if [ "$mode" = session-ids ]; then
        sargs=(--noticket)
        cargs=(--no-ticket)
        scargs=(-no_ticket)
    else
        sargs=(--nodb)
    fi
    begin "$name"
    if ! gserv "$name-gnutls-serv" "$prio" "${sargs[@]}"; then
        server_up_or_fail "$name-gnutls-serv"
        end_test
        return
    fi
    local gpid=$SRV_PID gout=$SRV_OUT gerr=$SRV_ERR
    artifact "$gout" "$gerr"

    out=$TMP/$name-policy.txt
    egclient "$out" --connect "127.0.0.1:$SRV_PORT" --reconnect 3 "${cargs[@]}"
    expect_eq "policy client exit status" "$CRC" 0
    reused=$(count_prefix "$out" Reused,)
    offered=$(grep -c 'offered=yes' "$out")
    ems=$(grep -c ' ems=yes' "$out")
    if [ "$kind" = ems ]; then
        expect_eq "policy client Reused lines" "$reused" 3
        expect_eq "policy client ems=yes lines" "$ems" 4
        expect_eq "sessions offered" "$offered" 3
        expect_eq "counter resumptions" "$(counter "$out" resumptions)" 3
        want_resumed=3
    else
        expect_eq "policy client New lines" "$(count_prefix "$out" New,)" 4
        expect_eq "policy client Reused lines" "$reused" 0
        expect_eq "policy client ems=no lines" "$(grep -c ' ems=no' "$out")" 4
        expect_eq "sessions offered" "$offered" 0
        expect_eq "counter refused_no_ems" "$(counter "$out" refused_no_ems)" 3
    fi
    row client "gnutls-serv$label" "eg_peer (emsguard)" "$mode" \
        "reconnects: offered $offered/3 resumed $reused/3 ems=yes $ems/4"

    if [ "$kind" = no-ems ]; then
        # Controls: a stock eg_peer and a stock s_client both resume.
        out=$TMP/$name-stock.txt
        egclient "$out" --connect "127.0.0.1:$SRV_PORT" --reconnect 3 --stock "${cargs[@]}"
        expect_eq "control (--stock): exit status" "$CRC" 0
        reused=$(count_prefix "$out" Reused,)
        expect_eq "control (--stock): Reused lines" "$reused" 3
        expect_eq "control (--stock): ems=yes lines" "$(grep -c ' ems=yes' "$out")" 0
        row client "gnutls-serv %NO_SESSION_HASH" "eg_peer --stock" "$mode" \
            "reconnects: resumed $reused/3 (control)"
        out=$TMP/$name-s_client.txt
        sclient "$out" "$EMS_CNF" -connect "127.0.0.1:$SRV_PORT" -tls1_2 -reconnect "${scargs[@]}"
        expect_eq "control (s_client): exit status" "$CRC" 0
        reused=$(count_prefix "$out" Reused,)
        expect_eq "control (s_client): Reused lines" "$reused" 5
        expect_grep "control (s_client): session without EMS" "Extended master secret: no" "$out"
        expect_nogrep "control (s_client): alert" "alert" "$out"
        if [ "$mode" = tickets ]; then
            expect_grep "control (s_client): ticket received" "TLS session ticket:" "$out"
        else
            expect_nogrep "control (s_client): ticket received" "TLS session ticket:" "$out"
        fi
        row client "gnutls-serv %NO_SESSION_HASH" "openssl s_client" "$mode" \
            "reconnects: resumed $reused/5 (control)"
        want_resumed=8
        want_conns=14
    fi

    stop_server "$gpid"
    # The server's own view over every connection of this case.
    expect_eq "gnutls-serv connections" "$(count_re "$gout" '^\* Accepted connection')" $want_conns
    expect_eq "gnutls-serv resumed sessions" \
        "$(count_re "$gout" '^\*\*\* This is a resumed session')" $want_resumed
    expect_eq "gnutls-serv EMS connections" "$(count_re "$gout" '^- Options: .*extended master secret')" \
        "$([ "$kind" = ems ] && echo $want_conns || echo 0)"
    expect_nogrep "gnutls-serv handshake error" "$GSERV_FAIL_RE" "$gerr"
    end_test
}

eg_client_vs_gserv 03a-gnutls-serv-ems-tickets tickets ems
eg_client_vs_gserv 03b-gnutls-serv-ems-session-ids session-ids ems
eg_client_vs_gserv 04a-gnutls-serv-no-ems-tickets tickets no-ems
eg_client_vs_gserv 04b-gnutls-serv-no-ems-session-ids session-ids no-ems

echo "# observed outcomes (TLS 1.2)"
printf '# %-7s %-29s %-27s %-11s %s\n' role server client mode outcome
for r in "${TABLE[@]}"; do
    echo "# $r"
done
summary
[ "$NFAIL" -eq 0 ]
