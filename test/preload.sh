#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Integration tests of libemsguard-preload.so against STOCK Debian binaries
# (openssl s_server / s_client, curl, nginx) over real TCP on 127.0.0.1.
#
#   BUILD=build SANITIZE= bash test/preload.sh
#   BUILD=build-san SANITIZE=1 bash test/preload.sh
#
# Nothing here is compiled against emsguard: the policy reaches the stock
# programs only through LD_PRELOAD=$BUILD/libemsguard-preload.so, which
# dlopens $BUILD/libemsguard.so.0 next to it.  Policies come from
# EMSGUARD_CONF (an openssl.cnf-style file with an emsguard provider
# section), the process's openssl.cnf, or the built-in defaults.
#
# Legacy peers (no Extended Master Secret) are stock openssl/curl with an
# OPENSSL_CONF that sets `Options = -ExtendedMasterSecret`; EMS peers get one
# that sets `Options = ExtendedMasterSecret`.
#
# Outcomes are read as in s_client: a line starting with `Reused,` is a
# resumption, `New,` a full handshake, a non-zero exit plus an alert line an
# abort.  `s_server -www` returns the same words in its status page, which is
# how curl's handshakes are classified; nginx's are read from its own access
# log ($ssl_session_reused: `r` resumed, `.` full handshake).
#
# Every case prints `PASS name`, `FAIL name: details` or `SKIP name: reason`;
# the last line is `N passed, M failed, K skipped`.  A skipped case is never
# counted as passed, and a missing required peer (openssl, curl, nginx) is a
# FAIL, not a SKIP.
#
# Sanitizer builds (the preload library linked against libasan): libasan is
# preloaded in front of it, with ASAN_OPTIONS=detect_leaks=0 (the stock
# programs' own leaks are not ours); any AddressSanitizer/UBSan report in a
# preloaded process's stderr fails the case.  Debian's curl links
# libp11-kit (via librtmp -> gnutls), and with libasan preloaded p11-kit's
# initialisation leaves glibc's __libc_setlocale_lock in a broken state, so
# curl's second setlocale() deadlocks before it does anything -- with plain
# `LD_PRELOAD=libasan.so curl --version`, no emsguard involved.  Curl then
# runs with LOCPATH=/nonexistent, which makes glibc skip the locale archive
# and avoids the hang; it changes nothing in TLS.
#
# Environment: BUILD (default build), SANITIZE (1: the build must be a
# sanitizer build), OPENSSL, CURL, NGINX, CC (default cc: builds the fake
# libssl of case 11b), KEEP_TMP=1 keeps the scratch directory, VERBOSE=1
# shows artifacts of passing cases too.
set -u

BUILD=${BUILD:-build}
OPENSSL=${OPENSSL:-openssl}
CURL=${CURL:-curl}
NGINX=${NGINX:-nginx}
CC=${CC:-cc}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
case "$BUILD" in
/*) BDIR=$BUILD ;;
*) BDIR=$ROOT/$BUILD ;;
esac
PRELOAD=$BDIR/libemsguard-preload.so

TO=20            # timeout for every client run, seconds
SERVER_PIDS=()
NGINX_PIDS=()
# shellcheck source=test/lib.sh
. "$HERE/lib.sh"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/eg-preload.XXXXXX") || exit 2

# nginx workers outlive a master that died abnormally: cleanup_servers
# collects them first.
trap 'cleanup_servers "${NGINX_PIDS[@]}"' EXIT
trap 'exit 130' INT TERM HUP


# ---- prerequisites ------------------------------------------------------------

for f in "$PRELOAD" "$BDIR/libemsguard.so.0"; do
    if [ ! -e "$f" ]; then
        echo "preload.sh: $f not built (make $BUILD/libemsguard-preload.so $BUILD/libemsguard.so.0 $BUILD/emsguard.so)" >&2
        fail_now 00-prerequisites "$f missing"
        summary
        exit 1
    fi
done

# A sanitizer build must have libasan first in the process.
ASAN_RT=$(ldd "$PRELOAD" 2>/dev/null | awk '$1 ~ /^libasan\.so/ { print $3; exit }')
if [ "${SANITIZE:-}" = 1 ] && [ -z "$ASAN_RT" ]; then
    fail_now 00-prerequisites "SANITIZE=1 but $PRELOAD is not linked against libasan"
    summary
    exit 1
fi
if [ -n "$ASAN_RT" ]; then
    LDP="$ASAN_RT:$PRELOAD"
    # Keep UBSAN_OPTIONS from the caller (make sets halt_on_error=1).
    PRE_ENV=(LD_PRELOAD="$LDP" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1)
    CURL_ENV=(LOCPATH=/nonexistent) # see the header: p11-kit + libasan hang
else
    LDP=$PRELOAD
    PRE_ENV=(LD_PRELOAD="$LDP")
    CURL_ENV=()
fi

for tool in "$OPENSSL" "$CURL"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        fail_now 00-prerequisites "required peer '$tool' not installed (.ci/install-deps)"
        summary
        exit 1
    fi
done
HAVE_NGINX=1
if ! command -v "$NGINX" >/dev/null 2>&1 && [ ! -x "$NGINX" ]; then
    if [ -x /usr/sbin/nginx ]; then
        NGINX=/usr/sbin/nginx
    else
        HAVE_NGINX=0
    fi
fi

# ---- fixtures -----------------------------------------------------------------

if ! make_fixtures; then
    fail_now 00-prerequisites "cannot make a certificate"
    summary
    exit 1
fi

# Policy files for EMSGUARD_CONF: an openssl.cnf with an emsguard provider
# section.  The preload only parses it (the module is never loaded from it).
# write_eg_cnf FILE MODULE KEY=VALUE...
write_eg_cnf() {
    local file=$1 module=$2 kv
    shift 2
    {
        eg_provider_cnf "$module"
        for kv in "$@"; do
            echo "${kv%%=*} = ${kv#*=}"
        done
    } >"$file"
}
EG_LOG3=$TMP/eg-log3.cnf
EG_LOG7=$TMP/eg-log7.cnf
EG_BAD=$TMP/eg-bad.cnf
write_eg_cnf "$EG_LOG3" emsguard.so EventLogging=3
write_eg_cnf "$EG_LOG7" emsguard.so EventLogging=dword:00000007
write_eg_cnf "$EG_BAD" emsguard.so EventLogging=banana

# ---- ports and servers (the pattern of test/integration.sh) ------------------

# stop_policy_server: stops the preloaded s_server (SRV_PID), which must die
# of the SIGTERM (status 143), not of a crash or sanitizer abort on the way,
# and must not have reported anything to the sanitizers.
stop_policy_server() {
    stop_server "$SRV_PID"
    expect_eq "preloaded s_server exit status (SIGTERM)" "$SRV_RC" 143
    san_clean "$SRV_ERR"
}

# policy_server NAME EGCONF ARGS...: the same s_server binary, preloaded.
# EGCONF empty: no EMSGUARD_CONF (the built-in defaults).  The server's own
# openssl.cnf is EMS_CNF, which has no emsguard section.  EMSGUARD_DEBUG=1,
# so its stderr says where the policy came from.
policy_server() {
    local name=$1 egconf=$2
    shift 2
    SRV_ENV=(OPENSSL_CONF="$EMS_CNF" EMSGUARD_DEBUG=1 "${PRE_ENV[@]}")
    [ -n "$egconf" ] && SRV_ENV+=(EMSGUARD_CONF="$egconf")
    start_server "$name" "$OPENSSL" s_server -accept @PORT@ -cert "$CERT" -key "$KEY" \
        -www -quiet "$@"
}

# psclient OUT CNF EGCONF ARGS...: the same s_client, preloaded; stdout in
# OUT, stderr (emsguard's log lines) in OUT.err.  EGCONF empty: defaults.
psclient() {
    local out=$1 cnf=$2 egconf=$3 e
    shift 3
    e=(OPENSSL_CONF="$cnf" "${PRE_ENV[@]}")
    [ -n "$egconf" ] && e+=(EMSGUARD_CONF="$egconf")
    env "${e[@]}" timeout $TO "$OPENSSL" s_client "$@" </dev/null >"$out" 2>"$out.err"
    CRC=$?
    artifact "$out" "$out.err"
    san_clean "$out.err"
}

# psclient_wait: psclient with stdin open for 1 s (TLS 1.3 -sess_out).
psclient_wait() {
    local out=$1 cnf=$2 egconf=$3 e
    shift 3
    e=(OPENSSL_CONF="$cnf" "${PRE_ENV[@]}")
    [ -n "$egconf" ] && e+=(EMSGUARD_CONF="$egconf")
    sleep 1 | env "${e[@]}" timeout $TO "$OPENSSL" s_client "$@" >"$out" 2>"$out.err"
    CRC=${PIPESTATUS[1]}
    artifact "$out" "$out.err"
    san_clean "$out.err"
}

# sclient_req OUT CNF ARGS...: stock s_client sending one HTTP/1.0 request
# (so that nginx logs the connection), waiting for the server to close.
sclient_req() {
    local out=$1 cnf=$2 uri=$3
    shift 3
    printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "$uri" \
        | OPENSSL_CONF=$cnf timeout $TO "$OPENSSL" s_client -ign_eof "$@" >"$out" 2>&1
    CRC=${PIPESTATUS[1]}
    artifact "$out"
}

# sess_ems FILE: "yes"/"no" from `openssl sess_id -text`.
sess_ems() {
    OPENSSL_CONF=$EMS_CNF timeout $TO "$OPENSSL" sess_id -text -noout -in "$1" 2>/dev/null \
        | awk -F': *' '/Extended master secret/ { print $2; exit }'
}

# curl_run OUT CNF PRELOADED EGCONF ARGS...: curl pinned to TLS 1.2, -k,
# ignoring ~/.curlrc and proxies; the body in OUT, -v in OUT.err.
curl_run() {
    local out=$1 cnf=$2 pre=$3 egconf=$4 e
    shift 4
    e=(OPENSSL_CONF="$cnf")
    if [ "$pre" = 1 ]; then
        e+=("${PRE_ENV[@]}" "${CURL_ENV[@]}")
        [ -n "$egconf" ] && e+=(EMSGUARD_CONF="$egconf")
    fi
    env "${e[@]}" timeout $TO "$CURL" -q -sS -v -k --noproxy '*' --tlsv1.2 --tls-max 1.2 \
        "$@" >"$out" 2>"$out.err"
    CRC=$?
    artifact "$out.err"
    [ "$pre" = 1 ] && san_clean "$out.err"
}

# ---- 1. policy s_server vs stock s_client: legacy -> New, EMS -> Reused ------

# $1 name, $2 EMSGUARD_CONF ("" = defaults), $3 server args, $4 client args
server_mode() {
    local name=$1 egconf=$2 srvargs=$3 cliargs=$4 out src
    begin "$name"
    # shellcheck disable=SC2086
    if policy_server "$name-policy" "$egconf" $srvargs; then
        artifact "$SRV_OUT" "$SRV_ERR"
        src="built-in defaults"
        [ -n "$egconf" ] && src=$egconf
        expect_grep "debug line names the policy source" \
            "^emsguard-preload: debug: policy from ${src//./\\.}\$" "$SRV_ERR"
        out=$TMP/$name-legacy.txt
        # shellcheck disable=SC2086
        sclient "$out" "$LEGACY_CNF" -connect 127.0.0.1:"$SRV_PORT" -tls1_2 -reconnect $cliargs
        expect_eq "legacy s_client exit status" "$CRC" 0
        expect_eq "legacy s_client New lines" "$(count_prefix "$out" New,)" 6
        expect_eq "legacy s_client Reused lines" "$(count_prefix "$out" Reused,)" 0
        expect_nogrep "legacy s_client: alert" "alert" "$out"
        expect_nogrep "ticket issued to a non-EMS client" "TLS session ticket:" "$out"
        case " $srvargs " in
        *" -ext_cache "*)
            # The policy's new-session callback runs first and keeps non-EMS
            # sessions from s_server's (later-set, chained) callback, which
            # reports to stderr.
            expect_nogrep "non-EMS session reached s_server's external cache" \
                "New session added to external cache" "$SRV_ERR" ;;
        esac
        out=$TMP/$name-ems.txt
        # shellcheck disable=SC2086
        sclient "$out" "$EMS_CNF" -connect 127.0.0.1:"$SRV_PORT" -tls1_2 -reconnect $cliargs
        expect_eq "EMS s_client exit status" "$CRC" 0
        expect_eq "EMS s_client New lines" "$(count_prefix "$out" New,)" 1
        expect_eq "EMS s_client Reused lines" "$(count_prefix "$out" Reused,)" 5
        case " $srvargs | $cliargs " in
        *" -ext_cache "*"| -no_ticket "*)
            # Session IDs through s_server's external cache: its callbacks
            # were chained behind the policy's, not dropped.
            expect_eq "EMS session stored by s_server's new-session callback" \
                "$(count_re "$SRV_ERR" "New session added to external cache")" 1
            expect_ge "EMS resumptions served by s_server's get-session callback" \
                "$(count_re "$SRV_ERR" "Lookup session: cache hit")" 5 ;;
        esac
        stop_policy_server
        if [ "$egconf" = "$EG_LOG7" ]; then
            # EventLogging=7 from EMSGUARD_CONF: informational lines appear.
            expect_grep "info line for the non-EMS session (EventLogging=7)" \
                "^emsguard: info: role=server (session not cached|ticket withheld):.*reason=no-ems" "$SRV_ERR"
        else
            # Defaults (EventLogging=1): errors only.
            expect_nogrep "log line at default EventLogging" "^emsguard: (warning|info):" "$SRV_ERR"
        fi
    else
        server_up_or_fail "$name-policy"
    fi

    # Contrast: the same binary and arguments without the preload resumes the
    # legacy client, so this case can fail.
    # shellcheck disable=SC2086
    if stock_server "$name-stock" "$EMS_CNF" $srvargs; then
        artifact "$SRV_ERR"
        out=$TMP/$name-legacy-stock.txt
        # shellcheck disable=SC2086
        sclient "$out" "$LEGACY_CNF" -connect 127.0.0.1:"$SRV_PORT" -tls1_2 -reconnect $cliargs
        expect_eq "contrast (no preload): exit status" "$CRC" 0
        expect_eq "contrast (no preload): Reused lines" "$(count_prefix "$out" Reused,)" 5
        stop_server "$SRV_PID"
    else
        server_up_or_fail "$name-stock"
    fi
    end_test
}

server_mode 01a-s_server-tickets-defaults "" "" ""
server_mode 01b-s_server-session-ids-defaults "" "" "-no_ticket"
server_mode 01c-s_server-ext-cache-session-ids-conf "$EG_LOG7" "-ext_cache" "-no_ticket"
server_mode 01d-s_server-ext-cache-tickets-conf "$EG_LOG7" "-ext_cache" ""

# ---- 1. EMS session in a ClientHello without EMS: handshake_failure ----------

ems_session_legacy_hello() {
    local name=$1 srvargs=$2 cliargs=$3 sess out
    begin "$name"
    # shellcheck disable=SC2086
    if policy_server "$name" "" $srvargs; then
        artifact "$SRV_OUT" "$SRV_ERR"
        sess=$TMP/$name.sess
        out=$TMP/$name-ems.txt
        # shellcheck disable=SC2086
        sclient "$out" "$EMS_CNF" -connect 127.0.0.1:"$SRV_PORT" -tls1_2 -sess_out "$sess" $cliargs
        expect_eq "EMS s_client -sess_out exit status" "$CRC" 0
        expect_eq "session file has EMS" "$(sess_ems "$sess")" yes
        out=$TMP/$name-legacy.txt
        # shellcheck disable=SC2086
        sclient "$out" "$LEGACY_CNF" -connect 127.0.0.1:"$SRV_PORT" -tls1_2 -sess_in "$sess" $cliargs
        expect_ne "legacy s_client -sess_in exit status" "$CRC" 0
        expect_grep "alert line" "alert handshake failure|SSL alert number 40" "$out"
        expect_eq "legacy s_client Reused lines" "$(count_prefix "$out" Reused,)" 0
        stop_policy_server
        # Logged at EventLogging=1, the default.
        expect_grep "abort logged" "^emsguard: error: role=server aborted resumption:.*reason=inconsistent" "$SRV_ERR"
    else
        server_up_or_fail "$name"
    fi
    end_test
}

ems_session_legacy_hello 02a-ems-session-legacy-hello-aborts-tickets "" ""
ems_session_legacy_hello 02b-ems-session-legacy-hello-aborts-session-ids "" "-no_ticket"
ems_session_legacy_hello 02c-ems-session-legacy-hello-aborts-ext-cache "-ext_cache" "-no_ticket"

# ---- 1. non-EMS session, EMS (or legacy) ClientHello: full handshake ----------
#
# A policy s_server never makes a resumable non-EMS session: no ticket, not
# cached.  What a client can still hold is the session a legacy connection
# left it (a session ID the server forgot); offering it later, with or
# without EMS, must give a plain full handshake, no alert.  The stronger form
# of this row -- the server *can* decrypt a non-EMS ticket minted elsewhere
# and must still refuse it -- needs shared ticket keys, which s_server cannot
# do; nginx can, see case 09c.
non_ems_session_later() {
    local name=$1 cliargs=$2 sess out
    begin "$name"
    sess=$TMP/$name.sess
    if policy_server "$name" ""; then
        artifact "$SRV_OUT" "$SRV_ERR"
        out=$TMP/$name-get.txt
        # shellcheck disable=SC2086
        sclient "$out" "$LEGACY_CNF" -connect 127.0.0.1:"$SRV_PORT" -tls1_2 -sess_out "$sess" $cliargs
        expect_eq "legacy s_client -sess_out exit status" "$CRC" 0
        expect_eq "session file lacks EMS" "$(sess_ems "$sess")" no
        expect_nogrep "ticket issued for a non-EMS session" "TLS session ticket:" "$out"
        for kind in ems legacy; do
            cnf=$EMS_CNF
            [ $kind = legacy ] && cnf=$LEGACY_CNF
            out=$TMP/$name-$kind-in.txt
            # shellcheck disable=SC2086
            sclient "$out" "$cnf" -connect 127.0.0.1:"$SRV_PORT" -tls1_2 -sess_in "$sess" $cliargs
            expect_eq "$kind s_client -sess_in exit status" "$CRC" 0
            expect_eq "$kind s_client New lines" "$(count_prefix "$out" New,)" 1
            expect_eq "$kind s_client Reused lines" "$(count_prefix "$out" Reused,)" 0
            expect_nogrep "$kind s_client: alert" "alert" "$out"
        done
        stop_policy_server
    else
        server_up_or_fail "$name"
    fi
    # Contrast: a stock server resumes the same kind of session.
    if stock_server "$name-stock" "$EMS_CNF"; then
        artifact "$SRV_ERR"
        out=$TMP/$name-stock-get.txt
        # shellcheck disable=SC2086
        sclient "$out" "$LEGACY_CNF" -connect 127.0.0.1:"$SRV_PORT" -tls1_2 -sess_out "$sess.stock" $cliargs
        out=$TMP/$name-stock-in.txt
        # shellcheck disable=SC2086
        sclient "$out" "$LEGACY_CNF" -connect 127.0.0.1:"$SRV_PORT" -tls1_2 -sess_in "$sess.stock" $cliargs
        expect_eq "contrast (no preload): Reused lines" "$(count_prefix "$out" Reused,)" 1
        stop_server "$SRV_PID"
    else
        server_up_or_fail "$name-stock"
    fi
    end_test
}

non_ems_session_later 03a-non-ems-session-offered-later-tickets ""
non_ems_session_later 03b-non-ems-session-offered-later-session-ids "-no_ticket"

# ---- 2. policy s_client vs stock legacy s_server: never offers ---------------

begin 04-s_client-vs-legacy-s_server
if stock_server 04-legacy-s_server "$LEGACY_CNF"; then
    artifact "$SRV_ERR"
    for mode in tickets session-ids; do
        cargs=()
        [ $mode = session-ids ] && cargs=(-no_ticket)
        out=$TMP/04-policy-$mode.txt
        psclient "$out" "$EMS_CNF" "$EG_LOG3" -connect 127.0.0.1:"$SRV_PORT" -tls1_2 -reconnect "${cargs[@]}"
        expect_eq "$mode: preloaded -reconnect exit status" "$CRC" 0
        expect_eq "$mode: preloaded -reconnect New lines" "$(count_prefix "$out" New,)" 6
        expect_eq "$mode: preloaded -reconnect Reused lines" "$(count_prefix "$out" Reused,)" 0
        expect_eq "$mode: 'did not offer' warnings (EventLogging=3)" \
            "$(count_re "$out.err" "^emsguard: warning: role=client did not offer session.*reason=no-ems")" 5
        out=$TMP/04-stock-$mode.txt
        sclient "$out" "$EMS_CNF" -connect 127.0.0.1:"$SRV_PORT" -tls1_2 -reconnect "${cargs[@]}"
        expect_eq "$mode: contrast (no preload) -reconnect Reused lines" "$(count_prefix "$out" Reused,)" 5

        # A session file written by a stock client, read by a preloaded one.
        sess=$TMP/04-$mode.sess
        out=$TMP/04-get-$mode.txt
        sclient "$out" "$EMS_CNF" -connect 127.0.0.1:"$SRV_PORT" -tls1_2 -sess_out "$sess" "${cargs[@]}"
        expect_eq "$mode: stock -sess_out exit status" "$CRC" 0
        expect_eq "$mode: session file lacks EMS" "$(sess_ems "$sess")" no
        out=$TMP/04-policy-in-$mode.txt
        psclient "$out" "$EMS_CNF" "$EG_LOG3" -connect 127.0.0.1:"$SRV_PORT" -tls1_2 -sess_in "$sess" "${cargs[@]}"
        expect_eq "$mode: preloaded -sess_in exit status" "$CRC" 0
        expect_eq "$mode: preloaded -sess_in New lines" "$(count_prefix "$out" New,)" 1
        expect_eq "$mode: preloaded -sess_in Reused lines" "$(count_prefix "$out" Reused,)" 0
        expect_grep "$mode: session not offered (logged)" \
            "^emsguard: warning: role=client did not offer session.*via=set-session" "$out.err"
        out=$TMP/04-stock-in-$mode.txt
        sclient "$out" "$EMS_CNF" -connect 127.0.0.1:"$SRV_PORT" -tls1_2 -sess_in "$sess" "${cargs[@]}"
        expect_eq "$mode: contrast (no preload) -sess_in Reused lines" "$(count_prefix "$out" Reused,)" 1
    done
    stop_server "$SRV_PID"
else
    server_up_or_fail 04-legacy-s_server
fi
end_test

# ---- 2. policy s_client vs stock EMS s_server: resumes -------------------------

begin 05-s_client-vs-ems-s_server
if stock_server 05-ems-s_server "$EMS_CNF"; then
    artifact "$SRV_ERR"
    for mode in tickets session-ids; do
        cargs=()
        [ $mode = session-ids ] && cargs=(-no_ticket)
        out=$TMP/05-policy-$mode.txt
        psclient "$out" "$EMS_CNF" "" -connect 127.0.0.1:"$SRV_PORT" -tls1_2 -reconnect "${cargs[@]}"
        expect_eq "$mode: preloaded -reconnect exit status" "$CRC" 0
        expect_eq "$mode: preloaded -reconnect Reused lines" "$(count_prefix "$out" Reused,)" 5
        sess=$TMP/05-$mode.sess
        out=$TMP/05-get-$mode.txt
        sclient "$out" "$EMS_CNF" -connect 127.0.0.1:"$SRV_PORT" -tls1_2 -sess_out "$sess" "${cargs[@]}"
        expect_eq "$mode: session file has EMS" "$(sess_ems "$sess")" yes
        out=$TMP/05-policy-in-$mode.txt
        psclient "$out" "$EMS_CNF" "" -connect 127.0.0.1:"$SRV_PORT" -tls1_2 -sess_in "$sess" "${cargs[@]}"
        expect_eq "$mode: preloaded -sess_in exit status" "$CRC" 0
        expect_eq "$mode: preloaded -sess_in Reused lines" "$(count_prefix "$out" Reused,)" 1
    done
    stop_server "$SRV_PID"
else
    server_up_or_fail 05-ems-s_server
fi
end_test

# ---- 3. TLS 1.3 is not affected -------------------------------------------------
#
# s_client -reconnect never resumes TLS 1.3 (it closes before the
# NewSessionTicket arrives), so -sess_out (stdin open 1 s) / -sess_in.
begin 06-tls13-unaffected
if policy_server 06-tls13-policy ""; then
    artifact "$SRV_OUT" "$SRV_ERR"
    sess=$TMP/06-legacy.sess
    out=$TMP/06-legacy-out.txt
    sclient_wait "$out" "$LEGACY_CNF" -connect 127.0.0.1:"$SRV_PORT" -tls1_3 -sess_out "$sess"
    expect_eq "policy server: legacy s_client -sess_out exit status" "$CRC" 0
    expect_grep "policy server: TLS 1.3 full handshake" "^New, TLSv1.3" "$out"
    out=$TMP/06-legacy-in.txt
    sclient "$out" "$LEGACY_CNF" -connect 127.0.0.1:"$SRV_PORT" -tls1_3 -sess_in "$sess"
    expect_eq "policy server: legacy s_client -sess_in exit status" "$CRC" 0
    expect_eq "policy server: legacy s_client Reused TLSv1.3" "$(count_re "$out" "^Reused, TLSv1.3")" 1
    stop_policy_server
else
    server_up_or_fail 06-tls13-policy
fi
if stock_server 06-tls13-legacy "$LEGACY_CNF"; then
    artifact "$SRV_ERR"
    sess=$TMP/06-client.sess
    out=$TMP/06-client-out.txt
    psclient_wait "$out" "$LEGACY_CNF" "$EG_LOG3" -connect 127.0.0.1:"$SRV_PORT" -tls1_3 -sess_out "$sess"
    expect_eq "policy client: -sess_out exit status" "$CRC" 0
    out=$TMP/06-client-in.txt
    psclient "$out" "$LEGACY_CNF" "$EG_LOG3" -connect 127.0.0.1:"$SRV_PORT" -tls1_3 -sess_in "$sess"
    expect_eq "policy client: -sess_in exit status" "$CRC" 0
    expect_eq "policy client: Reused TLSv1.3" "$(count_re "$out" "^Reused, TLSv1.3")" 1
    expect_nogrep "policy client: a TLS 1.3 session was filtered" "did not offer" "$out.err"
    stop_server "$SRV_PID"
else
    server_up_or_fail 06-tls13-legacy
fi
end_test

# ---- 4. curl (Debian, OpenSSL backend) ------------------------------------------
#
# Two URLs in one curl run: curl keeps the first connection's session and sets
# it on the second (-v: "SSL re-using session ID" up to curl 8.11, "SSL reusing
# session with ALPN" from 8.12, as in Debian 13).  s_server -www answers
# HTTP/1.0 and closes, so the second URL is a new TLS connection, and its
# status page says New or Reused.

curl_vs_legacy_server() {
    local name=$1 srvargs=$2 out url
    begin "$name"
    # shellcheck disable=SC2086
    if stock_server "$name" "$LEGACY_CNF" $srvargs; then
        artifact "$SRV_ERR"
        url=https://127.0.0.1:"$SRV_PORT"/
        out=$TMP/$name-policy.txt
        curl_run "$out" "$EMS_CNF" 1 "$EG_LOG3" "$url" "$url"
        expect_eq "preloaded curl exit status" "$CRC" 0
        expect_eq "preloaded curl: both requests answered (HTTP 200)" \
            "$(count_re "$out.err" "^< HTTP/1\\.0 200")" 2
        expect_eq "preloaded curl: server saw New" "$(count_prefix "$out" New,)" 2
        expect_eq "preloaded curl: server saw Reused" "$(count_prefix "$out" Reused,)" 0
        expect_grep "preloaded curl set its cached session" \
            "SSL re-using session ID|SSL reusing session" "$out.err"
        expect_grep "the session was not offered (logged)" \
            "^emsguard: warning: role=client did not offer session.*reason=no-ems" "$out.err"
        out=$TMP/$name-stock.txt
        curl_run "$out" "$EMS_CNF" 0 "" "$url" "$url"
        expect_eq "contrast (no preload): curl exit status" "$CRC" 0
        expect_eq "contrast (no preload): server saw Reused" "$(count_prefix "$out" Reused,)" 1
        stop_server "$SRV_PID"
    else
        server_up_or_fail "$name"
    fi
    end_test
}

curl_vs_legacy_server 07a-curl-vs-legacy-s_server-tickets ""
curl_vs_legacy_server 07b-curl-vs-legacy-s_server-session-ids "-no_ticket"

curl_vs_policy_server() {
    local name=$1 srvargs=$2 out url
    begin "$name"
    # shellcheck disable=SC2086
    if policy_server "$name" "" $srvargs; then
        artifact "$SRV_OUT" "$SRV_ERR"
        url=https://127.0.0.1:"$SRV_PORT"/
        out=$TMP/$name-ems.txt
        curl_run "$out" "$EMS_CNF" 1 "" "$url" "$url"
        expect_eq "preloaded EMS curl exit status" "$CRC" 0
        expect_eq "preloaded EMS curl: New" "$(count_prefix "$out" New,)" 1
        expect_eq "preloaded EMS curl: Reused" "$(count_prefix "$out" Reused,)" 1
        expect_eq "preloaded EMS curl: session has EMS" \
            "$(count_re "$out" "Extended master secret: yes")" 2
        out=$TMP/$name-legacy.txt
        curl_run "$out" "$LEGACY_CNF" 0 "" "$url" "$url"
        expect_eq "legacy curl exit status" "$CRC" 0
        expect_eq "legacy curl: both requests answered (HTTP 200)" \
            "$(count_re "$out.err" "^< HTTP/1\\.0 200")" 2
        expect_eq "legacy curl: New" "$(count_prefix "$out" New,)" 2
        expect_eq "legacy curl: Reused" "$(count_prefix "$out" Reused,)" 0
        expect_eq "legacy curl: session lacks EMS" \
            "$(count_re "$out" "Extended master secret: no")" 2
        stop_policy_server
    else
        server_up_or_fail "$name"
    fi
    end_test
}

curl_vs_policy_server 08a-curl-vs-policy-s_server-tickets ""
curl_vs_policy_server 08b-curl-vs-policy-s_server-session-ids "-no_ticket"

# ---- 5. nginx (Debian package, libssl linked dynamically) ----------------------
#
# One nginx process, two TLS 1.2 server blocks sharing
# `ssl_session_cache shared:SSL:1m` (nginx's external cache callbacks) and
# one `ssl_session_ticket_key` file: port A with tickets, port B with
# `ssl_session_tickets off` (session IDs from the shared cache only).  The
# access log records $ssl_session_reused per request.  Curl fetches three
# URLs with `Connection: close`, so each one is a new TLS connection that
# offers the session of the previous one.
#
# 09a runs nginx WITHOUT the preload (stock behaviour: legacy clients are
# resumed) and collects two ticket sessions from it, one without and one with
# EMS.  09b/09c run the same nginx with the preload and the same ticket key
# file, like a second node of a cluster: the EMS ticket from the stock run
# resumes there (so the keys really are shared), the non-EMS one is refused
# with a full handshake, and emsguard logs the refusal into nginx's error log
# (nginx points its stderr at the error_log file).

NGX_PORT_T=""
NGX_PORT_S=""
NGX_PID=""
NGX_DIR=""

# start_nginx NAME PRELOADED(0/1): sets NGX_PID, NGX_DIR, NGX_PORT_T/_S.
start_nginx() {
    local name=$1 pre=$2 i e userline=""
    NGX_DIR=$TMP/$name
    NGX_PID=""
    mkdir -p "$NGX_DIR/logs"
    [ "$(id -u)" = 0 ] && userline="user $(id -un) $(id -gn);"
    e=()
    if [ "$pre" = 1 ]; then
        e=("${PRE_ENV[@]}" EMSGUARD_CONF="$EG_LOG3" EMSGUARD_DEBUG=1)
    fi
    for _ in 1 2 3 4 5 6; do
        NGX_PORT_T=$(random_port)
        NGX_PORT_S=$((NGX_PORT_T + 1))
        port_listening "$NGX_PORT_T" && continue
        port_listening "$NGX_PORT_S" && continue
        cat >"$NGX_DIR/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $NGX_DIR/nginx.pid;
$userline
error_log $NGX_DIR/logs/error.log notice;
events { worker_connections 64; }
http {
    client_body_temp_path $NGX_DIR/body;
    proxy_temp_path $NGX_DIR/proxy;
    fastcgi_temp_path $NGX_DIR/fastcgi;
    uwsgi_temp_path $NGX_DIR/uwsgi;
    scgi_temp_path $NGX_DIR/scgi;
    default_type text/plain;
    log_format eg '\$ssl_session_reused \$ssl_protocol \$status \$request_uri \$remote_addr';
    access_log $NGX_DIR/logs/access.log eg;
    ssl_certificate $CERT;
    ssl_certificate_key $KEY;
    ssl_protocols TLSv1.2;
    ssl_session_cache shared:SSL:1m;
    ssl_session_ticket_key $TMP/nginx-ticket.key;
    server {
        listen 127.0.0.1:$NGX_PORT_T ssl;
        ssl_session_tickets on;
        location / { return 200 "tickets \$ssl_session_reused\n"; }
    }
    server {
        listen 127.0.0.1:$NGX_PORT_S ssl;
        ssl_session_tickets off;
        location / { return 200 "session-ids \$ssl_session_reused\n"; }
    }
}
EOF
        : >"$NGX_DIR/logs/error.log"
        env "${e[@]}" "$NGINX" -p "$NGX_DIR" -c "$NGX_DIR/nginx.conf" -e "$NGX_DIR/logs/error.log" \
            </dev/null >"$NGX_DIR/stdout" 2>"$NGX_DIR/stderr" &
        NGX_PID=$!
        NGINX_PIDS+=("$NGX_PID")
        for ((i = 0; i < 200; i++)); do
            kill -0 "$NGX_PID" 2>/dev/null || break
            if port_listening "$NGX_PORT_T" && port_listening "$NGX_PORT_S"; then
                return 0
            fi
            sleep 0.05
        done
        stop_nginx
        grep -qi "in use" "$NGX_DIR/logs/error.log" "$NGX_DIR/stderr" 2>/dev/null || break
    done
    NGX_PID=""
    return 1
}

# stop_nginx: fast shutdown of master and workers; sets NGX_RC.

# reused_column NAME-PREFIX: the $ssl_session_reused column of the access log
# lines whose URI starts with /NAME-PREFIX/, joined ("." or "r" each).
reused_column() {
    awk -v p="/$1/" 'index($4, p) == 1 { printf "%s", $1 }' "$NGX_DIR/logs/access.log"
}

# nginx_curl NAME CNF PORT: three requests /NAME/1..3, one connection each.
nginx_curl() {
    local name=$1 cnf=$2 port=$3 out
    out=$TMP/$name.txt
    curl_run "$out" "$cnf" 0 "" -H 'Connection: close' \
        "https://127.0.0.1:$port/$name/1" "https://127.0.0.1:$port/$name/2" \
        "https://127.0.0.1:$port/$name/3"
    expect_eq "$name: curl exit status" "$CRC" 0
    expect_eq "$name: requests served with status 200 over TLSv1.2" \
        "$(awk -v p="/$name/" 'index($4, p) == 1 && $2 == "TLSv1.2" && $3 == 200' \
            "$NGX_DIR/logs/access.log" | wc -l | tr -d ' ')" 3
}

NGX_LEGACY_SESS=$TMP/nginx-legacy.sess
NGX_EMS_SESS=$TMP/nginx-ems.sess

if [ "$HAVE_NGINX" = 0 ]; then
    for c in 09a-nginx-control-no-preload 09b-nginx-preloaded 09c-nginx-preloaded-shared-ticket-keys; do
        fail_now "$c" "required peer nginx not installed (apt-get install nginx; .ci/install-deps)"
    done
elif ! timeout $TO "$OPENSSL" rand -out "$TMP/nginx-ticket.key" 80 2>/dev/null; then
    fail_now 09-nginx "cannot make the ticket key file"
else
    # 09a: stock nginx resumes legacy clients (so 09b can fail).
    begin 09a-nginx-control-no-preload
    if start_nginx nginx-stock 0; then
        artifact "$NGX_DIR/logs/access.log" "$NGX_DIR/logs/error.log"
        nginx_curl ctl-legacy-tickets "$LEGACY_CNF" "$NGX_PORT_T"
        nginx_curl ctl-legacy-ids "$LEGACY_CNF" "$NGX_PORT_S"
        expect_eq "stock nginx resumes legacy curl (tickets)" "$(reused_column ctl-legacy-tickets)" ".rr"
        expect_eq "stock nginx resumes legacy curl (session IDs)" "$(reused_column ctl-legacy-ids)" ".rr"
        out=$TMP/09a-legacy-get.txt
        sclient "$out" "$LEGACY_CNF" -connect 127.0.0.1:"$NGX_PORT_T" -tls1_2 -sess_out "$NGX_LEGACY_SESS"
        expect_eq "legacy -sess_out exit status" "$CRC" 0
        expect_grep "stock nginx issued a ticket to the legacy client" "TLS session ticket:" "$out"
        expect_eq "legacy session lacks EMS" "$(sess_ems "$NGX_LEGACY_SESS")" no
        out=$TMP/09a-ems-get.txt
        sclient "$out" "$EMS_CNF" -connect 127.0.0.1:"$NGX_PORT_T" -tls1_2 -sess_out "$NGX_EMS_SESS"
        expect_eq "EMS -sess_out exit status" "$CRC" 0
        expect_eq "EMS session has EMS" "$(sess_ems "$NGX_EMS_SESS")" yes
        out=$TMP/09a-legacy-in.txt
        sclient_req "$out" "$LEGACY_CNF" /ctl-xproc-legacy/1 -connect 127.0.0.1:"$NGX_PORT_T" -tls1_2 \
            -sess_in "$NGX_LEGACY_SESS"
        expect_eq "stock nginx resumes the legacy ticket (s_client)" "$(count_prefix "$out" Reused,)" 1
        expect_eq "stock nginx resumes the legacy ticket (access log)" "$(reused_column ctl-xproc-legacy)" "r"
        stop_nginx
        expect_eq "stock nginx exit status (fast shutdown)" "$NGX_RC" 0
        expect_nogrep "nginx error log: emerg/alert" "\\[(emerg|alert|crit)\\]" "$NGX_DIR/logs/error.log"
    else
        err "stock nginx did not start: $(tail -n 3 "$NGX_DIR/logs/error.log" "$NGX_DIR/stderr" 2>/dev/null | tr '\n' ' ')"
    fi
    end_test

    # 09b: the same nginx, preloaded.
    begin 09b-nginx-preloaded
    if start_nginx nginx-policy 1; then
        artifact "$NGX_DIR/logs/access.log" "$NGX_DIR/logs/error.log" "$NGX_DIR/stderr"
        expect_grep "debug line names EMSGUARD_CONF" \
            "^emsguard-preload: debug: policy from ${EG_LOG3//./\\.}\$" "$NGX_DIR/stderr"
        nginx_curl eg-legacy-tickets "$LEGACY_CNF" "$NGX_PORT_T"
        nginx_curl eg-legacy-ids "$LEGACY_CNF" "$NGX_PORT_S"
        nginx_curl eg-ems-tickets "$EMS_CNF" "$NGX_PORT_T"
        nginx_curl eg-ems-ids "$EMS_CNF" "$NGX_PORT_S"
        expect_eq "legacy curl never resumed (tickets)" "$(reused_column eg-legacy-tickets)" "..."
        expect_eq "legacy curl never resumed (session IDs)" "$(reused_column eg-legacy-ids)" "..."
        expect_eq "EMS curl resumed (tickets)" "$(reused_column eg-ems-tickets)" ".rr"
        expect_eq "EMS curl resumed (session IDs, shared cache)" "$(reused_column eg-ems-ids)" ".rr"
        for port in "$NGX_PORT_T" "$NGX_PORT_S"; do
            out=$TMP/09b-legacy-$port.txt
            sclient "$out" "$LEGACY_CNF" -connect 127.0.0.1:"$port" -tls1_2 -reconnect
            expect_eq "legacy s_client -reconnect :$port exit status" "$CRC" 0
            expect_eq "legacy s_client -reconnect :$port New lines" "$(count_prefix "$out" New,)" 6
            out=$TMP/09b-ems-$port.txt
            sclient "$out" "$EMS_CNF" -connect 127.0.0.1:"$port" -tls1_2 -reconnect
            expect_eq "EMS s_client -reconnect :$port Reused lines" "$(count_prefix "$out" Reused,)" 5
        done
        end_test
        # 09c, same nginx process: tickets minted by the stock nginx of 09a.
        begin 09c-nginx-preloaded-shared-ticket-keys
        artifact "$NGX_DIR/logs/access.log" "$NGX_DIR/logs/error.log"
        if [ -s "$NGX_EMS_SESS" ] && [ -s "$NGX_LEGACY_SESS" ]; then
            out=$TMP/09c-ems-ticket.txt
            sclient_req "$out" "$EMS_CNF" /xproc-ems/1 -connect 127.0.0.1:"$NGX_PORT_T" -tls1_2 \
                -sess_in "$NGX_EMS_SESS"
            expect_eq "EMS ticket from the stock nginx resumes (keys are shared)" \
                "$(count_prefix "$out" Reused,)" 1
            expect_eq "EMS ticket resumed (access log)" "$(reused_column xproc-ems)" "r"
            out=$TMP/09c-legacy-ticket.txt
            sclient_req "$out" "$LEGACY_CNF" /xproc-legacy/1 -connect 127.0.0.1:"$NGX_PORT_T" -tls1_2 \
                -sess_in "$NGX_LEGACY_SESS"
            expect_eq "legacy ticket: exit status" "$CRC" 0
            expect_eq "legacy ticket: New lines" "$(count_prefix "$out" New,)" 1
            expect_eq "legacy ticket: Reused lines" "$(count_prefix "$out" Reused,)" 0
            expect_nogrep "legacy ticket: alert" "alert" "$out"
            expect_eq "legacy ticket refused (access log)" "$(reused_column xproc-legacy)" "."
            # Row "non-EMS session, EMS ClientHello": full handshake.
            out=$TMP/09c-ems-hello-legacy-ticket.txt
            sclient_req "$out" "$EMS_CNF" /xproc-ems-hello/1 -connect 127.0.0.1:"$NGX_PORT_T" -tls1_2 \
                -sess_in "$NGX_LEGACY_SESS"
            expect_eq "non-EMS ticket, EMS ClientHello: exit status" "$CRC" 0
            expect_eq "non-EMS ticket, EMS ClientHello: New lines" "$(count_prefix "$out" New,)" 1
            expect_nogrep "non-EMS ticket, EMS ClientHello: alert" "alert" "$out"
            expect_eq "non-EMS ticket, EMS ClientHello (access log)" "$(reused_column xproc-ems-hello)" "."
        else
            err "no session files from 09a"
        fi
        stop_nginx
        expect_eq "preloaded nginx exit status (fast shutdown)" "$NGX_RC" 0
        expect_grep "refusal in nginx's error log (EventLogging=3)" \
            "^emsguard: warning: role=server refused resumption, full handshake instead: reason=no-ems.*via=ticket peer=127\\.0\\.0\\.1:[0-9]+" \
            "$NGX_DIR/logs/error.log"
        expect_nogrep "nginx error log: emerg/alert" "\\[(emerg|alert|crit)\\]" "$NGX_DIR/logs/error.log"
        san_clean "$NGX_DIR/logs/error.log"
        san_clean "$NGX_DIR/stderr"
        end_test
    else
        err "preloaded nginx did not start: $(tail -n 3 "$NGX_DIR/logs/error.log" "$NGX_DIR/stderr" 2>/dev/null | tr '\n' ' ')"
        end_test
        fail_now 09c-nginx-preloaded-shared-ticket-keys "preloaded nginx did not start"
    fi
fi

# ---- policy configuration ------------------------------------------------------

# 10a: a bad value in EMSGUARD_CONF: every SSL_CTX_new fails -> the stock
# programs exit non-zero, with a message naming the key.
begin 10a-conf-bad-value-fails-closed
out=$TMP/10a-s_server.txt
env OPENSSL_CONF="$EMS_CNF" EMSGUARD_CONF="$EG_BAD" "${PRE_ENV[@]}" timeout 10 \
    "$OPENSSL" s_server -accept "$(random_port)" -cert "$CERT" -key "$KEY" -www -quiet \
    </dev/null >"$out" 2>&1
rc=$?
artifact "$out"
expect_ne "s_server exit status" "$rc" 0
expect_ne "s_server exit status (still running at timeout)" "$rc" 124
expect_grep "s_server: preload says it fails closed" "^emsguard-preload: error: invalid configuration" "$out"
expect_grep "s_server: message names the key and value" "key 'EventLogging': value 'banana'" "$out"
san_clean "$out"
out=$TMP/10a-s_client.txt
psclient "$out" "$EMS_CNF" "$EG_BAD" -connect 127.0.0.1:9 -tls1_2
expect_ne "s_client exit status" "$CRC" 0
expect_grep "s_client: message names the key" "key 'EventLogging'" "$out.err"
expect_nogrep "s_client: got as far as connecting" "connect|CONNECTED" "$out.err"
# curl makes its SSL_CTX only once connected: give it a live server.
if stock_server 10a-ems-s_server "$EMS_CNF"; then
    artifact "$SRV_ERR"
    out=$TMP/10a-curl.txt
    curl_run "$out" "$EMS_CNF" 1 "$EG_BAD" "https://127.0.0.1:$SRV_PORT/"
    expect_ne "curl exit status" "$CRC" 0
    expect_grep "curl: message names the key" "key 'EventLogging'" "$out.err"
    expect_nogrep "curl: a handshake happened" "^(New|Reused)," "$out"
    stop_server "$SRV_PID"
else
    server_up_or_fail 10a-ems-s_server
fi
end_test

# 10b: EMSGUARD_CONF names a file that does not exist: fails closed too.
begin 10b-conf-missing-file-fails-closed
out=$TMP/10b.txt
psclient "$out" "$EMS_CNF" "$TMP/does-not-exist.cnf" -connect 127.0.0.1:9 -tls1_2
expect_ne "s_client exit status" "$CRC" 0
expect_grep "message names the file" "does-not-exist\\.cnf" "$out.err"
end_test

# 10c: no EMSGUARD_CONF; the process's own openssl.cnf (OPENSSL_CONF) has the
# emsguard provider section, with EventLogging=3: the preload takes the
# policy from there, so the client's refusals are logged as warnings.
begin 10c-conf-from-process-openssl-cnf
PROC_CNF=$TMP/process-openssl.cnf
write_eg_cnf "$PROC_CNF" "$BDIR/emsguard.so" EventLogging=3
PROC_BAD=$TMP/process-bad.cnf
write_eg_cnf "$PROC_BAD" "$BDIR/emsguard.so" EventLogging=banana
if stock_server 10c-legacy-s_server "$LEGACY_CNF"; then
    artifact "$SRV_ERR"
    out=$TMP/10c.txt
    env OPENSSL_CONF="$PROC_CNF" EMSGUARD_DEBUG=1 "${PRE_ENV[@]}" timeout $TO \
        "$OPENSSL" s_client -connect 127.0.0.1:"$SRV_PORT" -tls1_2 -reconnect </dev/null >"$out" 2>"$out.err"
    CRC=$?
    artifact "$out" "$out.err"
    san_clean "$out.err"
    expect_eq "exit status" "$CRC" 0
    expect_grep "debug line: policy from openssl.cnf" "^emsguard-preload: debug: policy from openssl\\.cnf\$" "$out.err"
    expect_eq "New lines" "$(count_prefix "$out" New,)" 6
    expect_eq "warnings (EventLogging=3 from openssl.cnf)" \
        "$(count_re "$out.err" "^emsguard: warning: role=client did not offer session")" 5
    # The same file with a bad value: fails closed as well.
    out=$TMP/10c-bad.txt
    env OPENSSL_CONF="$PROC_BAD" "${PRE_ENV[@]}" timeout $TO \
        "$OPENSSL" s_client -connect 127.0.0.1:"$SRV_PORT" -tls1_2 </dev/null >"$out" 2>&1
    CRC=$?
    artifact "$out"
    expect_ne "bad openssl.cnf: exit status" "$CRC" 0
    expect_grep "bad openssl.cnf: message names the key" "key 'EventLogging'" "$out"
    expect_nogrep "bad openssl.cnf: a handshake happened" "^(New|Reused)," "$out"
    stop_server "$SRV_PID"
else
    server_up_or_fail 10c-legacy-s_server
fi
end_test

# ---- 6. safety ------------------------------------------------------------------

# 11a: a process that never uses libssl is unaffected and prints nothing,
# even with a broken EMSGUARD_CONF and EMSGUARD_DEBUG=1 (nothing is read
# before the first SSL_CTX_new).
begin 11a-no-libssl-process-unaffected
out=$TMP/09a-true.txt
env EMSGUARD_CONF="$EG_BAD" EMSGUARD_DEBUG=1 "${PRE_ENV[@]}" timeout $TO /bin/true >"$out" 2>&1
expect_eq "/bin/true exit status" "$?" 0
expect_empty "/bin/true output" "$out"
ls -la "$HERE/preload" >"$TMP/09a-ls-plain.txt" 2>&1
rc_plain=$?
env EMSGUARD_CONF="$EG_BAD" EMSGUARD_DEBUG=1 "${PRE_ENV[@]}" timeout $TO ls -la "$HERE/preload" \
    >"$TMP/09a-ls-pre.txt" 2>"$TMP/09a-ls-pre.err"
expect_eq "ls exit status" "$?" "$rc_plain"
cmp -s "$TMP/09a-ls-plain.txt" "$TMP/09a-ls-pre.txt" || err "ls output differs under the preload"
expect_empty "ls stderr" "$TMP/09a-ls-pre.err"
env "${PRE_ENV[@]}" timeout $TO cat /proc/self/maps >"$TMP/09a-maps.txt" 2>&1
artifact "$TMP/09a-maps.txt"
expect_grep "the preload is mapped" "libemsguard-preload\\.so" "$TMP/09a-maps.txt"
expect_nogrep "libssl loaded into a process that never uses it" "libssl\\.so|libcrypto\\.so|libemsguard\\.so\\.0" \
    "$TMP/09a-maps.txt"
end_test

# 11b: a libssl that is not OpenSSL 3 (a stand-in libssl.so.1.1, built here:
# Debian 12 ships no other libssl), and no libssl at all: the preload
# forwards, stays passive and says so once.
if ! command -v "$CC" >/dev/null 2>&1; then
    skip 11b-other-libssl-passive "no C compiler ($CC) to build the stand-in libssl.so.1.1"
else
    begin 11b-other-libssl-passive
    FK=$TMP/fake
    mkdir -p "$FK"
    if "$CC" -shared -fPIC -o "$FK/libssl.so.1.1" -Wl,-soname,libssl.so.1.1 \
            "$HERE/preload/fake_libssl.c" >"$FK/build.log" 2>&1 \
        && "$CC" -o "$FK/app-other" "$HERE/preload/fake_app.c" -Wl,--no-as-needed \
            "$FK/libssl.so.1.1" -Wl,-rpath,"$FK" -ldl >>"$FK/build.log" 2>&1 \
        && "$CC" -o "$FK/app-none" "$HERE/preload/fake_app.c" -ldl >>"$FK/build.log" 2>&1; then
        out=$TMP/09b-other.txt
        env "${PRE_ENV[@]}" timeout $TO "$FK/app-other" >"$out" 2>"$out.err"
        expect_eq "other libssl: exit status" "$?" 0
        artifact "$out" "$out.err"
        expect_eq "other libssl: its SSL_CTX_new answered, twice" "$(count_re "$out" "^ctx=0x5eed\$")" 2
        expect_eq "other libssl: said once" \
            "$(count_re "$out.err" "^emsguard-preload: .*libssl\\.so\\.1\\.1 is not OpenSSL 3; policy not applied\$")" 1
        expect_eq "other libssl: nothing else on stderr" "$(wc -l <"$out.err" | tr -d ' ')" 1
        san_clean "$out.err"
        out=$TMP/09b-none.txt
        env "${PRE_ENV[@]}" timeout $TO "$FK/app-none" >"$out" 2>"$out.err"
        expect_eq "no libssl: exit status" "$?" 0
        artifact "$out" "$out.err"
        expect_eq "no libssl: SSL_CTX_new returns NULL, twice" "$(count_re "$out" "^ctx=\\(nil\\)\$")" 2
        expect_eq "no libssl: said once" \
            "$(count_re "$out.err" "^emsguard-preload: no OpenSSL 3 libssl in this process; policy not applied\$")" 1
        expect_eq "no libssl: nothing else on stderr" "$(wc -l <"$out.err" | tr -d ' ')" 1
        san_clean "$out.err"
    else
        artifact "$FK/build.log"
        err "cannot build the stand-in libssl.so.1.1 / test program"
    fi
    end_test
fi

# ---- 7. the provider's TLS1-PRF guard: openssl.cnf only, no preload -----------
# A stock s_server whose openssl.cnf loads the emsguard module and selects
# its TLS1-PRF (default_properties = ?emsguard.guard=yes).  Sanitizer builds
# need libasan in front, as the module is instrumented.
if [ -n "$ASAN_RT" ]; then
    GUARD_ENV=(LD_PRELOAD="$ASAN_RT" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1)
else
    GUARD_ENV=()
fi
# write_guard_cnf FILE REQUIRE
write_guard_cnf() {
    cat >"$1" <<EOF
openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
alg_section = algorithm_sect
[provider_sect]
default = default_sect
emsguard = emsguard_sect
[default_sect]
activate = 1
[emsguard_sect]
module = $BDIR/emsguard.so
activate = 1
EventLogging = 1
RequireExtendedMasterSecret = $2
[algorithm_sect]
default_properties = ?emsguard.guard=yes
EOF
}
GUARD_AUDIT_CNF=$TMP/guard-audit.cnf
GUARD_ENFORCE_CNF=$TMP/guard-enforce.cnf
write_guard_cnf "$GUARD_AUDIT_CNF" 0
write_guard_cnf "$GUARD_ENFORCE_CNF" 1

# guard_server NAME CNF ARGS...: stock s_server, the guard from CNF.
guard_server() {
    local name=$1 cnf=$2
    shift 2
    SRV_ENV=(OPENSSL_CONF="$cnf" "${GUARD_ENV[@]}")
    start_server "$name" "$OPENSSL" s_server -accept @PORT@ -cert "$CERT" -key "$KEY" \
        -www -quiet -tls1_2 "$@"
}

# stop_guard_server: s_server leaves by itself after -naccept connections,
# through exit(), so OPENSSL_cleanup unloads the provider, which writes the
# audit summary (a signal would kill it before that).
stop_guard_server() {
    local i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.05
    done
    stop_server "$SRV_PID"
    artifact "$SRV_ERR"
    san_clean "$SRV_ERR"
}

# Audit: nothing refused (stock behaviour); the summary counts it all.
begin 12a-guard-audit-stock-s_server
guard_server 12a "$GUARD_AUDIT_CNF" -naccept 7
if server_up_or_fail 12a; then
    out=$TMP/12a-legacy.txt
    sclient "$out" "$LEGACY_CNF" -connect "127.0.0.1:$SRV_PORT" -tls1_2 -reconnect
    expect_eq "legacy client exit status" "$CRC" 0
    expect_eq "legacy client: New" "$(count_prefix "$out" "New,")" 1
    expect_eq "legacy client: Reused (audit refuses nothing)" "$(count_prefix "$out" "Reused,")" 5
    out=$TMP/12a-ems.txt
    sclient "$out" "$EMS_CNF" -connect "127.0.0.1:$SRV_PORT" -tls1_2
    expect_eq "EMS client exit status" "$CRC" 0
    stop_guard_server
    expect_grep "audit summary at exit" \
        "^emsguard: info: TLS1-PRF audit \(at exit\): ems_derivations=1 non_ems_derivations=1 resumptions=5 refused=0; 1 of 2 full TLS<=1.2 handshakes lacked Extended Master Secret$" \
        "$SRV_ERR"
fi
end_test

# Enforce: a legacy client cannot complete a TLS 1.2 handshake; EMS can.
begin 12b-guard-enforce-stock-s_server
guard_server 12b "$GUARD_ENFORCE_CNF" -naccept 7
if server_up_or_fail 12b; then
    out=$TMP/12b-legacy.txt
    sclient "$out" "$LEGACY_CNF" -connect "127.0.0.1:$SRV_PORT" -tls1_2
    expect_ne "legacy client exit status" "$CRC" 0
    expect_grep "legacy client sees internal_error" "alert internal error|alert number 80" "$out"
    out=$TMP/12b-ems.txt
    sclient "$out" "$EMS_CNF" -connect "127.0.0.1:$SRV_PORT" -tls1_2 -reconnect
    expect_eq "EMS client exit status" "$CRC" 0
    expect_eq "EMS client: Reused" "$(count_prefix "$out" "Reused,")" 5
    stop_guard_server
    expect_grep "refusal logged" \
        "^emsguard: error: TLS1-PRF guard: refused a TLS 1.2 handshake without Extended Master Secret \(RequireExtendedMasterSecret=1\)$" \
        "$SRV_ERR"
    expect_grep "audit summary counts the refusal" \
        "TLS1-PRF audit \(at exit\): ems_derivations=1 non_ems_derivations=0 resumptions=5 refused=1;" "$SRV_ERR"
fi
end_test

summary
[ "$NFAIL" -eq 0 ]
