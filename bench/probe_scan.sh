#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The estate-scan benchmark of `emsguard probe --targets` (docs/probe.md,
# bench/README.md): how many targets per second a scan gets through at a
# realistic round-trip time, for --parallel 1, 4, 16 and 64, and the CPU it
# spends per target.  A benchmark, not a test: it prints numbers and fails
# only if a scan gives wrong results (every target must be probed, half
# compliant, half with findings, no errors).
#
#   make bench-scan                         (BENCH_SCAN_ARGS=--quick: fewer targets)
#   BUILD=build bash bench/probe_scan.sh [--quick]
#
# The estate: two nginx servers (one legacy, OPENSSL_CONF without EMS; one
# with libemsguard-preload.so), each behind a scan_relay (bench/scan_relay.c)
# that holds every chunk 25 ms in each direction (50 ms round trip; the
# kernel has no netem qdisc) and listens on 16 addresses of 127.0.0.0/8
# each.  The targets file lists those 32 addresses, round robin, until it
# has N lines: the same two servers many times over, as an estate of one
# configuration would look.  The TCP handshake is not delayed (the kernel
# answers the SYN); each TLS handshake is (2 round trips full, 1 resumed).
#
# Measured per run: wall time -> targets/s; the probe's CPU (user+sys, from
# /usr/bin/time) per target; the servers' and relays' CPU per target (from
# /proc/PID/stat).  Results go to stdout and $BUILD/bench/probe_scan.txt.
# Environment: BUILD, NGINX, OPENSSL, KEEP_TMP=1.
set -u

OPENSSL=${OPENSSL:-openssl}
NGINX=${NGINX:-nginx}
HERE=$(cd "$(dirname "$0")" && pwd)
DELAY_MS=25
QUICK=0
[ "${1:-}" = --quick ] && QUICK=1

TO=20
SERVER_PIDS=()
NGINX_PIDS=()
# shellcheck source=test/lib.sh
. "$HERE/../test/lib.sh"
script_start bench-scan 'cleanup_servers "${NGINX_PIDS[@]}"'
EMSG=$BDIR/tools/emsguard
RELAY=$BDIR/bench/scan_relay
OUT=$BDIR/bench/probe_scan.txt
unset EMSGUARD_CONF EMSGUARD_DEBUG

die() {
    echo "probe_scan.sh: $*" >&2
    exit 2
}

for f in "$EMSG" "$PRELOAD" "$RELAY"; do
    [ -e "$f" ] || die "$f not built (make bench-scan builds it)"
done
command -v "$NGINX" >/dev/null 2>&1 || die "nginx not installed (.ci/install-deps)"
[ -x /usr/bin/time ] || die "/usr/bin/time not installed"
make_fixtures || die "cannot make a certificate"
set_preload_env
EG_CNF=$TMP/eg.cnf
{ eg_provider_cnf emsguard.so; echo "EventLogging = 0"; } >"$EG_CNF"

# nginx_up NAME CNF PRELOADED: nginx (1 worker, 1024 connections, session
# cache and tickets) on a free port NPORT; NPID.
nginx_up() {
    local d=$TMP/$1 i e=(OPENSSL_CONF="$2") userline=""
    [ "$3" = 1 ] && e+=("${PRE_ENV[@]}" EMSGUARD_CONF="$EG_CNF")
    [ "$(id -u)" = 0 ] && userline="user $(id -un) $(id -gn);"
    mkdir -p "$d/logs"
    for _ in 1 2 3 4 5; do
        NPORT=$(random_port)
        port_listening "$NPORT" && continue
        cat >"$d/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $d/nginx.pid;
$userline
error_log $d/logs/error.log warn;
events { worker_connections 1024; }
http {
    client_body_temp_path $d/body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    access_log off;
    ssl_certificate $CERT;
    ssl_certificate_key $KEY;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    server {
        listen 127.0.0.1:$NPORT ssl;
        location / { return 200 "served\n"; }
    }
}
EOF
        env "${e[@]}" "$NGINX" -p "$d" -c "$d/nginx.conf" -e "$d/logs/error.log" \
            </dev/null >"$d/stdout" 2>"$d/stderr" &
        NPID=$!
        NGINX_PIDS+=("$NPID")
        for ((i = 0; i < 200; i++)); do
            kill -0 "$NPID" 2>/dev/null || break
            port_listening "$NPORT" && return 0
            sleep 0.05
        done
        kill -TERM "$NPID" 2>/dev/null
        wait "$NPID" 2>/dev/null
    done
    die "nginx $1 did not start: $(tail -n 3 "$d/logs/error.log" "$d/stderr" 2>/dev/null | tr '\n' ' ')"
}

# relay_up BACKEND_PORT ADDR-PREFIX: scan_relay on 16 addresses
# ADDR-PREFIX.1-16 at a free port RPORT; RPID.
relay_up() {
    local addrs=() a i
    for a in $(seq 1 16); do addrs+=("$2.$a"); done
    for _ in 1 2 3 4 5; do
        RPORT=$(random_port)
        port_listening "$RPORT" && continue
        "$RELAY" "$DELAY_MS" "$1" "$RPORT" "${addrs[@]}" >"$TMP/relay-$RPORT.out" 2>&1 &
        RPID=$!
        SERVER_PIDS+=("$RPID")
        for ((i = 0; i < 100; i++)); do
            grep -q ready "$TMP/relay-$RPORT.out" 2>/dev/null && return 0
            kill -0 "$RPID" 2>/dev/null || break
            sleep 0.05
        done
    done
    die "scan_relay did not start: $(cat "$TMP"/relay-*.out 2>/dev/null | tail -n 2)"
}

# cpu_ticks PID...: utime+stime of these processes and their children (clock ticks)
cpu_ticks() {
    local p t=0 v
    for p in "$@" $(for q in "$@"; do descendants_of "$q"; done); do
        v=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null) && t=$((t + v))
    done
    echo "$t"
}

nginx_up legacy "$LEGACY_CNF" 0
LEG_NGINX=$NPID LEG_NPORT=$NPORT
nginx_up preload "$EMS_CNF" 1
PRE_NGINX=$NPID PRE_NPORT=$NPORT
relay_up "$LEG_NPORT" 127.0.10
LEG_RELAY=$RPID LEG_RPORT=$RPORT
relay_up "$PRE_NPORT" 127.0.20
PRE_RELAY=$RPID PRE_RPORT=$RPORT
SERVERS=("$LEG_NGINX" "$PRE_NGINX" "$LEG_RELAY" "$PRE_RELAY")
HZ=$(getconf CLK_TCK)

# targets N FILE: N lines over the 32 relay addresses, legacy and preloaded
# alternating.
targets() {
    local i
    for ((i = 0; i < $1; i++)); do
        if ((i % 2 == 0)); then
            echo "127.0.10.$((i / 2 % 16 + 1)):$LEG_RPORT"
        else
            echo "127.0.20.$((i / 2 % 16 + 1)):$PRE_RPORT"
        fi
    done >"$2"
}

if [ "$QUICK" = 1 ]; then
    PLAN="1:8 4:32 16:64 64:256"
else
    PLAN="1:16 4:64 16:256 64:1000 256:2000"
fi
ROWS=()
BASE_RATE=""
FAILED=0
echo "emsguard probe --targets: $(nproc) CPUs, ${DELAY_MS} ms per direction (RTT $((2 * DELAY_MS)) ms), $(date -u +%Y-%m-%dT%H:%MZ)"
for step in $PLAN; do
    par=${step%%:*}
    n=${step#*:}
    targets "$n" "$TMP/t-$n.txt"
    s0=$(cpu_ticks "${SERVERS[@]}")
    /usr/bin/time -f "%e %U %S" -o "$TMP/time-$par" \
        "$EMSG" probe --targets "$TMP/t-$n.txt" --json --parallel "$par" \
        >"$TMP/scan-$par.jsonl" 2>"$TMP/scan-$par.err"
    rc=$?
    s1=$(cpu_ticks "${SERVERS[@]}")
    read -r wall usr sys < <(tail -n 1 "$TMP/time-$par")
    summary=$(grep '^summary:' "$TMP/scan-$par.err")
    want="summary: $n of $n targets in .*: $((n / 2)) compliant, $((n - n / 2)) with findings, 0 errors"
    if [ "$rc" != 1 ] || ! grep -Eq -- "$want" <<<"$summary"; then
        echo "  --parallel $par: WRONG RESULT (exit $rc): $summary" >&2
        tail -n 5 "$TMP/scan-$par.err" >&2
        FAILED=1
    fi
    row=$(awk -v n="$n" -v p="$par" -v w="$wall" -v u="$usr" -v s="$sys" \
        -v st="$((s1 - s0))" -v hz="$HZ" -v base="$BASE_RATE" 'BEGIN {
            rate = n / w
            sp = base == "" ? 1 : rate / base
            printf "| %3d | %5d | %6.1f | %6.1f | %6.1fx | %5.1f | %5.1f |",
                p, n, w, rate, sp, (u + s) * 1000 / n, st * 1000 / hz / n
        }')
    [ -z "$BASE_RATE" ] && BASE_RATE=$(awk -v n="$n" -v w="$wall" 'BEGIN { print n / w }')
    ROWS+=("$row")
    echo "$row"
done
{
    echo "emsguard probe --targets, $(nproc) CPUs, RTT $((2 * DELAY_MS)) ms (scan_relay), $(date -u +%Y-%m-%d)"
    echo
    echo "| --parallel | targets | wall s | targets/s | speedup | probe CPU ms/target | servers+relays CPU ms/target |"
    echo "|---:|---:|---:|---:|---:|---:|---:|"
    for r in "${ROWS[@]}"; do echo "$r"; done
} >"$OUT"
echo "table: $OUT"
exit "$FAILED"
