#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Schannel-mapped values against programs that configure their SSL_CTX after
# SSL_CTX_new(), where libemsguard-preload.so enables the policy (issue 15,
# "no silent weakening"), over real TCP on 127.0.0.1:
#
#   60a  stock nginx with `ssl_protocols TLSv1.2 TLSv1.3; ssl_ciphers ALL;`
#        (the contrast: TLS 1.2 and the AES-128 suites are served)
#   60b  the same nginx, preloaded with a .reg that disables TLS 1.2 (server
#        and client: the same settings for both roles, so they go on the
#        SSL_CTX, where nginx overwrites them) and AES 128: a TLS 1.2 client is refused, TLS_AES_128_GCM_SHA256
#        cannot be negotiated, TLS 1.3 with AES-256 is served, and the error
#        log says once that nginx's settings were overridden
#   60c  nginx preloaded with a .reg that disables AES 128 only, a one-minute
#        ServerCacheTime and MaximumCacheSize=0, against nginx's
#        `ssl_session_timeout 1d; ssl_session_cache shared:...`: TLS 1.2 AES-128
#        suites cannot be negotiated, the ticket lifetime is 60 s, session IDs
#        do not resume
#   60d  openssl s_server (which calls SSL_CTX_set_dh_auto after SSL_CTX_new)
#        preloaded with ServerMinKeyBitLength=3072: DHE uses a 3072-bit group
#
#   BUILD=build SANITIZE= bash test/preload_schannel.sh
#   BUILD=build-san SANITIZE=1 bash test/preload_schannel.sh
#
# Conventions as in test/preload_paths.sh (`PASS`/`FAIL`/`SKIP` per case; a
# missing peer is a FAIL).  Environment: BUILD, SANITIZE, OPENSSL, NGINX,
# KEEP_TMP=1.
set -u

BUILD=${BUILD:-build}
OPENSSL=${OPENSSL:-openssl}
NGINX=${NGINX:-nginx}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
case "$BUILD" in
/*) BDIR=$BUILD ;;
*) BDIR=$ROOT/$BUILD ;;
esac
PRELOAD=$BDIR/libemsguard-preload.so

TO=20
SERVER_PIDS=()
NGINX_PIDS=()
# shellcheck source=test/lib.sh
. "$HERE/lib.sh"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/eg-preload-schannel.XXXXXX") || exit 2
trap 'cleanup_servers "${NGINX_PIDS[@]}"' EXIT
trap 'exit 130' INT TERM HUP

for f in "$PRELOAD" "$BDIR/libemsguard.so.0"; do
    [ -e "$f" ] || prereq_fail "$f not built (make all)"
done
set_preload_env
command -v "$OPENSSL" >/dev/null 2>&1 || prereq_fail "required tool '$OPENSSL' not installed"
if ! command -v "$NGINX" >/dev/null 2>&1; then
    [ -x /usr/sbin/nginx ] || prereq_fail "required peer nginx not installed"
    NGINX=/usr/sbin/nginx
fi
make_fixtures || prereq_fail "cannot make a certificate"
RSA_CERT=$TMP/rsa-cert.pem
RSA_KEY=$TMP/rsa-key.pem
timeout $TO "$OPENSSL" req -x509 -newkey rsa:2048 -keyout "$RSA_KEY" -out "$RSA_CERT" \
    -days 2 -nodes -subj /CN=localhost >"$TMP/rsa-req.log" 2>&1 || prereq_fail "cannot make an RSA certificate"

# write_reg FILE [KEY-PATH NAME=DWORD]...: a regedit export (UTF-8), every
# key under HKLM\...\SCHANNEL.
write_reg() {
    local file=$1
    shift
    {
        printf 'Windows Registry Editor Version 5.00\r\n\r\n'
        while [ $# -ge 2 ]; do
            printf '[HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL%s]\r\n' "$1"
            printf '"%s"=dword:%08x\r\n\r\n' "${2%%=*}" "${2#*=}"
            shift 2
        done
    } >"$file"
}

# write_eg_cnf FILE KEY=VALUE...: an emsguard section for EMSGUARD_CONF.
# (lib.sh write_eg_module_cnf with this script's module)
write_eg_cnf() { write_eg_module_cnf "$1" emsguard.so "${@:2}"; }

# ---- nginx --------------------------------------------------------------------------

NGX_DIR=""
NGX_PID=""
# start_nginx NAME EGCONF EXTRA-DIRECTIVES: nginx with `ssl_protocols TLSv1.2
# TLSv1.3; ssl_ciphers ALL;` (its own settings, applied after SSL_CTX_new),
# preloaded with EGCONF unless it is empty.
start_nginx() {
    start_free_port_nginx "$1" "$2" "ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers ALL;
    $3"
}
# nginx_get OUT ARGS...: one HTTP request with a stock EMS s_client; sets CRC.
# nginx_served DESC OUT ARGS...: the request is answered.
nginx_served() {
    local desc=$1 out=$2
    shift 2
    nginx_get "$out" "$@"
    expect_eq "$desc: exit status" "$CRC" 0
    expect_grep "$desc: served" "^served$" "$out"
}
# nginx_refused DESC OUT ARGS...: the handshake fails, nothing is served.
nginx_refused() {
    local desc=$1 out=$2
    shift 2
    nginx_get "$out" "$@"
    expect_ne "$desc: exit status" "$CRC" 0
    expect_nogrep "$desc: nothing served" "^served$" "$out"
}
# nginx_healthy: after stop_nginx, a clean exit and a clean log.
nginx_healthy() {
    expect_eq "nginx exit status (fast shutdown)" "$NGX_RC" 0
    expect_nogrep "nginx error log: emerg/alert/crit" "\\[(emerg|alert|crit)\\]" "$NGX_DIR/logs/error.log"
    expect_nogrep "nginx error log: a worker died" "exited on signal" "$NGX_DIR/logs/error.log"
    san_clean "$NGX_DIR/stderr"
    san_clean "$NGX_DIR/logs/error.log"
}

begin 60a-nginx-stock-protocols-ciphers
if start_nginx 60a "" ""; then
    artifact "$NGX_DIR/logs/error.log"
    nginx_served "stock: TLS 1.2" "$TMP/60a-12.txt" -tls1_2
    nginx_served "stock: TLS 1.2 AES-128" "$TMP/60a-aes128.txt" -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256
    nginx_served "stock: TLS 1.3 AES-128" "$TMP/60a-13.txt" -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256
    stop_nginx
else
    err "stock nginx did not start: $(tail -n 3 "$NGX_DIR/logs/error.log" 2>/dev/null | tr '\n' ' ')"
fi
end_test

begin 60b-nginx-reg-no-tls12-no-aes128
REG_B=$TMP/60b.reg
write_reg "$REG_B" "" EventLogging=3 "\\Protocols\\TLS 1.2\\Server" Enabled=0 \
    "\\Protocols\\TLS 1.2\\Client" Enabled=0 "\\Ciphers\\AES 128/128" Enabled=0
write_eg_cnf "$TMP/60b.cnf" "PolicyFile=$REG_B"
artifact "$REG_B"
if start_nginx 60b "$TMP/60b.cnf" ""; then
    artifact "$NGX_DIR/logs/error.log" "$NGX_DIR/stderr"
    nginx_refused "TLS 1.2 client (TLS 1.2 disabled, nginx allows it)" "$TMP/60b-12.txt" -tls1_2
    nginx_refused "TLS_AES_128_GCM_SHA256 only (AES 128 disabled, nginx's list has it)" \
        "$TMP/60b-aes128.txt" -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256
    nginx_served "TLS 1.3 client" "$TMP/60b-13.txt" -tls1_3
    expect_grep "TLS 1.3, AES-256 first" "^New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384" "$TMP/60b-13.txt"
    nginx_served "TLS 1.3 client preferring AES-128" "$TMP/60b-13pref.txt" -tls1_3 \
        -ciphersuites TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256
    expect_grep "AES-128 skipped" "^New, TLSv1.3, Cipher is TLS_CHACHA20_POLY1305_SHA256" "$TMP/60b-13pref.txt"
    stop_nginx
    nginx_healthy
    expect_eq "warning: nginx's protocol range overridden (once)" \
        "$(cat "$NGX_DIR/logs/error.log" "$NGX_DIR/stderr" | count_re /dev/stdin 'emsguard.*warning.*protocol range')" 1
else
    err "preloaded nginx did not start: $(tail -n 3 "$NGX_DIR/logs/error.log" "$NGX_DIR/stderr" 2>/dev/null | tr '\n' ' ')"
fi
end_test

begin 60c-nginx-reg-no-aes128-cache-limits
REG_C=$TMP/60c.reg
write_reg "$REG_C" "" EventLogging=3 "" ServerCacheTime=60000 "" MaximumCacheSize=0 \
    "\\Ciphers\\AES 128/128" Enabled=0
write_eg_cnf "$TMP/60c.cnf" "PolicyFile=$REG_C"
artifact "$REG_C"
if start_nginx 60c "$TMP/60c.cnf" "ssl_session_timeout 1d; ssl_session_cache shared:EG:1m;"; then
    artifact "$NGX_DIR/logs/error.log" "$NGX_DIR/stderr"
    nginx_refused "TLS 1.2 AES-128 suite only (AES 128 disabled)" "$TMP/60c-aes128.txt" \
        -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256
    nginx_served "TLS 1.2 AES-256 suite" "$TMP/60c-aes256.txt" -tls1_2 -cipher ECDHE-ECDSA-AES256-GCM-SHA384
    expect_grep "ServerCacheTime 60 s, not nginx's day" \
        "TLS session ticket lifetime hint: 60 \\(seconds\\)" "$TMP/60c-aes256.txt"
    out=$TMP/60c-ids.txt
    sclient "$out" "$EMS_CNF" -connect 127.0.0.1:"$NGX_PORT" -tls1_2 -reconnect -no_ticket
    expect_eq "session IDs: exit status" "$CRC" 0
    expect_eq "MaximumCacheSize=0, nginx's shared cache: Reused lines" "$(count_prefix "$out" Reused,)" 0
    stop_nginx
    nginx_healthy
else
    err "preloaded nginx did not start: $(tail -n 3 "$NGX_DIR/logs/error.log" "$NGX_DIR/stderr" 2>/dev/null | tr '\n' ' ')"
fi
end_test

# ---- s_server: SSL_CTX_set_dh_auto after SSL_CTX_new -----------------------------------

begin 60d-s_server-dh-auto-vs-server-min-key-bits
write_eg_cnf "$TMP/60d.cnf" "KeyExchangeAlgorithms.Diffie-Hellman.ServerMinKeyBitLength=3072"
SRV_ENV=(OPENSSL_CONF="$EMS_CNF" EMSGUARD_CONF="$TMP/60d.cnf" "${PRE_ENV[@]}")
if start_server 60d-s_server "$OPENSSL" s_server -accept @PORT@ -cert "$RSA_CERT" -key "$RSA_KEY" \
        -www -quiet; then
    artifact "$SRV_ERR"
    out=$TMP/60d.txt
    sclient "$out" "$EMS_CNF" -connect 127.0.0.1:"$SRV_PORT" -tls1_2 -cipher DHE-RSA-AES256-GCM-SHA384
    expect_eq "DHE handshake: exit status" "$CRC" 0
    expect_grep "ServerMinKeyBitLength=3072: a 3072-bit group" "(Server|Peer) Temp Key: DH, 3072 bits" "$out"
    stop_server "$SRV_PID"
    san_clean "$SRV_ERR"
else
    server_up_or_fail 60d-s_server
fi
SRV_ENV=(OPENSSL_CONF="$EMS_CNF")
if start_server 60d-stock "$OPENSSL" s_server -accept @PORT@ -cert "$RSA_CERT" -key "$RSA_KEY" \
        -www -quiet; then
    sclient "$TMP/60d-stock.txt" "$EMS_CNF" -connect 127.0.0.1:"$SRV_PORT" -tls1_2 \
        -cipher DHE-RSA-AES256-GCM-SHA384
    expect_grep "contrast (no preload): dh_auto's 2048-bit group" "(Server|Peer) Temp Key: DH, 2048 bits" \
        "$TMP/60d-stock.txt"
    stop_server "$SRV_PID"
else
    server_up_or_fail 60d-stock
fi
end_test

summary
[ "$NFAIL" -eq 0 ]
