#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Integration tests: emsguard (through test/eg_peer) against stock OpenSSL 3.0
# `openssl s_client` / `openssl s_server` peers, over real TCP on 127.0.0.1.
#
#   BUILD=build bash test/integration.sh        (make integration-check)
#
# Legacy peers (no Extended Master Secret) are stock openssl with an
# OPENSSL_CONF that sets `Options = -ExtendedMasterSecret`; EMS peers get one
# that sets `Options = ExtendedMasterSecret` (the default, made explicit so
# that the machine's own openssl.cnf cannot change it).
#
# Outcomes are read as in s_client: a line starting with `Reused,` is a
# resumption, `New,` a full handshake, a non-zero exit plus an alert line an
# abort.  eg_peer prints the same words.  Every test case prints
# `PASS name` or `FAIL name: details`; the last line is
# `N passed, M failed, K skipped` (test/lib.sh).
#
# Environment: BUILD (default build), OPENSSL (default openssl),
# KEEP_TMP=1 keeps the scratch directory, VERBOSE=1 shows artifacts of
# passing cases too.
set -u

BUILD=${BUILD:-build}
OPENSSL=${OPENSSL:-openssl}
HERE=$(cd "$(dirname "$0")" && pwd)
EG=$(cd "$HERE/.." && pwd)/$BUILD/test/eg_peer
case "$BUILD" in /*) EG=$BUILD/test/eg_peer ;; esac

TO=20            # timeout for every client run, seconds
SERVER_PIDS=()
# shellcheck source=test/lib.sh
. "$HERE/lib.sh"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/eg-integration.XXXXXX") || exit 2

trap cleanup_servers EXIT
trap 'exit 130' INT TERM HUP

if [ ! -x "$EG" ]; then
    fail_now 00-prerequisites "$EG not built (make $BUILD/test/eg_peer)"
    summary
    exit 1
fi
if ! make_fixtures; then
    fail_now 00-prerequisites "cannot make a certificate"
    summary
    exit 1
fi

# ---- the cases ------------------------------------------------------------------

# 1-3: policy server, legacy s_client.  $1 = case name, $2 = extra server
# args (word-split), $3 = extra s_client args.
legacy_client_vs_policy_server() {
    local name=$1 srvargs=$2 cliargs=$3 out
    begin "$name"
    # shellcheck disable=SC2086
    if eg_server "$name-policy" $srvargs; then
        artifact "$SRV_OUT" "$SRV_ERR"
        out=$TMP/$name-legacy.txt
        # shellcheck disable=SC2086
        sclient "$out" "$LEGACY_CNF" -connect 127.0.0.1:$SRV_PORT -tls1_2 -reconnect $cliargs
        expect_eq "legacy s_client exit status" "$CRC" 0
        expect_eq "legacy s_client Reused lines" "$(count_prefix "$out" Reused,)" 0
        expect_eq "legacy s_client New lines" "$(count_prefix "$out" New,)" 6
        # The non-EMS session must not get a ticket either.
        expect_nogrep "ticket issued to a non-EMS client" "TLS session ticket:" "$out"
        stop_server "$SRV_PID"
        check_eg_exit
        expect_eq "server New ems=no lines" "$(grep -Ec '^conn [0-9]+: New ems=no' "$SRV_OUT")" 6
        expect_eq "server Reused lines" "$(grep -Ec '^conn [0-9]+: Reused' "$SRV_OUT")" 0
        expect_eq "counter resumptions" "$(counter "$SRV_OUT" resumptions)" 0
        expect_eq "counter full_without_ems" "$(counter "$SRV_OUT" full_without_ems)" 6
        case " $cliargs $srvargs " in
        *" -no_ticket "* | *" --no-ticket "*)
            expect_ge "counter sessions_not_cached" "$(counter "$SRV_OUT" sessions_not_cached)" 1 ;;
        *)
            expect_ge "counter tickets_withheld" "$(counter "$SRV_OUT" tickets_withheld)" 1 ;;
        esac
        case " $srvargs " in
        *" --ext-cache "*)
            # Non-EMS sessions never reach the application's new-session callback.
            expect_nogrep "non-EMS session stored in the external cache" \
                "ext-cache: stored" "$SRV_ERR" ;;
        esac
    else
        server_up_or_fail "$name-policy"
    fi

    # Contrast: the same against a stock eg_peer server resumes.
    # shellcheck disable=SC2086
    if eg_server "$name-stock" --stock $srvargs; then
        artifact "$SRV_OUT" "$SRV_ERR"
        out=$TMP/$name-legacy-stock.txt
        # shellcheck disable=SC2086
        sclient "$out" "$LEGACY_CNF" -connect 127.0.0.1:$SRV_PORT -tls1_2 -reconnect $cliargs
        expect_eq "contrast (--stock): exit status" "$CRC" 0
        expect_eq "contrast (--stock): Reused lines" "$(count_prefix "$out" Reused,)" 5
        stop_server "$SRV_PID"
        check_eg_exit
        case " $srvargs | $cliargs " in
        *" --ext-cache "*"| -no_ticket "*)
            # Session IDs: the resumptions came from the external cache.
            expect_grep "contrast (--stock): external cache hit" "ext-cache: lookup hit" "$SRV_ERR" ;;
        esac
    else
        server_up_or_fail "$name-stock"
    fi
    end_test
}

legacy_client_vs_policy_server 01-legacy-client-tickets "" ""
legacy_client_vs_policy_server 02-legacy-client-session-ids "" "-no_ticket"
legacy_client_vs_policy_server 03a-legacy-client-ext-cache-session-ids "--ext-cache" "-no_ticket"
legacy_client_vs_policy_server 03b-legacy-client-ext-cache-tickets "--ext-cache" ""

# 4: EMS s_client resumes against the policy server.
ems_client_vs_policy_server() {
    local name=$1 srvargs=$2 cliargs=$3 out
    begin "$name"
    # shellcheck disable=SC2086
    if eg_server "$name" $srvargs; then
        artifact "$SRV_OUT" "$SRV_ERR"
        out=$TMP/$name-ems.txt
        # shellcheck disable=SC2086
        sclient "$out" "$EMS_CNF" -connect 127.0.0.1:$SRV_PORT -tls1_2 -reconnect $cliargs
        expect_eq "EMS s_client exit status" "$CRC" 0
        expect_eq "EMS s_client Reused lines" "$(count_prefix "$out" Reused,)" 5
        expect_eq "EMS s_client New lines" "$(count_prefix "$out" New,)" 1
        stop_server "$SRV_PID"
        check_eg_exit
        expect_eq "server Reused ems=yes lines" "$(grep -Ec '^conn [0-9]+: Reused ems=yes' "$SRV_OUT")" 5
        expect_eq "counter resumptions" "$(counter "$SRV_OUT" resumptions)" 5
        expect_eq "counter full_handshakes" "$(counter "$SRV_OUT" full_handshakes)" 1
        case " $srvargs " in
        *" --ext-cache "*)
            expect_grep "EMS session stored in the external cache" "ext-cache: stored" "$SRV_ERR" ;;
        esac
    else
        server_up_or_fail "$name"
    fi
    end_test
}

ems_client_vs_policy_server 04a-ems-client-resumes-tickets "" ""
ems_client_vs_policy_server 04b-ems-client-resumes-session-ids "" "-no_ticket"
ems_client_vs_policy_server 04c-ems-client-resumes-ext-cache "--ext-cache" "-no_ticket"

# 5: an EMS session offered in a ClientHello without EMS: handshake_failure.
ems_session_legacy_client() {
    local name=$1 cliargs=$2 sess out
    begin "$name"
    if eg_server "$name"; then
        artifact "$SRV_OUT" "$SRV_ERR"
        sess=$TMP/$name.sess
        out=$TMP/$name-ems.txt
        # shellcheck disable=SC2086
        sclient "$out" "$EMS_CNF" -connect 127.0.0.1:$SRV_PORT -tls1_2 -sess_out "$sess" $cliargs
        expect_eq "EMS s_client -sess_out exit status" "$CRC" 0
        expect_grep "EMS session written" "Extended master secret: yes" "$out"
        out=$TMP/$name-legacy.txt
        # shellcheck disable=SC2086
        sclient "$out" "$LEGACY_CNF" -connect 127.0.0.1:$SRV_PORT -tls1_2 -sess_in "$sess" $cliargs
        expect_ne "legacy s_client -sess_in exit status" "$CRC" 0
        expect_grep "alert line" "alert handshake failure|SSL alert number 40" "$out"
        expect_eq "legacy s_client Reused lines" "$(count_prefix "$out" Reused,)" 0
        stop_server "$SRV_PID"
        check_eg_exit
        expect_grep "server reports the failed handshake" "^conn 1: failed" "$SRV_OUT"
        expect_eq "counter aborted_inconsistent" "$(counter "$SRV_OUT" aborted_inconsistent)" 1
        # Aborted resumptions are logged at EventLogging level 1 (the default).
        if ! grep -i 'server' "$SRV_ERR" | grep -qi 'abort'; then
            err "no log line about the aborted resumption (server, abort) in stderr"
        fi
        expect_eq "counter resumptions" "$(counter "$SRV_OUT" resumptions)" 0
    else
        server_up_or_fail "$name"
    fi
    end_test
}

ems_session_legacy_client 05a-ems-session-legacy-client-aborts-tickets ""
ems_session_legacy_client 05b-ems-session-legacy-client-aborts-session-ids "-no_ticket"

# 6: policy client against a legacy s_server: never offers, always New.
begin 06-policy-client-legacy-server
if stock_server 06-legacy-s_server "$LEGACY_CNF"; then
    artifact "$SRV_ERR"
    for mode in tickets session-ids; do
        extra=()
        [ $mode = session-ids ] && extra=(--no-ticket)
        out=$TMP/06-policy-$mode.txt
        egclient "$out" --connect 127.0.0.1:$SRV_PORT --reconnect 3 "${extra[@]}"
        expect_eq "$mode: policy client exit status" "$CRC" 0
        expect_eq "$mode: policy client New lines" "$(count_prefix "$out" New,)" 4
        expect_eq "$mode: policy client Reused lines" "$(count_prefix "$out" Reused,)" 0
        expect_eq "$mode: sessions offered" "$(grep -c 'offered=yes' "$out")" 0
        expect_eq "$mode: counter refused_no_ems" "$(counter "$out" refused_no_ems)" 3
        out=$TMP/06-stock-$mode.txt
        egclient "$out" --connect 127.0.0.1:$SRV_PORT --reconnect 3 --stock "${extra[@]}"
        expect_eq "$mode: contrast (--stock) exit status" "$CRC" 0
        expect_eq "$mode: contrast (--stock) Reused lines" "$(count_prefix "$out" Reused,)" 3
    done
    stop_server "$SRV_PID"
else
    server_up_or_fail 06-legacy-s_server
fi
end_test

# 7: policy client against an EMS s_server resumes.
begin 07-policy-client-ems-server
if stock_server 07-ems-s_server "$EMS_CNF"; then
    artifact "$SRV_ERR"
    for mode in tickets session-ids; do
        extra=()
        [ $mode = session-ids ] && extra=(--no-ticket)
        out=$TMP/07-policy-$mode.txt
        egclient "$out" --connect 127.0.0.1:$SRV_PORT --reconnect 3 "${extra[@]}"
        expect_eq "$mode: policy client exit status" "$CRC" 0
        expect_eq "$mode: policy client Reused lines" "$(count_prefix "$out" Reused,)" 3
        expect_eq "$mode: policy client ems=yes lines" "$(grep -c ' ems=yes' "$out")" 4
        expect_eq "$mode: counter resumptions" "$(counter "$out" resumptions)" 3
    done
    stop_server "$SRV_PID"
else
    server_up_or_fail 07-ems-s_server
fi
end_test

# 8: a non-EMS session file is not offered by the policy client.
begin 08-policy-client-non-ems-session-file
if stock_server 08-legacy-s_server "$LEGACY_CNF"; then
    artifact "$SRV_ERR"
    for mode in tickets session-ids; do
        sargs=()
        [ $mode = session-ids ] && sargs=(-no_ticket)
        sess=$TMP/08-$mode.sess
        out=$TMP/08-get-$mode.txt
        sclient "$out" "$EMS_CNF" -connect 127.0.0.1:$SRV_PORT -tls1_2 -sess_out "$sess" "${sargs[@]}"
        expect_eq "$mode: s_client -sess_out exit status" "$CRC" 0
        OPENSSL_CONF=$EMS_CNF timeout $TO "$OPENSSL" sess_id -text -noout -in "$sess" \
            >"$TMP/08-sess-$mode.txt" 2>&1
        expect_grep "$mode: session file lacks EMS" "Extended master secret: no" "$TMP/08-sess-$mode.txt"
        out=$TMP/08-policy-$mode.txt
        egclient "$out" --connect 127.0.0.1:$SRV_PORT --sess-in "$sess"
        expect_eq "$mode: policy client exit status" "$CRC" 0
        expect_eq "$mode: policy client New lines" "$(count_prefix "$out" New,)" 1
        expect_eq "$mode: policy client Reused lines" "$(count_prefix "$out" Reused,)" 0
        expect_grep "$mode: session not offered" "^New,.*offered=no" "$out"
        out=$TMP/08-stock-$mode.txt
        egclient "$out" --connect 127.0.0.1:$SRV_PORT --sess-in "$sess" --stock
        expect_eq "$mode: contrast (--stock) exit status" "$CRC" 0
        expect_grep "$mode: contrast (--stock) offers and resumes" "^Reused,.*offered=yes" "$out"
    done
    stop_server "$SRV_PID"
else
    server_up_or_fail 08-legacy-s_server
fi
end_test

# 9: TLS 1.3 is not affected.  s_client -reconnect closes each connection
# right after the handshake, before the TLS 1.3 NewSessionTicket arrives, so
# it never resumes TLS 1.3, not even against a stock server; the s_client
# legs use -sess_out (stdin held open 1 s) and -sess_in instead.
begin 09-tls13-unaffected
if eg_server 09-tls13 --tls13; then
    artifact "$SRV_OUT" "$SRV_ERR"
    for kind in legacy ems; do
        cnf=$EMS_CNF
        [ $kind = legacy ] && cnf=$LEGACY_CNF
        sess=$TMP/09-$kind.sess
        out=$TMP/09-$kind-out.txt
        sclient_wait "$out" "$cnf" -connect 127.0.0.1:$SRV_PORT -tls1_3 -sess_out "$sess"
        expect_eq "$kind s_client -sess_out exit status" "$CRC" 0
        expect_grep "$kind s_client TLS 1.3" "^New, TLSv1.3" "$out"
        out=$TMP/09-$kind-in.txt
        sclient "$out" "$cnf" -connect 127.0.0.1:$SRV_PORT -tls1_3 -sess_in "$sess"
        expect_eq "$kind s_client -sess_in exit status" "$CRC" 0
        expect_eq "$kind s_client Reused lines" "$(count_prefix "$out" Reused,)" 1
    done
    for kind in ems no-ems; do
        extra=()
        [ $kind = no-ems ] && extra=(--no-ems)
        out=$TMP/09-eg-$kind.txt
        egclient "$out" --connect 127.0.0.1:$SRV_PORT --tls13 --reconnect 3 "${extra[@]}"
        expect_eq "policy client ($kind) exit status" "$CRC" 0
        expect_eq "policy client ($kind) TLS 1.3 Reused lines" \
            "$(grep -c '^Reused, TLSv1.3' "$out")" 3
    done
    stop_server "$SRV_PID"
    check_eg_exit
    expect_eq "server Reused TLSv1.3 lines" "$(grep -Ec '^conn [0-9]+: Reused .*proto=TLSv1.3' "$SRV_OUT")" 8
else
    server_up_or_fail 09-tls13
fi
end_test

# 10: DisableServerExtendedMasterSecret=1: the server neither offers nor
# accepts EMS and resumes its (non-EMS) sessions, Schannel's legacy mode.
disable_toggle() {
    local name=$1 cliargs=$2 out
    begin "$name"
    if eg_server "$name" --policy DisableServerExtendedMasterSecret=1; then
        artifact "$SRV_OUT" "$SRV_ERR"
        out=$TMP/$name-ems.txt
        # shellcheck disable=SC2086
        sclient "$out" "$EMS_CNF" -connect 127.0.0.1:$SRV_PORT -tls1_2 -reconnect $cliargs
        expect_eq "EMS s_client exit status" "$CRC" 0
        expect_eq "EMS s_client Reused lines" "$(count_prefix "$out" Reused,)" 5
        expect_grep "session without EMS" "Extended master secret: no" "$out"
        stop_server "$SRV_PID"
        check_eg_exit
        expect_eq "server ems=no lines" "$(grep -Ec '^conn [0-9]+: (New|Reused) ems=no' "$SRV_OUT")" 6
        expect_eq "server ems=yes lines" "$(grep -Ec '^conn [0-9]+: .*ems=yes' "$SRV_OUT")" 0
        expect_grep "load-time notice names the weakening key" \
            "DisableServerExtendedMasterSecret" "$SRV_ERR"
    else
        server_up_or_fail "$name"
    fi
    end_test
}

disable_toggle 10a-disable-server-ems-tickets ""
disable_toggle 10b-disable-server-ems-session-ids "-no_ticket"

# 11: a non-EMS session from another server process (shared ticket keys, or a
# shared external cache directory) is refused with a full handshake, and the
# refusal is logged with role and peer address.
cross_process_refusal() {
    local name=$1 via=$2 sess out share cli
    begin "$name"
    if [ "$via" = ticket ]; then
        share=(--ticket-seed "eg-$RANDOM-$$")
        cli=()
    else
        share=(--ext-cache-dir "$TMP/$name-cache" --no-ticket)
        cli=(-no_ticket)
    fi
    sess=$TMP/$name.sess
    # A stock server issues a non-EMS session to a legacy client.
    if eg_server "$name-issuer" --stock "${share[@]}"; then
        artifact "$SRV_ERR"
        out=$TMP/$name-get.txt
        sclient "$out" "$LEGACY_CNF" -connect 127.0.0.1:$SRV_PORT -tls1_2 -sess_out "$sess" "${cli[@]}"
        expect_eq "legacy s_client -sess_out exit status" "$CRC" 0
        stop_server "$SRV_PID"
        check_eg_exit
    else
        server_up_or_fail "$name-issuer"
    fi
    # Contrast: a second stock process with the same keys/cache resumes it.
    if eg_server "$name-stock" --stock "${share[@]}"; then
        artifact "$SRV_ERR"
        out=$TMP/$name-stock.txt
        sclient "$out" "$LEGACY_CNF" -connect 127.0.0.1:$SRV_PORT -tls1_2 -sess_in "$sess" "${cli[@]}"
        expect_eq "contrast (--stock): exit status" "$CRC" 0
        expect_eq "contrast (--stock): Reused lines" "$(count_prefix "$out" Reused,)" 1
        stop_server "$SRV_PID"
        check_eg_exit
    else
        server_up_or_fail "$name-stock"
    fi
    # The policy server with the same keys/cache refuses it, gracefully.
    if eg_server "$name-policy" --policy EventLogging=7 "${share[@]}"; then
        artifact "$SRV_OUT" "$SRV_ERR"
        out=$TMP/$name-policy.txt
        sclient "$out" "$LEGACY_CNF" -connect 127.0.0.1:$SRV_PORT -tls1_2 -sess_in "$sess" "${cli[@]}"
        expect_eq "policy: legacy s_client exit status" "$CRC" 0
        expect_eq "policy: Reused lines" "$(count_prefix "$out" Reused,)" 0
        expect_eq "policy: New lines" "$(count_prefix "$out" New,)" 1
        expect_nogrep "policy: alert" "alert" "$out"
        stop_server "$SRV_PID"
        check_eg_exit
        expect_eq "counter refused_no_ems" "$(counter "$SRV_OUT" refused_no_ems)" 1
        expect_eq "counter resumptions" "$(counter "$SRV_OUT" resumptions)" 0
        # One line with role, the refusal, the reason and the peer address.
        if ! grep -i 'server' "$SRV_ERR" | grep -i 'resum' | grep -q '127\.0\.0\.1'; then
            err "no refusal log line with server/resum/127.0.0.1 in stderr"
        fi
        expect_grep "refusal log line (exact form)" \
            "^emsguard: warning: role=server refused resumption.*reason=no-ems.*peer=127\\.0\\.0\\.1:[0-9]+" \
            "$SRV_ERR"
    else
        server_up_or_fail "$name-policy"
    fi
    end_test
}

cross_process_refusal 11a-refusal-logged-shared-ticket-keys ticket
cross_process_refusal 11b-refusal-logged-shared-external-cache session-id

summary
[ "$NFAIL" -eq 0 ]
