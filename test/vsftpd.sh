#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# FTPS servers that require session reuse: a real vsftpd (Debian package,
# require_ssl_reuse=YES) against stock curl, with and without the policy
# (LD_PRELOAD=$BUILD/libemsguard-preload.so), over TCP on 127.0.0.1.
#
#   BUILD=build SANITIZE= bash test/vsftpd.sh
#   BUILD=build-san SANITIZE=1 bash test/vsftpd.sh
#
# vsftpd with require_ssl_reuse=YES accepts a data connection only if its TLS
# handshake resumed the control connection's session; otherwise it answers
# "522 SSL connection failed: session reuse required".  So a policy client
# cannot transfer from a server without Extended Master Secret (the FTPS row
# of the Schannel problem list), but can from one with it.
#
#   case                               vsftpd   curl      expected
#   01-ems-vsftpd-policy-curl-resumes  EMS      policy    LIST+RETR ok, data resumed
#   02-legacy-vsftpd-policy-curl-...   no EMS   policy    522, one emsguard line
#   03-legacy-vsftpd-stock-curl-...    no EMS   stock     LIST+RETR ok, data resumed
#
# Evidence of resumption is vsftpd's own (debug_ssl=YES): every TLS
# handshake it accepts logs "SSL version: ..., reused" or "..., not reused".
# curl -v is no evidence: it prints "SSL re-using session ID" as soon as it
# hands the session to libssl, even when the policy then withholds it.
# The legacy vsftpd gets an OPENSSL_CONF with `Options = -ExtendedMasterSecret`
# (vsftpd keeps its environment, and reads the config in ssl_init); each
# server's EMS status is checked with `openssl s_client -starttls ftp`.
#
# vsftpd runs as a standalone listener (listen=YES, background=NO) started
# and stopped here, with its own config (the system service and
# /etc/vsftpd.conf are not used), anonymous logins chrooted into a scratch
# directory, passive ports in a free range.  It must start as root (it
# chroots and changes user); CI runs tests as root.
#
# Preloaded curl runs with EMSGUARD_CONF = the defaults plus EventLogging=3,
# so that the "did not offer session" warning is printed next to the "peer
# requires session reuse" diagnosis (an error), and EMSGUARD_DEBUG=1, whose "policy from" line proves the preload
# was active.
#
# Sanitizer builds: as test/preload.sh -- libasan preloaded in front of the
# preload library, ASAN_OPTIONS=detect_leaks=0, curl with LOCPATH=/nonexistent
# (see preload.sh's header), and any sanitizer report fails the case.
#
# Every case prints `PASS name` or `FAIL name: details`; the last line is
# `N passed, M failed, K skipped`.  A missing vsftpd, curl or openssl is a
# FAIL.  Environment: BUILD, SANITIZE, OPENSSL, CURL, VSFTPD (default
# /usr/sbin/vsftpd), KEEP_TMP=1, VERBOSE=1.
set -u

BUILD=${BUILD:-build}
OPENSSL=${OPENSSL:-openssl}
CURL=${CURL:-curl}
VSFTPD=${VSFTPD:-/usr/sbin/vsftpd}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
case "$BUILD" in
/*) BDIR=$BUILD ;;
*) BDIR=$ROOT/$BUILD ;;
esac
PRELOAD=$BDIR/libemsguard-preload.so

TO=20            # timeout for every client run, seconds
SERVER_PIDS=()
# shellcheck source=test/lib.sh
. "$HERE/lib.sh"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/eg-vsftpd.XXXXXX") || exit 2
# The policy under test is EG_CNF's, whatever the caller set.
unset EMSGUARD_CONF EMSGUARD_DEBUG

trap cleanup_servers EXIT
trap 'exit 130' INT TERM HUP


prereq_fail() {
    echo "vsftpd.sh: $1" >&2
    fail_now 00-prerequisites "$1"
    summary
    exit 1
}

# ---- prerequisites ------------------------------------------------------------

for f in "$PRELOAD" "$BDIR/libemsguard.so.0"; do
    [ -e "$f" ] || prereq_fail "$f not built (make $BUILD/libemsguard-preload.so $BUILD/libemsguard.so.0)"
done

# Sanitizer builds: the same preload setup as test/preload.sh.
ASAN_RT=$(ldd "$PRELOAD" 2>/dev/null | awk '$1 ~ /^libasan\.so/ { print $3; exit }')
if [ "${SANITIZE:-}" = 1 ] && [ -z "$ASAN_RT" ]; then
    prereq_fail "SANITIZE=1 but $PRELOAD is not linked against libasan"
fi
if [ -n "$ASAN_RT" ]; then
    PRE_ENV=(LD_PRELOAD="$ASAN_RT:$PRELOAD" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1)
    CURL_ENV=(LOCPATH=/nonexistent) # p11-kit + libasan hang, see preload.sh
else
    PRE_ENV=(LD_PRELOAD="$PRELOAD")
    CURL_ENV=()
fi

for tool in "$OPENSSL" "$CURL"; do
    command -v "$tool" >/dev/null 2>&1 \
        || prereq_fail "required peer '$tool' not installed (.ci/install-deps)"
done
[ -x "$VSFTPD" ] || prereq_fail "vsftpd not installed at $VSFTPD (.ci/install-deps installs the vsftpd package)"
[ "$(id -u)" -eq 0 ] || prereq_fail "vsftpd must be started as root (anonymous chroot, user switch); run this test as root, as CI does"

# vsftpd changes into the anonymous user's home before anon_root, so that
# home must exist: the package's `ftp` user (/srv/ftp), else a system user.
FTP_USER=""
for u in ftp daemon; do
    home=$(getent passwd "$u" | cut -d: -f6)
    if [ -n "$home" ] && [ -d "$home" ]; then
        FTP_USER=$u
        break
    fi
done
[ -n "$FTP_USER" ] || prereq_fail "no user 'ftp' (from the vsftpd package) or 'daemon' with an existing home"

# ---- fixtures -----------------------------------------------------------------

make_fixtures || prereq_fail "cannot make a certificate"

# The anonymous tree: vsftpd refuses a chroot root its user can write.
FTPROOT=$TMP/ftproot
EMPTY=$TMP/empty
mkdir -p "$FTPROOT" "$EMPTY"
chmod 0755 "$FTPROOT" "$EMPTY"
PAYLOAD=$FTPROOT/payload.bin
head -c 3000 /dev/urandom >"$PAYLOAD"
chmod 0644 "$PAYLOAD"

# A free passive range, away from random_port's 20000-39999 (the control port).
PASV_MIN=$(free_port_block 16) || PASV_MIN=""
[ -n "$PASV_MIN" ] || prereq_fail "no free passive port range"

# Everything but the control port (-olisten_port on the command line).
VSCONF=$TMP/vsftpd.conf
vsftpd_conf "$FTPROOT" "$FTP_USER" "$EMPTY" "$PASV_MIN" "$CERT" "$KEY" >"$VSCONF"

# The policy of every preloaded curl: the defaults plus EventLogging=3
# (errors and warnings), read by the preload from EMSGUARD_CONF.  The
# "peer requires session reuse" diagnosis is a warning, so the default
# EventLogging=1 (errors only) would not print it.
EG_CNF=$TMP/eg-log3.cnf
{ eg_provider_cnf emsguard.so; echo "EventLogging = 3"; } >"$EG_CNF"

# ---- servers and clients ----------------------------------------------------

# vsftpd_start NAME CNF: the listener, OPENSSL_CONF=CNF; log in VLOG.
vsftpd_start() {
    VLOG=$TMP/$1-vsftpd.log
    SRV_ENV=(OPENSSL_CONF="$2")
    start_server "$1" "$VSFTPD" "$VSCONF" -olisten_port=@PORT@ -ovsftpd_log_file="$VLOG"
}

# sessions_done: bounded wait (5 s) until the listener has no session
# process left, so that the session's log lines are all written.
sessions_done() {
    local i
    for ((i = 0; i < 100; i++)); do
        [ -z "$(ps -o pid= --ppid "$SRV_PID" 2>/dev/null)" ] && return 0
        sleep 0.05
    done
    return 1
}

log_lines() { if [ -f "$VLOG" ]; then wc -l <"$VLOG" | tr -d ' '; else echo 0; fi; }

# server_ems OUT: stock s_client (EMS offered) -starttls ftp, TLS 1.2; sets
# SERVER_EMS to its "Extended master secret:" value.
server_ems() {
    sclient "$1" "$EMS_CNF" -connect "127.0.0.1:$SRV_PORT" -starttls ftp -tls1_2
    SERVER_EMS=$(awk -F': *' '/Extended master secret/ { print $2; exit }' "$1")
    [ "$CRC" = 0 ] || SERVER_EMS="s_client exit status $CRC"
    sessions_done
}

# ftp_get OUT PRELOADED PATH: one curl run (one control connection, one data
# connection) pinned to TLS 1.2.  Body in OUT, curl -v in OUT.err, and
# vsftpd's log lines of this session in OUT.vlog.  Sets CRC.
ftp_get() {
    local out=$1 pre=$2 path=$3 mark e
    e=(OPENSSL_CONF="$EMS_CNF")
    [ "$pre" = 1 ] && e+=(EMSGUARD_CONF="$EG_CNF" EMSGUARD_DEBUG=1 "${PRE_ENV[@]}" "${CURL_ENV[@]}")
    mark=$(log_lines)
    rm -f "$out"
    env "${e[@]}" timeout $TO "$CURL" -q -sS -v -k --noproxy '*' --ssl-reqd \
        --tlsv1.2 --tls-max 1.2 "ftp://127.0.0.1:$SRV_PORT/$path" -o "$out" 2>"$out.err"
    CRC=$?
    sessions_done || err "vsftpd session of $(basename "$out") still running after 5 s"
    tail -n +"$((mark + 1))" "$VLOG" >"$out.vlog" 2>/dev/null
    artifact "$out.err" "$out.vlog"
    if [ "$pre" = 1 ]; then
        san_clean "$out.err"
        expect_eq "$(basename "$out"): preload active (policy source lines)" \
            "$(count_re "$out.err" "^emsguard-preload: debug: policy from ${EG_CNF//./\\.}\$")" 1
    fi
}

# vsftpd's per-handshake debug lines: the control connection's is logged
# before login (no user tag), the data connection's with [anonymous].
RE_CTRL='\[pid [0-9]+\] DEBUG: Client "127\.0\.0\.1", "SSL version: TLSv1\.2, SSL cipher: [^,]+, not reused'
RE_DATA_REUSED='\[anonymous\] DEBUG: Client "127\.0\.0\.1", "SSL version: TLSv1\.2, SSL cipher: [^,]+, reused,'
RE_DATA_FULL='\[anonymous\] DEBUG: Client "127\.0\.0\.1", "SSL version: TLSv1\.2, SSL cipher: [^,]+, not reused,'
RE_NO_REUSE='DEBUG: Client "127\.0\.0\.1", "No SSL session reuse on data channel\."'
RE_522='FTP response: Client "127\.0\.0\.1", "522 SSL connection failed: session reuse required"'

# data_resumed OUT WHAT: the session of OUT: full control handshake, data
# connection resumed it, no 522.
data_resumed() {
    local v=$1.vlog
    expect_eq "$2: control handshakes (TLS 1.2, full)" "$(count_re "$v" "$RE_CTRL")" 1
    expect_eq "$2: data handshakes that resumed the control session" "$(count_re "$v" "$RE_DATA_REUSED")" 1
    expect_eq "$2: data handshakes without resumption" "$(count_re "$v" "$RE_DATA_FULL")" 0
    expect_nogrep "$2: 522 reply" "$RE_522" "$v"
    expect_nogrep "$2: vsftpd OOPS" "OOPS" "$v"
}

# data_refused OUT WHAT: the data connection was a full handshake and vsftpd
# refused it with 522.
data_refused() {
    local v=$1.vlog
    expect_eq "$2: control handshakes (TLS 1.2, full)" "$(count_re "$v" "$RE_CTRL")" 1
    expect_eq "$2: data handshakes without resumption" "$(count_re "$v" "$RE_DATA_FULL")" 1
    expect_eq "$2: data handshakes that resumed" "$(count_re "$v" "$RE_DATA_REUSED")" 0
    expect_eq "$2: vsftpd 'No SSL session reuse on data channel.'" "$(count_re "$v" "$RE_NO_REUSE")" 1
    expect_eq "$2: vsftpd 522 reply" "$(count_re "$v" "$RE_522")" 1
}

# reuse_word OUT: what vsftpd logged for the data handshake (for the notes).
reuse_word() {
    if grep -Eq -- "$RE_DATA_REUSED" "$1.vlog"; then
        echo reused
    elif grep -Eq -- "$RE_DATA_FULL" "$1.vlog"; then
        echo "not reused"
    else
        echo "no data handshake"
    fi
}

# list_and_retr PREFIX PRELOADED: LIST of / and RETR of payload.bin.
list_and_retr() {
    LIST_OUT=$TMP/$1-list.txt
    RETR_OUT=$TMP/$1-retr.bin
    ftp_get "$LIST_OUT" "$2" ""
    LIST_RC=$CRC
    ftp_get "$RETR_OUT" "$2" payload.bin
    RETR_RC=$CRC
    echo "    $1: LIST curl exit $LIST_RC, data TLS $(reuse_word "$LIST_OUT"); RETR curl exit $RETR_RC, data TLS $(reuse_word "$RETR_OUT")"
}

expect_transfers_ok() {
    expect_eq "LIST curl exit status" "$LIST_RC" 0
    expect_grep "LIST names payload.bin (3000 bytes)" " 3000 .* payload\\.bin[[:space:]]*\$" "$LIST_OUT"
    data_resumed "$LIST_OUT" LIST
    expect_eq "RETR curl exit status" "$RETR_RC" 0
    cmp -s "$PAYLOAD" "$RETR_OUT" || err "RETR: content differs from payload.bin"
    data_resumed "$RETR_OUT" RETR
}

# ---- 01: EMS vsftpd, policy curl: transfers work, data resumes ---------------

begin 01-ems-vsftpd-policy-curl-resumes
if vsftpd_start 01-ems "$EMS_CNF"; then
    artifact "$SRV_ERR"
    server_ems "$TMP/01-sclient.txt"
    expect_eq "EMS vsftpd negotiates EMS (s_client -starttls ftp)" "$SERVER_EMS" yes
    list_and_retr 01 1
    expect_transfers_ok
    # Nothing withheld, nothing to say, even at EventLogging=3 (EMSGUARD_DEBUG's
    # own debug lines, such as where live counters go, are not EventLogging's).
    expect_nogrep "LIST: emsguard log line" "^emsguard: (error|warning|info)" "$LIST_OUT.err"
    expect_nogrep "RETR: emsguard log line" "^emsguard: (error|warning|info)" "$RETR_OUT.err"
    stop_server "$SRV_PID"
else
    server_up_or_fail 01-ems-vsftpd
fi
end_test

# ---- 02/03: legacy vsftpd ----------------------------------------------------

LEGACY_UP=0
if vsftpd_start 02-legacy "$LEGACY_CNF"; then
    LEGACY_UP=1
    server_ems "$TMP/02-sclient.txt"
    LEGACY_EMS=$SERVER_EMS
fi
legacy_up() {
    if [ "$LEGACY_UP" = 1 ]; then
        artifact "$SRV_ERR"
        expect_eq "legacy vsftpd lacks EMS (s_client -starttls ftp)" "$LEGACY_EMS" no
        return 0
    fi
    server_up_or_fail 02-legacy-vsftpd
    return 1
}

# The policy does not offer the non-EMS control session on the data
# connection, so vsftpd refuses it; emsguard says why, once per refusal.
begin 02-legacy-vsftpd-policy-curl-refused
if legacy_up; then
    list_and_retr 02 1
    # curl: 18 ("server did not report OK, got 522" / "transfer closed").
    expect_eq "LIST curl exit status" "$LIST_RC" 18
    data_refused "$LIST_OUT" LIST
    expect_eq "RETR curl exit status" "$RETR_RC" 18
    cmp -s "$PAYLOAD" "$RETR_OUT" && err "RETR: payload transferred despite the refusal"
    data_refused "$RETR_OUT" RETR
    for o in "$LIST_OUT" "$RETR_OUT"; do
        expect_eq "$(basename "$o"): emsguard 'did not offer session' (reason=no-ems)" \
            "$(count_re "$o.err" "^emsguard: warning: role=client did not offer session.*reason=no-ems")" 1
        n=$(grep -E -- "non-EMS" "$o.err" 2>/dev/null | grep -c -- "requires session reuse")
        expect_eq "$(basename "$o"): emsguard lines 'non-EMS' + 'requires session reuse'" "$n" 1
    done
fi
end_test

# Control: the same server with stock curl resumes, so 02 is the policy's doing.
begin 03-legacy-vsftpd-stock-curl-resumes
if legacy_up; then
    list_and_retr 03 0
    expect_transfers_ok
fi
end_test
[ "$LEGACY_UP" = 1 ] && stop_server "$SRV_PID"

summary
[ "$NFAIL" -eq 0 ]
