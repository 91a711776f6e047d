#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `emsguard policy` on the registry exports of test/reg/ (issue 22): which
# cipher-suite list is in force and why (local only, group policy only,
# both), the warning when a list leaves TLS 1.3 without suites, and the
# .reg warnings logged at their own level when the provider loads.
#
#   BUILD=build bash test/policy_reg_lists.sh
#
# Every case prints PASS/FAIL; the summary is `N passed, M failed, K skipped`.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
SERVER_PIDS=()
. "$HERE/lib.sh"
script_start reglists 'rm -rf "$TMP"'
TOOL=$BDIR/tools/emsguard
REGDIR=$ROOT/test/reg

[ -x "$TOOL" ] || prereq_fail "$TOOL not built (make $BUILD/tools/emsguard)"

# cnf FILE REG [EXTRA-LINES]: a provider section reading REG.
cnf() {
    {
        eg_provider_cnf "$BDIR/emsguard.so"
        printf 'PolicyFile = %s\n%s\n' "$2" "${3:-}"
    } >"$1"
}

# policy NAME REG [EXTRA-LINES]: `emsguard policy` on it, into $TMP/NAME.*
policy() {
    local name=$1
    cnf "$TMP/$name.cnf" "$2" "${3:-}"
    "$TOOL" policy --config "$TMP/$name.cnf" >"$TMP/$name.out" 2>"$TMP/$name.err"
    echo $? >"$TMP/$name.rc"
    artifact "$TMP/$name.out" "$TMP/$name.err"
}

LOCAL_WHY='the local list \(SYSTEM\\CurrentControlSet\\Control\\Cryptography\\Configuration\\Local\\SSL\\00010002, which Enable-TlsCipherSuite edits\): no group-policy list is present$'
POLICY_WHY='the group-policy list \(SOFTWARE\\Policies\\Microsoft\\Cryptography\\Configuration\\SSL\\00010002\): Schannel uses it whenever it is present'

begin 01-local-list-only
policy local "$REGDIR/cmdlet-local.reg"
expect_eq "exit status" "$(cat "$TMP/local.rc")" 0
expect_grep "source" "^      \[$REGDIR/cmdlet-local.reg:4\]$" "$TMP/local.out"
expect_grep "which list and why" "^      -> CipherString, Ciphersuites, Options ServerPreference \(server\); $LOCAL_WHY" "$TMP/local.out"
expect_grep "TLS 1.3 suites of the list" "^    Ciphersuites      TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256$" "$TMP/local.out"
expect_grep "no warning" "^Warnings: none$" "$TMP/local.out"

end_test

begin 02-group-policy-list-only
policy gpo "$REGDIR/gpo-cipher-order.reg"
expect_eq "exit status" "$(cat "$TMP/gpo.rc")" 0
expect_grep "which list and why" "^      -> CipherString, Ciphersuites, Options ServerPreference \(server\); ${POLICY_WHY}$" "$TMP/gpo.out"
expect_grep "TLS 1.3 off, and why" "^  warning: TLS 1.3 is now off for the server and client roles: the cipher suite order \(Functions\) lists no TLS 1.3 suite \(TLS_AES_\*, TLS_CHACHA20_\*\), as lists written before TLS 1.3 do" "$TMP/gpo.out"
expect_grep "curve suffix warning" "^  $REGDIR/gpo-cipher-order.reg:4: warning: Functions: 'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384_P384' read as" "$TMP/gpo.out"
"$TOOL" policy --config "$TMP/gpo.cnf" --json >"$TMP/gpo.json" 2>/dev/null
expect_grep "TLS 1.3 warning in JSON" '"warning: TLS 1.3 is now off for the server and client roles' "$TMP/gpo.json"

end_test

begin 03-both-lists
policy both "$REGDIR/gpo-over-local.utf8.reg"
expect_eq "exit status" "$(cat "$TMP/both.rc")" 0
expect_grep "the group-policy list wins" "^      -> CipherString, Ciphersuites, Options ServerPreference \(server\); ${POLICY_WHY}, so the local list at $REGDIR/gpo-over-local.utf8.reg:9 is not used$" "$TMP/both.out"
expect_grep "info line" "^  $REGDIR/gpo-over-local.utf8.reg:9: info: Functions under \[\.\.\.\\\\Local\\\\SSL\\\\00010002\] not used: the group-policy list \($REGDIR/gpo-over-local.utf8.reg:6\) overrides it, as in Schannel$" "$TMP/both.out"
expect_grep "its suites" "^    CipherString      ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256$" "$TMP/both.out"

end_test

# A sanitizer build: libasan first in the stock openssl that loads the module.
ASAN_RT=$(ldd "$BDIR/emsguard.so" 2>/dev/null | awk '$1 ~ /^libasan\.so/ { print $3; exit }')
RUN_ENV=()
[ -n "$ASAN_RT" ] && RUN_ENV=(LD_PRELOAD="$ASAN_RT" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1)

# The provider logs stored lines at their own level when it loads: none with
# Schannel's default EventLogging=1, the warning alone with 2.
begin 04-log-levels-at-load
for mask in 1 2 6; do
    cnf "$TMP/log$mask.cnf" "$REGDIR/gpo-cipher-order.reg" "EventLogging = $mask"
    env "${RUN_ENV[@]}" OPENSSL_CONF="$TMP/log$mask.cnf" "${OPENSSL:-openssl}" list -providers >"$TMP/log$mask.out" 2>"$TMP/log$mask.err"
    artifact "$TMP/log$mask.err"
done
expect_eq "EventLogging=1: no warning" "$(grep -c 'warning' "$TMP/log1.err")" 0
expect_grep "EventLogging=2: one level, first" "^emsguard: warning: $REGDIR/gpo-cipher-order.reg:4: Functions: 'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384_P384' read as" "$TMP/log2.err"
expect_nogrep "never labelled error" "emsguard: error: .*warning" "$TMP/log2.err"
expect_nogrep "no info without bit 4" "emsguard: info:" "$TMP/log2.err"
end_test

summary
