#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# libemsguard-preload.so in programs that choose their own OpenSSL
# configuration, and in programs that set their own verify or security
# callback (issue 15, attack round 2: R2, R4), over real TCP on 127.0.0.1
# against stock Debian peers:
#
#   1x  a program that loads its own configuration before its first
#       SSL_CTX_new (OPENSSL_INIT_set_config_filename, or _appname, as
#       Postfix's tls_config_file/tls_config_name do; test/preload/
#       own_config_server.c): the emsguard provider OpenSSL activated from
#       it gives the policy (RequireExtendedMasterSecret=1 refuses a legacy
#       client), also when the preload was set up before the program's own
#       initialisation; a bad value there makes SSL_CTX_new fail; with no
#       file of its own, and with EMSGUARD_CONF, nothing changes
#   2x  SSL_CTX_set_verify/SSL_set_verify, SSL_CTX_set_cert_verify_callback,
#       SSL_CTX_set_security_callback/SSL_set_security_callback after
#       SSL_CTX_new (test/preload/
#       set_cb_client.c): chained behind emsguard's callbacks, so
#       KeyExchangeAlgorithms\PKCS and \Diffie-Hellman ClientMinKeyBitLength
#       still refuse a 2048-bit server, a RequireExtendedMasterSecret=1
#       client still connects to a TLS 1.2 server with EMS (not held to
#       TLS 1.3), the application's callback is still consulted, and the
#       getters give the application its own callback
#
#   BUILD=build SANITIZE= bash test/preload_config.sh
#   BUILD=build-san SANITIZE=1 bash test/preload_config.sh
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
script_start preload-config
HELPERS=$BDIR/test/preload
MODULE=$BDIR/emsguard.so

# ---- prerequisites ------------------------------------------------------------

for f in "$PRELOAD" "$BDIR/libemsguard.so.0" "$MODULE" "$HELPERS/own_config_server" \
    "$HELPERS/set_cb_client"; do
    [ -e "$f" ] || prereq_fail "$f not built (make tests)"
done
set_preload_env
command -v "$OPENSSL" >/dev/null 2>&1 || prereq_fail "required tool '$OPENSSL' not installed"
make_fixtures || prereq_fail "cannot make a certificate"
# A 2048-bit RSA certificate: below a PKCS ClientMinKeyBitLength of 3072,
# and DHE with it gets a 2048-bit group (libssl's automatic choice).
RSA_CERT=$TMP/rsa-cert.pem
RSA_KEY=$TMP/rsa-key.pem
timeout $TO "$OPENSSL" req -x509 -newkey rsa:2048 -keyout "$RSA_KEY" -out "$RSA_CERT" \
    -days 2 -nodes -subj /CN=localhost >"$TMP/rsa-req.log" 2>&1 \
    || prereq_fail "cannot make an RSA certificate"

# write_eg_cnf FILE KEY=VALUE...: an openssl.cnf that activates the default
# provider and emsguard with these keys (for EMSGUARD_CONF, OPENSSL_CONF, or
# a program's own file).
# (lib.sh write_eg_module_cnf with this script's module)
write_eg_cnf() { write_eg_module_cnf "$1" "$MODULE" "${@:2}"; }

# write_appname_cnf FILE APPNAME KEY=VALUE...: the same under the section
# APPNAME names; openssl_conf (what a program without an appname loads)
# configures nothing.
write_appname_cnf() {
    local file=$1 app=$2
    shift 2
    write_eg_cnf "$file.tmp" "$@"
    {
        echo "openssl_conf = base_init"
        echo "$app = openssl_init"
        echo "[base_init]"
        grep -v '^openssl_conf = ' "$file.tmp"
    } >"$file"
    rm -f "$file.tmp"
}

# ---- 1. a program's own OpenSSL configuration (R2) --------------------------------

# own_server NAME MODE ARG [early]: own_config_server under the preload,
# serving two connections; the environment comes from SRV_ENV (the caller
# adds OPENSSL_CONF and EMSGUARD_CONF).
own_server() {
    local name=$1
    shift
    start_port_server "$name" "$HELPERS/own_config_server" "$1" "$2" "$CERT" "$KEY" 2 "${@:3}"
}

# legacy_then_ems: a legacy s_client then an EMS one, TLS 1.2, against
# SRV_PORT; sets LEGACY_RC and EMS_RC.
legacy_then_ems() {
    sclient "$TMP/$CUR-legacy.txt" "$LEGACY_CNF" -connect 127.0.0.1:"$SRV_PORT" -tls1_2
    LEGACY_RC=$CRC
    sclient "$TMP/$CUR-ems.txt" "$EMS_CNF" -connect 127.0.0.1:"$SRV_PORT" -tls1_2
    EMS_RC=$CRC
}

# expect_require_held: the policy refused the legacy client (conn 1) and
# let the EMS client through (conn 2).
expect_require_held() {
    expect_ne "legacy s_client exit status" "$LEGACY_RC" 0
    expect_eq "EMS s_client exit status" "$EMS_RC" 0
    wait_exit "$SRV_PID"
    expect_eq "own_config_server exit status" "$SRV_RC" 0
    expect_grep "legacy client refused" "^conn 1: failed$" "$SRV_OUT"
    expect_grep "EMS client served with EMS" "^conn 2: ok version=TLSv1\\.2 ems=1$" "$SRV_OUT"
    expect_grep "refusal logged" "reason=ems-required" "$SRV_ERR"
    san_clean "$SRV_ERR"
}

# own_require_case NAME MODE ARG OPENSSL_CONF [early]: the program's own
# configuration activates emsguard with RequireExtendedMasterSecret=1.
own_require_case() {
    local name=$1 mode=$2 arg=$3 cnf=$4
    shift 4
    begin "$name"
    SRV_ENV=(OPENSSL_CONF="$cnf" "${PRE_ENV[@]}")
    if own_server "$name" "$mode" "$arg" "$@"; then
        artifact "$SRV_OUT" "$SRV_ERR"
        expect_grep "the program's configuration activated emsguard" \
            "^provider emsguard=1$" "$SRV_OUT"
        legacy_then_ems
        expect_require_held
    else
        artifact "$SRV_OUT" "$SRV_ERR"
        err "own_config_server did not start (exit $SRV_RC): $(tail -n 3 "$SRV_ERR" | tr '\n' ' ')"
    fi
    # Contrast: without the preload the provider is active all the same
    # (the TLS1-PRF guard is not selected), and the legacy client completes.
    SRV_ENV=(OPENSSL_CONF="$cnf")
    if own_server "$name-stock" "$mode" "$arg" "$@"; then
        legacy_then_ems
        wait_exit "$SRV_PID"
        expect_grep "contrast (no preload): legacy completes" \
            "^conn 1: ok version=TLSv1\\.2 ems=0$" "$SRV_OUT"
    else
        err "stock own_config_server did not start"
    fi
    end_test
}

# own_bad_value_case NAME MODE ARG OPENSSL_CONF: the program's own
# configuration has an emsguard provider with a bad value; OpenSSL does not
# activate it (and does not say so); the first SSL_CTX_new fails, naming it.
own_bad_value_case() {
    local name=$1 mode=$2 arg=$3 cnf=$4
    begin "$name"
    SRV_ENV=(OPENSSL_CONF="$cnf" "${PRE_ENV[@]}")
    if own_server "$name" "$mode" "$arg"; then
        err "SSL_CTX_new succeeded (port $SRV_PORT): the policy of a provider that failed was replaced by another"
        stop_server "$SRV_PID"
    else
        expect_eq "own_config_server exit status (no SSL_CTX)" "$SRV_RC" 4
    fi
    artifact "$SRV_OUT" "$SRV_ERR"
    expect_grep "the provider did not activate" "^provider emsguard=0$" "$SRV_OUT"
    expect_grep "SSL_CTX_new failed" "^ctx=failed$" "$SRV_OUT"
    expect_grep "the reason names the failed provider" \
        "emsguard provider 'emsguard' failed to activate.*RequireExtendedMasterSecret" "$SRV_ERR"
    san_clean "$SRV_ERR"
    # Contrast: OpenSSL itself goes on without the provider.
    SRV_ENV=(OPENSSL_CONF="$cnf")
    if own_server "$name-stock" "$mode" "$arg"; then
        stop_server "$SRV_PID"
    else
        err "contrast (no preload): stock own_config_server did not start"
    fi
    end_test
}

APP_REQUIRE=$TMP/app-require.cnf
write_eg_cnf "$APP_REQUIRE" RequireExtendedMasterSecret=1
APPNAME_REQUIRE=$TMP/appname-require.cnf
write_appname_cnf "$APPNAME_REQUIRE" myapp RequireExtendedMasterSecret=1
APP_BAD=$TMP/app-bad-value.cnf
write_eg_cnf "$APP_BAD" RequireExtendedMasterSecret=yes
APPNAME_BAD=$TMP/appname-bad-value.cnf
write_appname_cnf "$APPNAME_BAD" myapp RequireExtendedMasterSecret=yes

own_require_case 10-own-file-require "filename" "$APP_REQUIRE" "$EMS_CNF"
own_require_case 11-own-appname-require "appname" myapp "$APPNAME_REQUIRE"
# The program dlopen()s libssl before its own initialisation: the preload
# sets itself up then, and must not make OpenSSL load the default file
# before the program has chosen its own.
own_require_case 12-own-file-require-preload-set-up-early "filename" "$APP_REQUIRE" \
    "$EMS_CNF" early
own_bad_value_case 13-own-file-bad-value "filename" "$APP_BAD" "$EMS_CNF"
own_bad_value_case 14-own-appname-bad-value "appname" myapp "$APPNAME_BAD"

# 15: no configuration of its own: the default file decides, as before.
# Without emsguard there, the built-in defaults (the legacy client gets a
# full handshake); with emsguard and Require=1 there, the legacy client is
# refused.
begin 15-default-file-unchanged
SRV_ENV=(OPENSSL_CONF="$EMS_CNF" "${PRE_ENV[@]}")
if own_server 15-none default -; then
    artifact "$SRV_OUT" "$SRV_ERR"
    legacy_then_ems
    wait_exit "$SRV_PID"
    expect_grep "no emsguard anywhere: legacy completes (defaults)" \
        "^conn 1: ok version=TLSv1\\.2 ems=0$" "$SRV_OUT"
    expect_grep "no emsguard anywhere: EMS completes" "^conn 2: ok version=TLSv1\\.2 ems=1$" "$SRV_OUT"
    san_clean "$SRV_ERR"
else
    err "own_config_server (no emsguard) did not start: $(tail -n 3 "$SRV_ERR" | tr '\n' ' ')"
fi
SRV_ENV=(OPENSSL_CONF="$APP_REQUIRE" "${PRE_ENV[@]}")
if own_server 15-default-require default -; then
    artifact "$SRV_OUT" "$SRV_ERR"
    legacy_then_ems
    expect_require_held
else
    err "own_config_server (default file with emsguard) did not start: $(tail -n 3 "$SRV_ERR" | tr '\n' ' ')"
fi
end_test

# 16: EMSGUARD_CONF names the policy file: it decides, whatever the program
# loads.  Require=1 there with a program file that has no emsguard; a bad
# value there fails SSL_CTX_new.
begin 16-emsguard-conf-decides
APP_PLAIN=$TMP/app-plain.cnf
cat >"$APP_PLAIN" <<EOF
openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
[provider_sect]
default = default_sect
[default_sect]
activate = 1
EOF
EG_REQUIRE=$TMP/eg-require.cnf
write_eg_cnf "$EG_REQUIRE" RequireExtendedMasterSecret=1
SRV_ENV=(OPENSSL_CONF="$EMS_CNF" EMSGUARD_CONF="$EG_REQUIRE" "${PRE_ENV[@]}")
if own_server 16-require filename "$APP_PLAIN"; then
    artifact "$SRV_OUT" "$SRV_ERR"
    legacy_then_ems
    expect_require_held
else
    err "own_config_server (EMSGUARD_CONF) did not start: $(tail -n 3 "$SRV_ERR" | tr '\n' ' ')"
fi
SRV_ENV=(OPENSSL_CONF="$EMS_CNF" EMSGUARD_CONF="$APP_BAD" "${PRE_ENV[@]}")
if own_server 16-bad filename "$APP_PLAIN"; then
    err "SSL_CTX_new succeeded with a bad value in EMSGUARD_CONF"
    stop_server "$SRV_PID"
else
    expect_eq "own_config_server exit status (no SSL_CTX)" "$SRV_RC" 4
    artifact "$SRV_OUT" "$SRV_ERR"
    expect_grep "the reason names the key" "RequireExtendedMasterSecret" "$SRV_ERR"
fi
end_test

# 17: the default file activates emsguard, but the program loads its own
# file, without emsguard: the policy the default file sets is not in force
# in this process, and the preload says so instead of choosing a policy.
begin 17-default-file-emsguard-not-loaded-by-program
SRV_ENV=(OPENSSL_CONF="$APP_REQUIRE" "${PRE_ENV[@]}")
if own_server 17 filename "$APP_PLAIN"; then
    err "SSL_CTX_new succeeded (port $SRV_PORT)"
    stop_server "$SRV_PID"
else
    expect_eq "own_config_server exit status (no SSL_CTX)" "$SRV_RC" 4
fi
artifact "$SRV_OUT" "$SRV_ERR"
expect_grep "provider not active" "^provider emsguard=0$" "$SRV_OUT"
expect_grep "the reason says the program did not load that file" \
    "is to be activated but is not active in the default library context" "$SRV_ERR"
san_clean "$SRV_ERR"
end_test

# ---- 2. the application's verify and security callbacks (R4) ----------------------

# cb_client NAME EGCONF SETTER [MAXVER [CIPHERS]]: set_cb_client under the
# preload against SRV_PORT; output in $TMP/NAME.txt (stderr: .err); sets
# CRC and OUT.
cb_client() {
    local name=$1 egconf=$2
    shift 2
    OUT=$TMP/$name.txt
    env OPENSSL_CONF="$EMS_CNF" EMSGUARD_CONF="$egconf" "${PRE_ENV[@]}" timeout $TO \
        "$HELPERS/set_cb_client" "$SRV_PORT" "$RSA_CERT" "$@" >"$OUT" 2>"$OUT.err"
    CRC=$?
    artifact "$OUT" "$OUT.err"
    san_clean "$OUT.err"
}

# cb_stock NAME SETTER [MAXVER [CIPHERS]]: the same without the preload.
cb_stock() {
    local name=$1
    shift
    OUT=$TMP/$name-stock.txt
    OPENSSL_CONF=$EMS_CNF timeout $TO "$HELPERS/set_cb_client" "$SRV_PORT" "$RSA_CERT" "$@" \
        >"$OUT" 2>&1
    CRC=$?
    artifact "$OUT"
}

# rsa_server NAME CNF ARGS...: stock s_server with the 2048-bit RSA certificate.
rsa_server() {
    local name=$1 cnf=$2
    shift 2
    SRV_ENV=(OPENSSL_CONF="$cnf")
    start_server "$name" "$OPENSSL" s_server -accept @PORT@ -cert "$RSA_CERT" -key "$RSA_KEY" \
        -www -quiet "$@"
}

EG_PKCS=$TMP/eg-pkcs.cnf
write_eg_cnf "$EG_PKCS" KeyExchangeAlgorithms.PKCS.ClientMinKeyBitLength=3072
EG_DH=$TMP/eg-dh.cnf
write_eg_cnf "$EG_DH" KeyExchangeAlgorithms.Diffie-Hellman.ClientMinKeyBitLength=3072
KEY_TOO_SMALL=66 # X509_V_ERR_EE_KEY_TOO_SMALL

# verify_case NAME SETTER GETTER APP_CALLS: the application asks for
# SSL_VERIFY_PEER with SETTER; the 2048-bit RSA server is refused by PKCS
# ClientMinKeyBitLength=3072, the getter answers GETTER, and the
# application's verify callback ran (APP_CALLS: yes) or was not set (no).
verify_case() {
    local name=$1 setter=$2 getter=$3 app=$4
    begin "$name"
    cb_client "$name" "$EG_PKCS" "$setter"
    expect_eq "set_cb_client exit status" "$CRC" 1
    expect_grep "refused, key too small" "^result failed .*verify_result=$KEY_TOO_SMALL " "$OUT"
    expect_grep "logged" "reason=key-too-small" "$OUT.err"
    expect_grep "the getter gives the application its own" "^get verify=$getter " "$OUT"
    if [ "$app" = yes ]; then
        expect_grep "the application's verify callback consulted" " app_verify=[1-9][0-9]* " "$OUT"
    fi
    cb_stock "$name" "$setter"
    expect_grep "contrast (no preload): connects" "^result ok " "$OUT"
    end_test
}

if rsa_server 20-rsa2048 "$EMS_CNF"; then
    verify_case 20-ctx-set-verify-null ctx-verify-null null no
    verify_case 21-ctx-set-verify-app-cb ctx-verify-app app yes
    verify_case 22-ssl-set-verify-app-cb ssl-verify-app app yes
    # The control: the application re-sets the callback the getter gives.
    verify_case 23-ctx-set-verify-getter-control none null no
    # The application verifies certificates itself and never calls
    # X509_verify_cert() (which calls the verify callback).
    verify_case 28-ctx-cert-verify-callback ctx-cert-verify-app null yes
    stop_server "$SRV_PID"
else
    fail_now 20-rsa2048 "stock RSA s_server did not start"
fi

# security_case NAME SETTER: with RequireExtendedMasterSecret=1, a client
# whose application set its own (permissive) security callback connects with
# TLS 1.2 to an EMS server, is refused by a legacy one, and its callback runs.
security_require_case() {
    local name=$1 setter=$2
    begin "$name"
    if rsa_server "$name-ems" "$EMS_CNF" -tls1_2; then
        cb_client "$name" "$EG_REQUIRE" "$setter"
        expect_eq "set_cb_client exit status" "$CRC" 0
        expect_grep "TLS 1.2 with the EMS server (not held to TLS 1.3)" \
            "^result ok version=TLSv1\\.2 " "$OUT"
        expect_grep "the application's security callback consulted" \
            " app_security=[1-9][0-9]*$" "$OUT"
        expect_grep "the getter gives the application its own" " security=app$" "$OUT"
        expect_nogrep "not held to TLS 1.3" "TLS 1.3 only for this connection" "$OUT.err"
        stop_server "$SRV_PID"
    else
        err "stock EMS s_server did not start"
    fi
    if rsa_server "$name-legacy" "$LEGACY_CNF" -tls1_2; then
        cb_client "$name-legacy" "$EG_REQUIRE" "$setter"
        expect_eq "set_cb_client exit status (legacy server)" "$CRC" 1
        expect_grep "legacy server refused" "^result failed " "$OUT"
        expect_grep "refusal logged" "reason=ems-required" "$OUT.err"
        cb_stock "$name-legacy" "$setter"
        expect_grep "contrast (no preload): connects to the legacy server" \
            "^result ok version=TLSv1\\.2 " "$OUT"
        stop_server "$SRV_PID"
    else
        err "stock legacy s_server did not start"
    fi
    end_test
}

security_require_case 24-ctx-security-cb-require ctx-security-app
security_require_case 25-ssl-security-cb-require ssl-security-app

# dh_case NAME SETTER: Diffie-Hellman ClientMinKeyBitLength=3072 (emsguard's
# security callback) refuses the server's 2048-bit DHE group, whatever
# security callback the application set.
dh_case() {
    local name=$1 setter=$2
    begin "$name"
    cb_client "$name" "$EG_DH" "$setter" 1.2 DHE-RSA-AES128-GCM-SHA256
    expect_eq "set_cb_client exit status" "$CRC" 1
    expect_grep "2048-bit DHE refused" "^result failed " "$OUT"
    expect_grep "the application's security callback consulted" " app_security=[1-9][0-9]*$" "$OUT"
    cb_stock "$name" "$setter" 1.2 DHE-RSA-AES128-GCM-SHA256
    expect_grep "contrast (no preload): connects with DHE" "^result ok version=TLSv1\\.2 " "$OUT"
    end_test
}

if rsa_server 26-dhe "$EMS_CNF" -tls1_2; then
    dh_case 26-ctx-security-cb-dh-min-bits ctx-security-app
    dh_case 27-ssl-security-cb-dh-min-bits ssl-security-app
    stop_server "$SRV_PID"
else
    fail_now 26-dhe "stock DHE s_server did not start"
fi

summary
[ "$NFAIL" -eq 0 ]
