#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# An emsguard provider in the process's openssl.cnf, found the way OpenSSL
# finds it (issue 15, F12), with stock Debian binaries; and the documented
# limit of the guard-only route (issue 15, F6).
#
#   BUILD=build SANITIZE= bash test/config_failclosed.sh
#   BUILD=build-san SANITIZE=1 bash test/config_failclosed.sh
#
#  1-3  libemsguard-preload.so in a stock `openssl s_server`, the policy from
#       OPENSSL_CONF: a renamed provider whose module is a copy named
#       emsguard-1.so is applied (RequireExtendedMasterSecret=1 rejects a
#       legacy client); a misspelt key in it, or a module that is not
#       there, makes every SSL_CTX_new() fail with the reason.
#  4-5  `emsguard policy` (no --config: OPENSSL_CONF) reports that renamed
#       provider's policy, and fails on its misspelt key.
#  6    Guard-only route (openssl.cnf alone, default_properties
#       ?emsguard.guard=yes, RequireExtendedMasterSecret=1): a legacy full
#       handshake fails, but a non-EMS ticket issued by a stock server that
#       shares the ticket keys IS resumed -- the limit `emsguard policy` and
#       openssl.cnf.example state; the API route with the same file and keys
#       does not resume it.
#
# Every case prints PASS/FAIL; the summary is `N passed, M failed, K skipped`.
# Environment: BUILD (default build), SANITIZE, OPENSSL, KEEP_TMP=1,
# VERBOSE=1.
set -u

OPENSSL=${OPENSSL:-openssl}
HERE=$(cd "$(dirname "$0")" && pwd)

TO=20
SERVER_PIDS=()
# shellcheck source=test/lib.sh
. "$HERE/lib.sh"
script_start failclosed
TOOL=$BDIR/tools/emsguard
EG=$BDIR/test/eg_peer

for f in "$PRELOAD" "$BDIR/libemsguard.so.0" "$BDIR/emsguard.so" "$TOOL" "$EG"; do
    [ -e "$f" ] || prereq_fail "$f not built (make BUILD=$BUILD tests)"
done
command -v "$OPENSSL" >/dev/null 2>&1 || prereq_fail "required peer '$OPENSSL' not installed"
# A sanitizer build: libasan first in every stock process that loads our code.
set_preload_env
make_fixtures || prereq_fail "cannot make a certificate"

# The module under a name OpenSSL accepts and emsguard's old lookup did not:
# a real copy, as a packager might install a versioned file.
COPY=$TMP/emsguard-1.so
cp "$BDIR/emsguard.so" "$COPY"

# renamed_cnf FILE MODULE KEY=VALUE...: provider "myguard" in [myguard_sect].
renamed_cnf() {
    local file=$1 module=$2 kv
    shift 2
    {
        cat <<EOF
openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
[provider_sect]
default = default_sect
myguard = myguard_sect
[default_sect]
activate = 1
[myguard_sect]
module = $module
activate = 1
EOF
        for kv in "$@"; do
            echo "${kv%%=*} = ${kv#*=}"
        done
    } >"$file"
}

RENAMED=$TMP/renamed.cnf
RENAMED_TYPO=$TMP/renamed-typo.cnf
MISSING=$TMP/missing-module.cnf
renamed_cnf "$RENAMED" "$COPY" RequireExtendedMasterSecret=1 EventLogging=3
renamed_cnf "$RENAMED_TYPO" "$COPY" RequireExtendedMasterSecret=1 EventLoging=3
renamed_cnf "$MISSING" "$TMP/nowhere/emsguard.so" RequireExtendedMasterSecret=1

# pserver NAME CNF: preloaded stock s_server, policy from CNF (OPENSSL_CONF).
pserver() {
    SRV_ENV=(OPENSSL_CONF="$2" "${PRE_ENV[@]}")
    start_server "$1" "$OPENSSL" s_server -accept @PORT@ -cert "$CERT" -key "$KEY" -www -quiet
}

# pserver_must_fail NAME CNF: the preloaded s_server must exit non-zero at
# once (its SSL_CTX_new fails); its output in $TMP/NAME.txt.
pserver_must_fail() {
    local out=$TMP/$1.txt
    env OPENSSL_CONF="$2" "${PRE_ENV[@]}" timeout 10 "$OPENSSL" s_server -accept "$(random_port)" \
        -cert "$CERT" -key "$KEY" -www -quiet </dev/null >"$out" 2>&1
    CRC=$?
    artifact "$out"
    expect_ne "s_server exit status" "$CRC" 0
    expect_ne "s_server exit status (still running at timeout)" "$CRC" 124
    expect_grep "preload says it fails closed" "^emsguard-preload: error: invalid configuration" "$out"
    san_clean "$out"
}

# ---- 1-3: the preload -----------------------------------------------------------

begin 01-preload-renamed-provider-copied-module-applied
if pserver 01 "$RENAMED"; then
    artifact "$SRV_ERR"
    out=$TMP/01-legacy.txt
    sclient "$out" "$LEGACY_CNF" -connect "127.0.0.1:$SRV_PORT" -tls1_2
    expect_ne "legacy client (RequireExtendedMasterSecret=1 from [myguard_sect]) exit status" "$CRC" 0
    expect_grep "legacy client sees handshake_failure" "alert handshake failure|alert number 40" "$out"
    out=$TMP/01-ems.txt
    sclient "$out" "$EMS_CNF" -connect "127.0.0.1:$SRV_PORT" -tls1_2
    expect_eq "EMS client exit status" "$CRC" 0
    stop_server "$SRV_PID"
    san_clean "$SRV_ERR"
else
    server_up_or_fail 01
fi
end_test

begin 02-preload-renamed-provider-misspelt-key-fails-closed
pserver_must_fail 02 "$RENAMED_TYPO"
expect_grep "message names file, section and key" \
    "renamed-typo\\.cnf, section \\[myguard_sect\\]: unknown key 'EventLoging' \\(did you mean 'EventLogging'\\?\\)" \
    "$TMP/02.txt"
end_test

begin 03-preload-module-missing-fails-closed
pserver_must_fail 03 "$MISSING"
expect_grep "message names the module" "module '$TMP/nowhere/emsguard\\.so' does not exist" "$TMP/03.txt"
end_test

# ---- 4-5: `emsguard policy` ------------------------------------------------------

begin 04-policy-cmd-renamed-provider
env OPENSSL_CONF="$RENAMED" "$TOOL" policy >"$TMP/04.out" 2>"$TMP/04.err"
rc=$?
artifact "$TMP/04.out" "$TMP/04.err"
expect_eq "exit status" "$rc" 0
expect_grep "header" "^emsguard policy from $RENAMED \\(the emsguard provider loads and is active\\)" "$TMP/04.out"
expect_grep "RequireExtendedMasterSecret from [myguard_sect]" \
    "^      \\[$RENAMED \\[myguard_sect\\] RequireExtendedMasterSecret\\]" "$TMP/04.out"
end_test

begin 05-policy-cmd-renamed-provider-misspelt-key
env OPENSSL_CONF="$RENAMED_TYPO" "$TOOL" policy >"$TMP/05.out" 2>"$TMP/05.err"
rc=$?
artifact "$TMP/05.out" "$TMP/05.err"
expect_eq "exit status" "$rc" 2
expect_grep "message" "section \\[myguard_sect\\]: unknown key 'EventLoging'" "$TMP/05.err"
expect_empty "stdout" "$TMP/05.out"
end_test

# ---- 6: the guard-only route and a foreign non-EMS ticket (F6) ------------------

GUARD_CNF=$TMP/guard-enforce.cnf
cat >"$GUARD_CNF" <<EOF
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
RequireExtendedMasterSecret = 1
[algorithm_sect]
default_properties = ?emsguard.guard=yes
EOF

# seed_server NAME CNF ARGS...: eg_peer server with OPENSSL_CONF=CNF.
seed_server() {
    local name=$1 cnf=$2
    shift 2
    SRV_ENV=(OPENSSL_CONF="$cnf")
    start_server "$name" "$EG" server --port @PORT@ --cert "$CERT" --key "$KEY" "$@"
}

begin 06-guard-only-resumes-foreign-non-ems-ticket
SEED=(--ticket-seed "eg-failclosed-$RANDOM-$$")
SESS=$TMP/06.sess
# A stock fleet member issues a non-EMS ticket to a legacy client.
if seed_server 06-issuer "$EMS_CNF" --stock "${SEED[@]}"; then
    out=$TMP/06-get.txt
    sclient "$out" "$LEGACY_CNF" -connect "127.0.0.1:$SRV_PORT" -tls1_2 -sess_out "$SESS"
    expect_eq "issuer: legacy client exit status" "$CRC" 0
    stop_server "$SRV_PID"
else
    server_up_or_fail 06-issuer
fi
# The guard-only member: no emsguard call, no preload; the guard from openssl.cnf.
if seed_server 06-guard "$GUARD_CNF" --stock "${SEED[@]}"; then
    artifact "$SRV_OUT" "$SRV_ERR"
    out=$TMP/06-full.txt
    sclient "$out" "$LEGACY_CNF" -connect "127.0.0.1:$SRV_PORT" -tls1_2
    expect_ne "guard only: a legacy full handshake is refused" "$CRC" 0
    expect_grep "guard only: peer sees internal_error" "alert internal error|alert number 80" "$out"
    out=$TMP/06-resume.txt
    sclient "$out" "$LEGACY_CNF" -connect "127.0.0.1:$SRV_PORT" -tls1_2 -sess_in "$SESS"
    expect_eq "guard only: the foreign non-EMS ticket resumes (documented limit)" \
        "$(count_prefix "$out" Reused,)" 1
    expect_eq "guard only: exit status" "$CRC" 0
    stop_server "$SRV_PID"
    san_clean "$SRV_ERR"
else
    server_up_or_fail 06-guard
fi
# The SSL_CTX route with the same file and keys refuses that ticket.
if seed_server 06-api "$GUARD_CNF" "${SEED[@]}"; then
    artifact "$SRV_OUT" "$SRV_ERR"
    out=$TMP/06-api.txt
    sclient "$out" "$LEGACY_CNF" -connect "127.0.0.1:$SRV_PORT" -tls1_2 -sess_in "$SESS"
    expect_eq "API route: Reused lines" "$(count_prefix "$out" Reused,)" 0
    stop_server "$SRV_PID"
    san_clean "$SRV_ERR"
else
    server_up_or_fail 06-api
fi
# The documentation says so where RequireExtendedMasterSecret=1 is shown.
env OPENSSL_CONF="$GUARD_CNF" "$TOOL" policy >"$TMP/06-policy.out" 2>"$TMP/06-policy.err"
artifact "$TMP/06-policy.out" "$TMP/06-policy.err"
expect_grep "emsguard policy states the guard-only limit" \
    "cannot refuse the resumption of a non-EMS session created elsewhere" "$TMP/06-policy.out"
expect_grep "openssl.cnf.example states the guard-only limit" \
    "cannot refuse the resumption of a non-EMS session" "$ROOT/openssl.cnf.example"
end_test

summary
[ "$NFAIL" -eq 0 ]
