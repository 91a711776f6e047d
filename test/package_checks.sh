#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# What an admin gets from `apt install ./emsguard_*.deb ./libemsguard*.deb`:
# run as root inside a clean Debian root where the three packages (and
# openssl, man-db) were just installed (.ci/package-test does that).  Uses
# only installed files: nothing of the source tree is on this system.
#
#   1 the module is where libcrypto looks, and the shipped openssl.cnf
#     snippet makes `openssl list -providers` show emsguard active
#   2 `emsguard policy` and `emsguard probe` run from $PATH
#   3 a stock `openssl s_server`, preloaded the way the shipped nginx drop-in
#     says, gives a legacy (non-EMS) client a full handshake every time and
#     still resumes an EMS client; the same server without the preload
#     resumes the legacy client (the contrast that shows the check can fail)
#   4 `man emsguard` and the other pages open, without warnings
#
# Ends with "N passed, N failed"; exit status 1 if any check failed.
set -uo pipefail

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL $*"; }
check() { # check NAME COMMAND...: ok when COMMAND succeeds
    local name=$1
    shift
    if "$@"; then ok "$name"; else bad "$name"; fi
}
# to FILE COMMAND...: COMMAND with its output in FILE, shown if it fails.
to() {
    local file=$1
    shift
    "$@" >"$file" 2>&1 || { local rc=$?; cat "$file"; return "$rc"; }
}

DOC=/usr/share/doc/emsguard/examples
CNF_EXAMPLE=$DOC/openssl.cnf.example
DROPIN=$DOC/nginx-emsguard.conf
TMP=$(mktemp -d /tmp/eg-pkg.XXXXXX) || exit 2
SERVER_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

echo "== $(. /etc/os-release; echo "$PRETTY_NAME"), $(openssl version)"
dpkg-query -W -f '${Package} ${Version} ${Depends}\n' libemsguard0 libemsguard-dev emsguard

# ---- 1: the module and the openssl.cnf snippet -------------------------------

modulesdir=$(openssl version -m | sed -n 's/^MODULESDIR: "\(.*\)"$/\1/p')
check "module in libcrypto's MODULESDIR ($modulesdir/emsguard.so)" \
    test -e "$modulesdir/emsguard.so"
check "module and library are one file" \
    test "$(readlink -f "$modulesdir/emsguard.so")" = "$(readlink -f "$(dpkg -L libemsguard0 | grep '/libemsguard\.so\.0$')")"

OPENSSL_CONF=$CNF_EXAMPLE openssl list -providers >"$TMP/providers" 2>&1
# "  emsguard" then, indented below it, "status: active".
check "openssl list -providers with $CNF_EXAMPLE: emsguard active" \
    awk '/^  [^ ]/ { p = $1 } p == "emsguard" && $1 == "status:" && $2 == "active" { found = 1 }
         END { exit !found }' "$TMP/providers"
[ "$FAIL" -eq 0 ] || cat "$TMP/providers"

# ---- 2: the CLI from $PATH ----------------------------------------------------

check "emsguard on \$PATH is /usr/bin/emsguard" test "$(command -v emsguard)" = /usr/bin/emsguard
check "emsguard --version" emsguard --version
# The drop-in's instructions: the example becomes the policy file.
install -D -m 0644 "$CNF_EXAMPLE" /etc/emsguard/openssl.cnf
check "emsguard policy --config /etc/emsguard/openssl.cnf: valid (exit 0)" \
    to "$TMP/policy.out" emsguard policy --config /etc/emsguard/openssl.cnf

# ---- 3: a preloaded stock s_server --------------------------------------------

# The environment the shipped drop-in gives a service, taken from the file.
mapfile -t DROPIN_ENV < <(sed -n 's/^Environment=//p' "$DROPIN")
check "the drop-in sets LD_PRELOAD and EMSGUARD_CONF" \
    test "${#DROPIN_ENV[@]}" -eq 2 -a "${DROPIN_ENV[0]%%=*}" = LD_PRELOAD -a "${DROPIN_ENV[1]%%=*}" = EMSGUARD_CONF

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -keyout "$TMP/key.pem" -out "$TMP/cert.pem" >/dev/null 2>&1 ||
    bad "cannot make a certificate"
# Clients: OpenSSL's own configuration turns EMS off for the legacy one.
printf '%s\n' 'openssl_conf = init' '[init]' 'ssl_conf = ssl' '[ssl]' 'system_default = sys' \
    '[sys]' 'Options = -ExtendedMasterSecret' >"$TMP/legacy.cnf"
: >"$TMP/ems.cnf"

# start_server LOG [ENV...]: s_server -www on a free 127.0.0.1 port (PORT).
start_server() {
    local log=$1 i
    shift
    env "$@" openssl s_server -accept 127.0.0.1:0 -cert "$TMP/cert.pem" -key "$TMP/key.pem" \
        -tls1_2 -www </dev/null >"$log" 2>"$log.err" &
    SERVER_PID=$!
    PORT=
    for i in $(seq 50); do
        PORT=$(sed -n 's/^ACCEPT 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$log")
        [ -n "$PORT" ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$log" "$log.err"
    return 1
}
stop_server() {
    kill "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=
}
# reconnect CNF: 1 connection + 5 reconnections offering the session; prints
# "NEW REUSED".
reconnect() {
    OPENSSL_CONF=$1 openssl s_client -connect 127.0.0.1:"$PORT" -tls1_2 -reconnect \
        </dev/null >"$TMP/client.out" 2>&1
    echo "$(grep -c '^New,' "$TMP/client.out") $(grep -c '^Reused,' "$TMP/client.out")"
}

# EMSGUARD_DEBUG=1: the preload says where its policy came from.
if start_server "$TMP/preloaded.log" "${DROPIN_ENV[@]}" EMSGUARD_DEBUG=1; then
    ok "preloaded s_server started (${DROPIN_ENV[*]})"
    got=$(reconnect "$TMP/legacy.cnf")
    check "preloaded: legacy client gets 6 full handshakes, 0 resumptions (got new/reused $got)" \
        test "$got" = "6 0"
    got=$(reconnect "$TMP/ems.cnf")
    check "preloaded: EMS client resumes 5 of 6 (got new/reused $got)" test "$got" = "1 5"
    check "preloaded: the policy came from the drop-in's EMSGUARD_CONF" \
        grep -q 'emsguard-preload: debug: policy from /etc/emsguard/openssl.cnf' "$TMP/preloaded.log.err"
    emsguard probe 127.0.0.1:"$PORT" --timeout 5 --max-handshakes 50 >"$TMP/probe.out" 2>&1
    rc=$?
    check "emsguard probe of the preloaded server: compliant (exit $rc)" test "$rc" -eq 0
    [ "$rc" -eq 0 ] || cat "$TMP/probe.out"
    stop_server
else
    bad "preloaded s_server did not start"
fi

if start_server "$TMP/stock.log"; then
    got=$(reconnect "$TMP/legacy.cnf")
    check "contrast, stock s_server: legacy client resumes 5 of 6 (got new/reused $got)" \
        test "$got" = "1 5"
    emsguard probe 127.0.0.1:"$PORT" --timeout 5 --max-handshakes 50 >"$TMP/probe.out" 2>&1
    rc=$?
    check "contrast, emsguard probe of the stock server: findings (exit $rc)" test "$rc" -eq 1
    stop_server
else
    bad "stock s_server did not start"
fi

# ---- 4: man pages --------------------------------------------------------------

check "man emsguard opens" \
    bash -c 'MANPAGER=cat MANWIDTH=80 man emsguard 2>&1 | grep -q "emsguard probe --targets"'
check "man 7 emsguard opens" \
    bash -c 'MANPAGER=cat MANWIDTH=80 man 7 emsguard 2>&1 | grep -q "FAILING CLOSED"'
check "man EMSGUARD_enable_ex opens EMSGUARD_enable(3)" \
    bash -c 'MANPAGER=cat MANWIDTH=80 man EMSGUARD_enable_ex 2>&1 | grep -q "EMSGUARD_enable_policy"'
warned=0
for page in $(dpkg -L emsguard libemsguard-dev | grep '^/usr/share/man/.*\.gz$'); do
    [ -L "$page" ] && continue
    w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$page" 2>&1 >/dev/null)
    [ -z "$w" ] || { echo "$page: $w"; warned=1; }
done
check "man --warnings: nothing for any installed page" test "$warned" -eq 0

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
