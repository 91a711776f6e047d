#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# libemsguard-preload.so and programs it cannot reach, or reaches through
# callbacks the application chains (issue 15, attack findings N5 and N3):
#
#   1x  a program that carries its own OpenSSL (its executable, or a library
#       ahead of the preload, defines SSL_CTX_new: Debian's /usr/bin/node
#       does).  Symbol lookup finds that definition before the preload's,
#       so the preload is never called.  It must say so at start-up, on
#       stderr and in syslog, naming the object, without loading libssl or
#       libemsguard.  Controls: a program linked to libssl, and a program
#       with no TLS at all, get no such line.
#   2x  the getters under the preload (test/preload/chain_getters.c): an
#       application chains its info, new-session and get-session callbacks
#       "prev = get(); set(mine); mine calls prev", twice.  Every callback
#       sees every event exactly once, as without the preload.
#
# A fully static program (no dynamic symbols; the loader ignores
# LD_PRELOAD) runs no code of the preload: nothing can be said there.
#
#   BUILD=build SANITIZE= bash test/preload_static.sh
#   BUILD=build-san SANITIZE=1 bash test/preload_static.sh
#
# Conventions as in test/preload.sh (`PASS`/`FAIL`/`SKIP` per case).
# Environment: BUILD, SANITIZE, OPENSSL, NODE (default /usr/bin/node; the
# node case is a SKIP when it is not installed: the test programs cover the
# same ground without it), KEEP_TMP=1, VERBOSE=1.
set -u

BUILD=${BUILD:-build}
OPENSSL=${OPENSSL:-openssl}
NODE=${NODE:-/usr/bin/node}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
case "$BUILD" in
/*) BDIR=$BUILD ;;
*) BDIR=$ROOT/$BUILD ;;
esac
PRELOAD=$BDIR/libemsguard-preload.so
HELPERS=$BDIR/test/preload

TO=20
SERVER_PIDS=()
# shellcheck source=test/lib.sh
. "$HERE/lib.sh"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/eg-preload-static.XXXXXX") || exit 2
trap 'cleanup_servers' EXIT
trap 'exit 130' INT TERM HUP

prereq_fail() {
    fail_now 00-prerequisites "$1"
    summary
    exit 1
}

for f in "$PRELOAD" "$BDIR/libemsguard.so.0" "$HELPERS/chain_getters" "$HELPERS/own_openssl" \
    "$HELPERS/no_openssl" "$HELPERS/libegownssl.so"; do
    [ -e "$f" ] || prereq_fail "$f not built (make tests)"
done
ASAN_RT=$(ldd "$PRELOAD" 2>/dev/null | awk '$1 ~ /^libasan\.so/ { print $3; exit }')
if [ "${SANITIZE:-}" = 1 ] && [ -z "$ASAN_RT" ]; then
    prereq_fail "SANITIZE=1 but $PRELOAD is not linked against libasan"
fi
# PRE_LIBS: what LD_PRELOAD holds in front of the preload (the sanitizer
# runtime must come first).
PRE_LIBS=${ASAN_RT:+$ASAN_RT:}
SAN_OPTS=(ASAN_OPTIONS=detect_leaks=0:abort_on_error=1)
command -v "$OPENSSL" >/dev/null 2>&1 || prereq_fail "required tool '$OPENSSL' not installed"
make_fixtures || prereq_fail "cannot make a certificate"

# The loud line, on stderr and (through the program's syslog()) in syslog.
OWN_RE='^emsguard-preload: error: this program carries its own OpenSSL: SSL_CTX_new(_ex)? is defined in '
OWN_TAIL_RE=', ahead of this library, so the emsguard policy cannot be applied to it and is NOT applied$'
OWN_SYSLOG_RE='^syslog: <3> emsguard-preload: error: this program carries its own OpenSSL: SSL_CTX_new(_ex)? is defined in '

# run_pre OUT PRELOAD_LIST CMD...: CMD with LD_PRELOAD=PRELOAD_LIST (the
# sanitizer runtime put first); stdout in OUT, stderr in OUT.err; sets CRC.
# Only CMD runs preloaded, not timeout: a library ahead of the preload makes
# every preloaded process say the line, and to the real syslog.
run_pre() {
    local out=$1 list=$2
    shift 2
    timeout $TO env "${SAN_OPTS[@]}" bash -c 'LD_PRELOAD=$1 exec "${@:2}"' run_pre \
        "$PRE_LIBS$list" "$@" >"$out" 2>"$out.err"
    CRC=$?
    artifact "$out" "$out.err"
    san_clean "$out.err"
}

# ---- 1. programs that carry their own OpenSSL (N5) -----------------------------

# 10: the executable defines SSL_CTX_new (own_openssl, -rdynamic).  Also with
# EMSGUARD_DEBUG=1, which used to print nothing at all either.
begin 10-own-openssl-in-program
out=$TMP/10.txt
run_pre "$out" "$PRELOAD" "$HELPERS/own_openssl"
expect_eq "own_openssl exit status" "$CRC" 0
expect_grep "its own SSL_CTX_new ran" "^own SSL_CTX_new called$" "$out"
expect_grep "said on stderr, naming the program" "${OWN_RE}the program $HELPERS/own_openssl$OWN_TAIL_RE" "$out.err"
expect_grep "said to syslog" "${OWN_SYSLOG_RE}the program $HELPERS/own_openssl" "$out.err"
expect_eq "said once on stderr" "$(count_re "$out.err" "$OWN_RE")" 1
expect_grep "neither libssl nor libemsguard loaded by the preload" "^libssl=0 libemsguard=0$" "$out"
out=$TMP/10-debug.txt
run_pre "$out" "$PRELOAD" env EMSGUARD_DEBUG=1 "$HELPERS/own_openssl"
expect_grep "EMSGUARD_DEBUG=1: said on stderr" "$OWN_RE" "$out.err"
# Contrast: without the preload, nothing is said (the line is the preload's).
out=$TMP/10-stock.txt
timeout $TO "$HELPERS/own_openssl" >"$out" 2>"$out.err"
artifact "$out.err"
expect_empty "contrast (no preload): stderr" "$out.err"
end_test

# 11: a library ahead of the preload in LD_PRELOAD defines SSL_CTX_new.
begin 11-own-openssl-in-library-ahead
out=$TMP/11.txt
run_pre "$out" "$HELPERS/libegownssl.so:$PRELOAD" "$HELPERS/no_openssl"
expect_eq "no_openssl exit status" "$CRC" 0
expect_grep "said on stderr, naming the library" "${OWN_RE}$HELPERS/libegownssl\.so$OWN_TAIL_RE" "$out.err"
expect_grep "said to syslog" "${OWN_SYSLOG_RE}$HELPERS/libegownssl\.so" "$out.err"
expect_eq "said once on stderr" "$(count_re "$out.err" "$OWN_RE")" 1
expect_grep "neither libssl nor libemsguard loaded by the preload" "^libssl=0 libemsguard=0$" "$out"
end_test

# 12: Debian's node (OpenSSL linked in, SSL_CTX_new exported): the attack
# round's program.  No syslog stand-in here: stderr only.
if [ -x "$NODE" ]; then
    begin 12-debian-node
    out=$TMP/12.txt
    run_pre "$out" "$PRELOAD" "$NODE" -e 'process.stdout.write("node ran\n")'
    expect_eq "node exit status" "$CRC" 0
    expect_grep "node ran" "^node ran$" "$out"
    expect_grep "said on stderr, naming node" "${OWN_RE}the program $(readlink -f "$NODE")$OWN_TAIL_RE" "$out.err"
    end_test
else
    skip 12-debian-node "$NODE not installed (the test programs of 10 and 11 cover the case)"
fi

# 13: controls.  A program linked to libssl (chain_getters, and stock
# openssl): its SSL_CTX_new is the preload's; nothing said.  A program with
# no TLS at all: nothing said, nothing loaded, not even with EMSGUARD_DEBUG=1.
begin 13-controls-say-nothing
out=$TMP/13-libssl.txt
run_pre "$out" "$PRELOAD" "$HELPERS/chain_getters" "$CERT" "$KEY"
expect_eq "chain_getters exit status" "$CRC" 0
expect_nogrep "libssl program: nothing said" "carries its own OpenSSL" "$out.err"
out=$TMP/13-openssl.txt
run_pre "$out" "$PRELOAD" "$OPENSSL" version
expect_eq "openssl version exit status" "$CRC" 0
expect_nogrep "stock openssl: nothing said" "emsguard-preload" "$out.err"
out=$TMP/13-notls.txt
run_pre "$out" "$PRELOAD" env EMSGUARD_DEBUG=1 "$HELPERS/no_openssl"
expect_eq "no_openssl exit status" "$CRC" 0
expect_empty "no TLS: stderr" "$out.err"
expect_grep "no TLS: nothing loaded" "^libssl=0 libemsguard=0$" "$out"
end_test

# ---- 2. the getters under the preload (N3) ---------------------------------------

# 20: chain_getters under the preload: every chain complete, the second
# connection resumed through the application's chained session store, and
# every count the same as without the preload (stock OpenSSL semantics).
begin 20-chained-getters
out=$TMP/20.txt
run_pre "$out" "$PRELOAD" env OPENSSL_CONF="$EMS_CNF" "$HELPERS/chain_getters" "$CERT" "$KEY"
expect_eq "chain_getters exit status" "$CRC" 0
expect_grep "the preload answers SSL_CTX_new" "^SSL_CTX_new from libemsguard-preload\.so$" "$out"
expect_grep "chains complete" "^chains ok$" "$out"
expect_grep "resumed through the chained store" "^conn 2: ok=1 reused=1$" "$out"
expect_grep "no recursion" "^recursion=0 unchained=0$" "$out"
stock=$TMP/20-stock.txt
OPENSSL_CONF=$EMS_CNF timeout $TO "$HELPERS/chain_getters" "$CERT" "$KEY" >"$stock" 2>&1
artifact "$stock"
expect_grep "stock: SSL_CTX_new is libssl's" "^SSL_CTX_new from libssl\.so\.3$" "$stock"
expect_grep "stock: chains complete" "^chains ok$" "$stock"
if ! diff <(sed 1d "$out") <(sed 1d "$stock") >"$TMP/20.diff"; then
    artifact "$TMP/20.diff"
    err "counts differ from a run without the preload"
fi
end_test

summary
[ "$NFAIL" -eq 0 ]
