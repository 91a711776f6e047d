#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# libemsguard-preload.so in a program that makes an SSL_CTX before it loads
# its OpenSSL configuration (issue 15, attack round 3: S2), over real TCP on
# 127.0.0.1 against stock s_client (test/preload/late_config_server.c: a
# first SSL_CTX, then CONF_modules_load_file(), then the serving SSL_CTX):
#
#   10  the late configuration activates emsguard with
#       RequireExtendedMasterSecret=1: the SSL_CTX made after it refuses a
#       legacy client and serves an EMS one, and the preload says loudly
#       that the policy changed and that the earlier SSL_CTX kept the old,
#       weaker one
#   11  the same, serving with the first SSL_CTX (after the second was
#       made): it keeps the policy it got (emsguard does not re-enable a
#       ctx with other values), the legacy client completes, and that is
#       said loudly, not silent
#   12  the late configuration activates emsguard with the built-in
#       defaults: nothing changes, nothing is said
#   13  EMSGUARD_CONF names the policy file: it decides, whatever the
#       program loads later; nothing is said
#
#   BUILD=build SANITIZE= bash test/preload_late.sh
#   BUILD=build-san SANITIZE=1 bash test/preload_late.sh
#
# Conventions as in test/preload.sh (legacy peers: OPENSSL_CONF with
# `Options = -ExtendedMasterSecret`; `PASS`/`FAIL`/`SKIP` per case; a missing
# peer is a FAIL).  Environment: BUILD, SANITIZE, OPENSSL, KEEP_TMP=1,
# VERBOSE=1.
set -u

OPENSSL=${OPENSSL:-openssl}
HERE=$(cd "$(dirname "$0")" && pwd)

TO=20
SERVER_PIDS=()
# shellcheck source=test/lib.sh
. "$HERE/lib.sh"
script_start preload-late
HELPER=$BDIR/test/preload/late_config_server
MODULE=$BDIR/emsguard.so

for f in "$PRELOAD" "$BDIR/libemsguard.so.0" "$MODULE" "$HELPER"; do
    [ -e "$f" ] || prereq_fail "$f not built (make tests)"
done
set_preload_env
command -v "$OPENSSL" >/dev/null 2>&1 || prereq_fail "required tool '$OPENSSL' not installed"
make_fixtures || prereq_fail "cannot make a certificate"

# write_eg_cnf FILE KEY=VALUE...: an openssl.cnf that activates the default
# provider and emsguard with these keys.
# (lib.sh write_eg_module_cnf with this script's module)
write_eg_cnf() { write_eg_module_cnf "$1" "$MODULE" "${@:2}"; }

# late_server NAME CONF [first]: late_config_server under the preload,
# serving two connections; OPENSSL_CONF (no emsguard) and the preload come
# from SRV_ENV.  Sets SRV_PID, SRV_PORT, SRV_OUT, SRV_ERR; returns 1 if no
# port line came.
late_server() {
    local name=$1 i
    shift
    SRV_OUT=$TMP/$name.out
    SRV_ERR=$TMP/$name.err
    SRV_PORT=""
    env "${SRV_ENV[@]}" "$HELPER" "$1" "$CERT" "$KEY" 2 "${@:2}" \
        </dev/null >"$SRV_OUT" 2>"$SRV_ERR" &
    SRV_PID=$!
    SERVER_PIDS+=("$SRV_PID")
    artifact "$SRV_OUT" "$SRV_ERR"
    for ((i = 0; i < 200; i++)); do
        SRV_PORT=$(awk '$1 == "port" { print $2; exit }' "$SRV_OUT" 2>/dev/null)
        [ -n "$SRV_PORT" ] && return 0
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.05
    done
    stop_server "$SRV_PID"
    return 1
}

# legacy_then_ems: a legacy s_client then an EMS one, TLS 1.2; then waits
# for the server to leave (bounded).  Sets LEGACY_RC and EMS_RC.
legacy_then_ems() {
    local i
    sclient "$TMP/$CUR-legacy.txt" "$LEGACY_CNF" -connect 127.0.0.1:"$SRV_PORT" -tls1_2
    LEGACY_RC=$CRC
    sclient "$TMP/$CUR-ems.txt" "$EMS_CNF" -connect 127.0.0.1:"$SRV_PORT" -tls1_2
    EMS_RC=$CRC
    for ((i = 0; i < 200; i++)); do
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.05
    done
    stop_server "$SRV_PID"
}

CHANGED_RE="policy changed after this process made SSL_CTXs"

LATE_REQUIRE=$TMP/late-require.cnf
write_eg_cnf "$LATE_REQUIRE" RequireExtendedMasterSecret=1
LATE_DEFAULTS=$TMP/late-defaults.cnf
write_eg_cnf "$LATE_DEFAULTS"
EG_DEFAULTS=$TMP/eg-defaults.cnf
write_eg_cnf "$EG_DEFAULTS" RequireExtendedMasterSecret=0

# 10: the SSL_CTX made after the late configuration gets its policy.
begin 10-late-config-require-applies
SRV_ENV=(OPENSSL_CONF="$EMS_CNF" "${PRE_ENV[@]}")
if late_server 10 "$LATE_REQUIRE"; then
    expect_grep "the late configuration activated emsguard" "^provider emsguard=1$" "$SRV_OUT"
    legacy_then_ems
    expect_ne "legacy s_client exit status" "$LEGACY_RC" 0
    expect_eq "EMS s_client exit status" "$EMS_RC" 0
    expect_grep "legacy client refused" "^conn 1: failed$" "$SRV_OUT"
    expect_grep "EMS client served with EMS" "^conn 2: ok version=TLSv1\\.2 ems=1$" "$SRV_OUT"
    expect_grep "refusal logged" "reason=ems-required" "$SRV_ERR"
    expect_grep "the change is said" "$CHANGED_RE" "$SRV_ERR"
    expect_grep "the earlier SSL_CTX's weaker policy is named" \
        "earlier.*do NOT require Extended Master Secret" "$SRV_ERR"
    san_clean "$SRV_ERR"
else
    err "late_config_server did not start: $(tail -n 3 "$SRV_ERR" | tr '\n' ' ')"
fi
end_test

# 11: the first SSL_CTX keeps the policy it got; never silently.
begin 11-first-ctx-keeps-its-policy-loudly
SRV_ENV=(OPENSSL_CONF="$EMS_CNF" "${PRE_ENV[@]}")
if late_server 11 "$LATE_REQUIRE" first; then
    legacy_then_ems
    expect_grep "the first SSL_CTX keeps the defaults: legacy completes" \
        "^conn 1: ok version=TLSv1\\.2 ems=0$" "$SRV_OUT"
    expect_grep "EMS client served" "^conn 2: ok version=TLSv1\\.2 ems=1$" "$SRV_OUT"
    expect_grep "not silent: the change is said" "$CHANGED_RE" "$SRV_ERR"
    san_clean "$SRV_ERR"
else
    err "late_config_server did not start: $(tail -n 3 "$SRV_ERR" | tr '\n' ' ')"
fi
end_test

# 12: a late configuration with the same values: no change, no message.
begin 12-late-config-same-policy-quiet
SRV_ENV=(OPENSSL_CONF="$EMS_CNF" "${PRE_ENV[@]}")
if late_server 12 "$LATE_DEFAULTS"; then
    expect_grep "the late configuration activated emsguard" "^provider emsguard=1$" "$SRV_OUT"
    legacy_then_ems
    expect_grep "defaults: legacy completes" "^conn 1: ok version=TLSv1\\.2 ems=0$" "$SRV_OUT"
    expect_grep "EMS client served" "^conn 2: ok version=TLSv1\\.2 ems=1$" "$SRV_OUT"
    expect_nogrep "no change said" "$CHANGED_RE" "$SRV_ERR"
    san_clean "$SRV_ERR"
else
    err "late_config_server did not start: $(tail -n 3 "$SRV_ERR" | tr '\n' ' ')"
fi
end_test

# 13: EMSGUARD_CONF fixes the policy: a later configuration does not change it.
begin 13-emsguard-conf-fixed
SRV_ENV=(OPENSSL_CONF="$EMS_CNF" EMSGUARD_CONF="$EG_DEFAULTS" "${PRE_ENV[@]}")
if late_server 13 "$LATE_REQUIRE"; then
    legacy_then_ems
    expect_grep "EMSGUARD_CONF's policy: legacy completes" \
        "^conn 1: ok version=TLSv1\\.2 ems=0$" "$SRV_OUT"
    expect_grep "EMS client served" "^conn 2: ok version=TLSv1\\.2 ems=1$" "$SRV_OUT"
    expect_nogrep "no change said" "$CHANGED_RE" "$SRV_ERR"
    san_clean "$SRV_ERR"
else
    err "late_config_server did not start: $(tail -n 3 "$SRV_ERR" | tr '\n' ' ')"
fi
end_test

summary
[ "$NFAIL" -eq 0 ]
