# SPDX-License-Identifier: Apache-2.0
# Shared helpers of the shell integration tests (integration.sh, preload.sh):
# case bookkeeping, expectations, ports and servers, s_client runs.
# Sourced, not run.  The caller sets TMP (scratch directory), TO (client
# timeout, seconds), OPENSSL, and the array SERVER_PIDS (killed by its
# cleanup) before calling anything here.
#
# Every case prints `PASS name`, `FAIL name: details` or `SKIP name: reason`;
# summary prints `N passed, M failed, K skipped`.  A skipped case is never
# counted as passed.

# Debian's python3 (with python3-jsonschema), not whatever python3 is
# first on PATH.
PYTHON=${PYTHON:-/usr/bin/python3}

NPASS=0
NFAIL=0
NSKIP=0
CUR=""
ERRS=()
ARTIFACTS=()

begin() {
    CUR=$1
    ERRS=()
    ARTIFACTS=()
}

# artifact FILE...: shown (tail) when the case fails
artifact() { ARTIFACTS+=("$@"); }

err() { ERRS+=("$*"); }

# expect_eq DESC ACTUAL EXPECTED
expect_eq() {
    [ "$2" = "$3" ] || err "$1: got '$2', want '$3'"
}

# expect_ge DESC ACTUAL MIN
expect_ge() {
    [ "$2" -ge "$3" ] 2>/dev/null || err "$1: got '$2', want >= $3"
}

# expect_ne DESC ACTUAL UNWANTED
expect_ne() {
    [ "$2" != "$3" ] || err "$1: got '$2', want anything else"
}

# expect_grep DESC EXTENDED-REGEX FILE
expect_grep() {
    grep -Eq -- "$2" "$3" 2>/dev/null || err "$1: no line matching /$2/ in $(basename "$3")"
}

# expect_nogrep DESC EXTENDED-REGEX FILE
expect_nogrep() {
    if grep -Eq -- "$2" "$3" 2>/dev/null; then
        err "$1: unexpected line /$2/ in $(basename "$3"): $(grep -Em1 -- "$2" "$3")"
    fi
}

# expect_empty DESC FILE
expect_empty() {
    [ ! -s "$2" ] || err "$1: $(basename "$2") not empty: $(head -c 200 "$2" | tr '\n' ' ')"
}

end_test() {
    local f
    if [ ${#ERRS[@]} -eq 0 ]; then
        echo "PASS $CUR"
        NPASS=$((NPASS + 1))
    else
        local msg="" e
        for e in "${ERRS[@]}"; do
            msg+="${msg:+; }$e"
        done
        echo "FAIL $CUR: $msg"
        NFAIL=$((NFAIL + 1))
    fi
    if [ ${#ERRS[@]} -gt 0 ] || [ "${VERBOSE:-0}" = 1 ]; then
        for f in "${ARTIFACTS[@]}"; do
            [ -f "$f" ] || continue
            echo "    --- $(basename "$f") (last 20 lines)"
            tail -n 20 "$f" | sed 's/^/    | /'
        done
    fi
}

# skip NAME REASON: never counted as passed.
skip() {
    echo "SKIP $1: $2"
    NSKIP=$((NSKIP + 1))
}

# fail_now NAME REASON: a case that cannot even start.
fail_now() {
    begin "$1"
    err "$2"
    end_test
}

summary() {
    echo "$NPASS passed, $NFAIL failed, $NSKIP skipped"
}

# count_prefix FILE PREFIX: lines starting with PREFIX
count_prefix() {
    local n
    n=$(grep -c -- "^$2" "$1" 2>/dev/null) || true
    echo "${n:-0}"
}

# count_re FILE EXTENDED-REGEX: matching lines
count_re() {
    local n
    n=$(grep -Ec -- "$2" "$1" 2>/dev/null) || true
    echo "${n:-0}"
}

write_cnf() {
    cat >"$1" <<EOF
openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
Options = $2
EOF
}

port_listening() {
    if command -v ss >/dev/null 2>&1; then
        ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}

random_port() { echo $((20000 + (RANDOM * 32768 + RANDOM) % 20000)); }

# start_server NAME CMD... ; "@PORT@" in CMD is replaced by a free port.
# Sets SRV_PID, SRV_PORT, SRV_OUT, SRV_ERR.  Environment in SRV_ENV.
SRV_ENV=()
start_server() {
    local name=$1 port i arg
    shift
    SRV_OUT=$TMP/$name.out
    SRV_ERR=$TMP/$name.err
    SRV_PID=""
    SRV_PORT=""
    for _ in 1 2 3 4 5 6 7 8; do
        port=$(random_port)
        port_listening "$port" && continue
        local cmd=()
        for arg in "$@"; do
            cmd+=("${arg//@PORT@/$port}")
        done
        env "${SRV_ENV[@]}" "${cmd[@]}" </dev/null >"$SRV_OUT" 2>"$SRV_ERR" &
        SRV_PID=$!
        SERVER_PIDS+=("$SRV_PID")
        # Bounded wait (10 s) until the port listens or the server dies.
        for ((i = 0; i < 200; i++)); do
            if ! kill -0 "$SRV_PID" 2>/dev/null; then
                break
            fi
            if port_listening "$port"; then
                SRV_PORT=$port
                return 0
            fi
            sleep 0.05
        done
        kill -TERM "$SRV_PID" 2>/dev/null
        wait "$SRV_PID" 2>/dev/null
        # Busy port (someone took it meanwhile): try another; else give up.
        grep -qi "in use" "$SRV_ERR" 2>/dev/null || break
    done
    SRV_PID=""
    return 1
}

# stop_server PID [TICKS]: SIGTERM, bounded wait (TICKS of 0.05 s, default
# 100: 5 s), SIGKILL; sets SRV_RC.
stop_server() {
    local pid=$1 ticks=${2:-100} i
    SRV_RC=""
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < ticks; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    SRV_RC=$?
}

server_up_or_fail() {
    if [ -z "$SRV_PID" ]; then
        err "server $1 did not start: $(tail -n 3 "$SRV_ERR" 2>/dev/null | tr '\n' ' ')"
        return 1
    fi
    return 0
}

# sclient OUT CNF ARGS...: stock s_client, no stdin, bounded; sets CRC.
sclient() {
    local out=$1 cnf=$2
    shift 2
    OPENSSL_CONF=$cnf timeout $TO "$OPENSSL" s_client "$@" </dev/null >"$out" 2>&1
    CRC=$?
    artifact "$out"
}

# sclient_wait OUT CNF ARGS...: stdin open for 1 s, so that s_client reads the
# TLS 1.3 NewSessionTicket messages before it closes (-sess_out).
sclient_wait() {
    local out=$1 cnf=$2
    shift 2
    sleep 1 | OPENSSL_CONF=$cnf timeout $TO "$OPENSSL" s_client "$@" >"$out" 2>&1
    CRC=${PIPESTATUS[1]}
    artifact "$out"
}

# stock_server NAME CNF ARGS...: openssl s_server -www with config CNF.
stock_server() {
    local name=$1 cnf=$2
    shift 2
    SRV_ENV=(OPENSSL_CONF="$cnf")
    start_server "$name" "$OPENSSL" s_server -accept @PORT@ -cert "$CERT" -key "$KEY" \
        -www -quiet "$@"
}

# make_fixtures: a P-256 certificate (CERT, KEY) and the peers' configs.
# Legacy peers (no Extended Master Secret) get LEGACY_CNF, which sets
# `Options = -ExtendedMasterSecret`; EMS peers get EMS_CNF, which makes the
# default explicit so that the machine's own openssl.cnf cannot change it.
make_fixtures() {
    CERT=$TMP/cert.pem
    KEY=$TMP/key.pem
    LEGACY_CNF=$TMP/legacy.cnf
    EMS_CNF=$TMP/ems.cnf
    if ! timeout $TO "$OPENSSL" req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
            -keyout "$KEY" -out "$CERT" -days 2 -nodes -subj /CN=localhost \
            >"$TMP/req.log" 2>&1; then
        cat "$TMP/req.log" >&2
        return 1
    fi
    write_cnf "$LEGACY_CNF" -ExtendedMasterSecret
    write_cnf "$EMS_CNF" ExtendedMasterSecret
}

# ---- processes and scratch files ------------------------------------------------

# descendants_of PID: every process below PID (vsftpd sessions, nginx workers).
descendants_of() {
    local c
    for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
        echo "$c"
        descendants_of "$c"
    done
}

# cleanup_servers [PID...]: the EXIT trap of every script.  Stops
# SERVER_PIDS and the given PIDs, kills what they left behind (collected
# first: once a parent is gone its children belong to init), and removes TMP
# unless KEEP_TMP=1.
cleanup_servers() {
    local p kids=()
    for p in "${SERVER_PIDS[@]}" "$@"; do
        mapfile -t -O "${#kids[@]}" kids < <(descendants_of "$p")
    done
    for p in "${SERVER_PIDS[@]}" "$@"; do
        kill -TERM "$p" 2>/dev/null
    done
    for p in "${SERVER_PIDS[@]}" "$@"; do
        wait "$p" 2>/dev/null
    done
    for p in "${kids[@]}"; do
        kill -KILL "$p" 2>/dev/null
    done
    if [ "${KEEP_TMP:-0}" = 1 ]; then
        echo "kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
}

# san_clean FILE: no sanitizer report from a preloaded process.
san_clean() {
    expect_nogrep "sanitizer report in $(basename "$1")" \
        "AddressSanitizer|LeakSanitizer|runtime error:" "$1"
}

# ---- eg_peer (the caller sets EG, EMS_CNF, CERT, KEY, TO) -----------------------

# counter FILE NAME: an emsguard counter printed by eg_peer at exit
counter() {
    local v
    v=$(awk -v n="$2" '$1 == "counter" && $2 == n { print $3 }' "$1" 2>/dev/null)
    echo "${v:-missing}"
}

# eg_server NAME ARGS...: eg_peer server on a fresh port.
eg_server() {
    local name=$1
    shift
    SRV_ENV=(OPENSSL_CONF="$EMS_CNF")
    start_server "$name" "$EG" server --port @PORT@ --cert "$CERT" --key "$KEY" "$@"
}

# The eg_peer server must exit cleanly on SIGTERM (under ASan this is also
# where leaks would be reported).
check_eg_exit() {
    expect_eq "eg_peer server exit status" "$SRV_RC" 0
}

# egclient OUT ARGS...: eg_peer client, bounded; sets CRC.
egclient() {
    local out=$1
    shift
    OPENSSL_CONF=$EMS_CNF timeout $TO "$EG" client "$@" >"$out" 2>"$out.err"
    CRC=$?
    artifact "$out" "$out.err"
}

# ---- openssl.cnf with the emsguard provider; vsftpd -------------------------

# eg_provider_cnf MODULE: an openssl.cnf (stdout) that activates the default
# provider and emsguard (module MODULE) in [emsguard_sect]; the caller
# appends that section's policy keys.
eg_provider_cnf() {
    cat <<EOF2
openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
[provider_sect]
default = default_sect
emsguard = emsguard_sect
[default_sect]
activate = 1
[emsguard_sect]
module = $1
activate = 1
EOF2
}

# free_port_block COUNT: the first of COUNT free ports (stdout), away from
# random_port's 20000-39999; returns 1 if none was found.
free_port_block() {
    local base p busy
    for _ in 1 2 3 4 5 6 7 8; do
        base=$((40000 + (RANDOM * 32768 + RANDOM) % 9000))
        busy=0
        for ((p = base; p < base + $1; p++)); do
            port_listening "$p" && { busy=1; break; }
        done
        [ "$busy" = 0 ] && { echo "$base"; return 0; }
    done
    return 1
}

# vsftpd_conf ROOT FTP_USER EMPTY_DIR PASV_MIN CERT KEY: (stdout) a standalone
# FTPS vsftpd on 127.0.0.1 (control port: -olisten_port=) for anonymous
# logins chrooted into ROOT, TLS required for logins and data, and data
# connections accepted only if they reuse the control connection's TLS
# session (require_ssl_reuse=YES), with 16 passive ports from PASV_MIN.
# isolate*/seccomp_sandbox off: namespaces and seccomp fail in containers.
# ssl_ciphers: vsftpd's default (DES-CBC3-SHA) has no ECDSA suite.
vsftpd_conf() {
    cat <<EOF2
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
background=NO
anonymous_enable=YES
local_enable=NO
write_enable=NO
no_anon_password=YES
anon_root=$1
ftp_username=$2
nopriv_user=nobody
secure_chroot_dir=$3
pasv_enable=YES
port_enable=NO
pasv_address=127.0.0.1
pasv_min_port=$4
pasv_max_port=$(($4 + 15))
ssl_enable=YES
allow_anon_ssl=YES
force_anon_logins_ssl=YES
force_anon_data_ssl=YES
force_local_logins_ssl=YES
force_local_data_ssl=YES
require_ssl_reuse=YES
ssl_sslv2=NO
ssl_sslv3=NO
ssl_tlsv1=YES
ssl_ciphers=HIGH
rsa_cert_file=$5
rsa_private_key_file=$6
xferlog_enable=YES
xferlog_std_format=NO
log_ftp_protocol=YES
debug_ssl=YES
syslog_enable=NO
seccomp_sandbox=NO
isolate=NO
isolate_network=NO
EOF2
}

# ---- nginx, for the preload scripts ----------------------------------------------

# stop_nginx: stops the nginx master NGX_PID (TERM, then KILL after 5 s) and
# its workers; NGX_RC gets its exit status.  Does nothing without NGX_PID.
stop_nginx() {
    NGX_RC=""
    [ -n "$NGX_PID" ] || return 0
    stop_tree "$NGX_PID" 100
    NGX_RC=$TREE_RC
    NGX_PID=""
}

# nginx_get OUT [S_CLIENT ARGS]: one HTTP GET to nginx on NGX_PORT through an
# EMS s_client (OPENSSL_CONF=EMS_CNF); output in OUT, exit status in CRC.
nginx_get() {
    local out=$1
    shift
    printf 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n' | OPENSSL_CONF=$EMS_CNF timeout $TO \
        "$OPENSSL" s_client -connect 127.0.0.1:"$NGX_PORT" -ign_eof "$@" >"$out" 2>&1
    CRC=$?
    artifact "$out"
}

# ---- shared by the preload_*.sh scripts -----------------------------------------

# prereq_fail MESSAGE: a missing prerequisite fails the script as one test and ends it.
prereq_fail() {
    fail_now 00-prerequisites "$1"
    summary
    exit 1
}

# require_jsonschema: PYTHON has the jsonschema module (the JSON reports are
# checked against their schema); else a prerequisite FAIL.
require_jsonschema() {
    "$PYTHON" -c 'import jsonschema' 2>/dev/null \
        || prereq_fail "python3-jsonschema not installed (.ci/install-deps installs it)"
}

# script_start NAME [EXIT-COMMAND]: what every script does first, once it has
# sourced this file from $HERE (test/, bench/ or demo/): ROOT (the source
# tree), BDIR (BUILD, default build, below ROOT unless absolute), PRELOAD,
# TMP (a fresh scratch directory eg-NAME.XXXXXX), and traps: EXIT-COMMAND
# (default cleanup_servers) at exit, exit 130 on a signal.
script_start() {
    BUILD=${BUILD:-build}
    ROOT=$(cd "$HERE/.." && pwd)
    case "$BUILD" in
    /*) BDIR=$BUILD ;;
    *) BDIR=$ROOT/$BUILD ;;
    esac
    PRELOAD=$BDIR/libemsguard-preload.so
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/eg-$1.XXXXXX") || exit 2
    # shellcheck disable=SC2064 # the command is the caller's, run at exit
    trap "${2:-cleanup_servers}" EXIT
    trap 'exit 130' INT TERM HUP
}

# require_preload: the preload and libemsguard.so.0 are built, PRE_ENV is set
# (set_preload_env) and OPENSSL is installed; else a prerequisite FAIL.
require_preload() {
    local f
    for f in "$PRELOAD" "$BDIR/libemsguard.so.0"; do
        [ -e "$f" ] || prereq_fail "$f not built (make $BUILD/libemsguard-preload.so $BUILD/libemsguard.so.0)"
    done
    set_preload_env
    command -v "$OPENSSL" >/dev/null 2>&1 || prereq_fail "openssl not installed (.ci/install-deps)"
}

# write_eg_module_cnf FILE MODULE KEY=VALUE...: an openssl.cnf that activates
# the default provider and emsguard (from MODULE) with these keys.
write_eg_module_cnf() {
    local file=$1 module=$2 kv
    shift 2
    {
        eg_provider_cnf "$module"
        for kv in "$@"; do
            echo "${kv%%=*} = ${kv#*=}"
        done
    } >"$file"
}

# start_port_server NAME CMD...: a helper that binds a free port itself and
# prints `port N`.  Sets SRV_PID, SRV_PORT, SRV_OUT, SRV_ERR; the environment
# comes from SRV_ENV.  Returns 1 if no port line came (the helper's exit
# status is then in SRV_RC).
start_port_server() {
    local name=$1 i
    shift
    SRV_OUT=$TMP/$name.out
    SRV_ERR=$TMP/$name.err
    SRV_PORT=""
    env "${SRV_ENV[@]}" "$@" </dev/null >"$SRV_OUT" 2>"$SRV_ERR" &
    SRV_PID=$!
    SERVER_PIDS+=("$SRV_PID")
    for ((i = 0; i < 200; i++)); do
        SRV_PORT=$(awk '$1 == "port" { print $2; exit }' "$SRV_OUT" 2>/dev/null)
        [ -n "$SRV_PORT" ] && return 0
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.05
    done
    stop_server "$SRV_PID"
    SRV_PID=""
    return 1
}

# wait_exit PID: bounded wait for a server that leaves by itself; sets SRV_RC.
wait_exit() {
    local i
    for ((i = 0; i < 200; i++)); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.05
    done
    stop_server "$1"
}

# set_preload_env: sets ASAN_RT and PRE_ENV (the preload, behind libasan if it
# is linked against it); fails the prerequisites if SANITIZE=1 without libasan.
set_preload_env() {
    ASAN_RT=$(ldd "$PRELOAD" 2>/dev/null | awk '$1 ~ /^libasan\.so/ { print $3; exit }')
    if [ "${SANITIZE:-}" = 1 ] && [ -z "$ASAN_RT" ]; then
        prereq_fail "SANITIZE=1 but $PRELOAD is not linked against libasan"
    fi
    if [ -n "$ASAN_RT" ]; then
        PRE_ENV=(LD_PRELOAD="$ASAN_RT:$PRELOAD" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1)
    else
        PRE_ENV=(LD_PRELOAD="$PRELOAD")
    fi
}

# start_free_port_nginx NAME EGCONF HTTP-DIRECTIVES: nginx in $TMP/NAME on a
# free port (NGX_PORT), serving "served" over TLS with CERT/KEY, preloaded
# (PRE_ENV) with EMSGUARD_CONF=EGCONF unless EGCONF is empty; HTTP-DIRECTIVES
# go into its http block.  Sets NGX_DIR and NGX_PID; 1 if it did not start.
start_free_port_nginx() {
    local name=$1 egconf=$2 directives=$3 i e userline=""
    NGX_DIR=$TMP/$name
    NGX_PID=""
    mkdir -p "$NGX_DIR/logs"
    [ "$(id -u)" = 0 ] && userline="user $(id -un) $(id -gn);"
    e=()
    [ -n "$egconf" ] && e=("${PRE_ENV[@]}" EMSGUARD_CONF="$egconf")
    for _ in 1 2 3 4 5 6; do
        NGX_PORT=$(random_port)
        port_listening "$NGX_PORT" && continue
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
    access_log $NGX_DIR/logs/access.log;
    ssl_certificate $CERT;
    ssl_certificate_key $KEY;
    $directives
    server {
        listen 127.0.0.1:$NGX_PORT ssl;
        location / { return 200 "served\n"; }
    }
}
EOF
        : >"$NGX_DIR/logs/error.log"
        env OPENSSL_CONF="$EMS_CNF" "${e[@]}" "$NGINX" -p "$NGX_DIR" -c "$NGX_DIR/nginx.conf" \
            -e "$NGX_DIR/logs/error.log" </dev/null >"$NGX_DIR/stdout" 2>"$NGX_DIR/stderr" &
        NGX_PID=$!
        NGINX_PIDS+=("$NGX_PID")
        for ((i = 0; i < 200; i++)); do
            kill -0 "$NGX_PID" 2>/dev/null || break
            port_listening "$NGX_PORT" && return 0
            sleep 0.05
        done
        stop_nginx
        grep -qi "in use" "$NGX_DIR/logs/error.log" "$NGX_DIR/stderr" 2>/dev/null || break
    done
    NGX_PID=""
    return 1
}

# ---- fleets: memcached, Apache httpd (mod_ssl), HAProxy -------------------------
# Daemon starters of test/fleet_apache.sh and test/fleet_haproxy.sh, for any
# script that needs one of these servers.  Each runs in the foreground as a
# child of the script, with a throwaway configuration and run directory under
# $TMP/NAME, on 127.0.0.x ports nobody listens on; none reads /etc/apache2,
# /etc/haproxy or /etc/memcached.conf, and no system service is involved.
# The caller sets TMP, CERT, KEY and EMS_CNF (make_fixtures), and, for a
# preloaded daemon, PRELOAD and PRE_ENV (set_preload_env).  Binaries:
# MEMCACHED (default memcached), APACHE (default /usr/sbin/apache2),
# APACHE_MODULES (default /usr/lib/apache2/modules), HAPROXY (default haproxy).

# addr_listening ADDR PORT: a TCP socket listens on exactly ADDR:PORT.
addr_listening() {
    if command -v ss >/dev/null 2>&1; then
        ss -Hltn "sport = :$2" 2>/dev/null | awk -v a="$1:$2" '$4 == a { f = 1 } END { exit !f }'
    else
        (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
    fi
}

# stop_tree PID [TICKS]: stops a daemon that forks workers (Apache, HAProxy,
# nginx): SIGTERM to PID, bounded wait (TICKS of 0.05 s, default 200: 10 s),
# SIGKILL; then SIGKILL to whatever of its children is left.  TREE_RC gets
# PID's exit status.
stop_tree() {
    local pid=$1 i kids srv_rc=${SRV_RC:-}
    TREE_RC=""
    [ -n "$pid" ] || return 0
    kids=$(descendants_of "$pid")
    stop_server "$pid" "${2:-200}"
    # SRV_RC stays the caller's: it may still hold another server's status.
    TREE_RC=$SRV_RC SRV_RC=$srv_rc
    for i in $kids; do
        kill -KILL "$i" 2>/dev/null
    done
}

# start_memcached NAME: a memcached on a free 127.0.0.1 port, TCP only,
# 16 MB, one thread (as root it runs as user nobody).  Sets MC_PORT and
# MC_PID (also in SERVER_PIDS, so cleanup_servers stops it); returns 1 if it
# did not start (SRV_ERR says why).
start_memcached() {
    local user=()
    [ "$(id -u)" = 0 ] && user=(-u nobody)
    SRV_ENV=()
    MC_PORT="" MC_PID=""
    start_server "$1" "${MEMCACHED:-memcached}" -l 127.0.0.1 -p @PORT@ -U 0 -m 16 -t 1 \
        "${user[@]}" || return 1
    MC_PORT=$SRV_PORT MC_PID=$SRV_PID
}

# memcached_cmd PORT COMMAND: one text-protocol command to the memcached on
# 127.0.0.1:PORT; prints the reply lines up to (without) END.  1 if no
# connection.
memcached_cmd() {
    local fd line
    exec {fd}<>"/dev/tcp/127.0.0.1/$1" || return 1
    printf '%s\r\n' "$2" >&"$fd"
    while IFS= read -r -t 5 line <&"$fd"; do
        line=${line%$'\r'}
        [ "$line" = END ] && break
        echo "$line"
        case $line in
        ERROR* | CLIENT_ERROR* | SERVER_ERROR* | OK | RESET) break ;;
        esac
    done
    exec {fd}>&-
}

# memcached_stat PORT NAME: one value of `stats` (cmd_set, get_hits,
# get_misses, curr_items...); "missing" if memcached did not answer.
memcached_stat() {
    local v
    v=$(memcached_cmd "$1" stats | awk -v n="$2" '$1 == "STAT" && $2 == n { print $3 }')
    echo "${v:-missing}"
}

# memcached_keys PORT: every key memcached holds, one a line (URL-encoded, as
# `lru_crawler metadump all` prints them).  mod_ssl's sessions are
# mod_ssl-sess%3A<session ID in lower-case hex>.
memcached_keys() {
    memcached_cmd "$1" "lru_crawler metadump all" | sed -n 's/^key=\([^ ]*\) .*/\1/p'
}

# apache_tls_conf DIR ADDR PORT DIRECTIVES: (stdout) an httpd.conf of its own
# for Apache 2.4 with ServerRoot, run directory, pid file and logs in DIR:
# APACHE_MPM (prefork, default, or event) with APACHE_PROCS server processes
# (default 2), mod_ssl on ADDR:PORT with CERT/KEY, DIRECTIVES at server level
# (SSLSessionCache, SSLSessionTickets, SSLSessionTicketKeyFile, ...).  The
# access log (DIR/access.log) has one line per request:
#   PID PROTOCOL Initial|Resumed SESSION-ID "REQUEST" STATUS
# (PID: the worker process that served it).  As root the workers run as
# www-data (else nobody); everything they need was opened before.
apache_tls_conf() {
    local dir=$1 addr=$2 port=$3 directives=$4 mods=${APACHE_MODULES:-/usr/lib/apache2/modules}
    local procs=${APACHE_PROCS:-2} mpm=${APACHE_MPM:-prefork} user
    echo "ServerRoot $dir"
    echo "DefaultRuntimeDir $dir"
    echo "PidFile $dir/httpd.pid"
    echo "LoadModule mpm_${mpm}_module $mods/mod_mpm_$mpm.so"
    echo "LoadModule authz_core_module $mods/mod_authz_core.so"
    echo "LoadModule socache_shmcb_module $mods/mod_socache_shmcb.so"
    echo "LoadModule socache_memcache_module $mods/mod_socache_memcache.so"
    echo "LoadModule ssl_module $mods/mod_ssl.so"
    if [ "$(id -u)" = 0 ]; then
        user=nobody
        getent passwd www-data >/dev/null 2>&1 && user=www-data
        echo "User $user"
        echo "Group $(id -gn "$user")"
    fi
    if [ "$mpm" = prefork ]; then
        echo "StartServers $procs"
        echo "MinSpareServers $procs"
        echo "MaxSpareServers $procs"
        echo "MaxRequestWorkers $((procs * 4))"
    else
        echo "StartServers $procs"
        echo "ServerLimit $procs"
        echo "ThreadsPerChild 4"
        echo "MinSpareThreads 4"
        echo "MaxSpareThreads $((procs * 4))"
        echo "MaxRequestWorkers $((procs * 4))"
    fi
    cat <<EOF2
ServerName localhost
Listen $addr:$port
ErrorLog $dir/error.log
LogLevel warn
LogFormat "%P %{SSL_PROTOCOL}x %{SSL_SESSION_RESUMED}x %{SSL_SESSION_ID}x \"%r\" %>s" fleet
CustomLog $dir/access.log fleet
$directives
<VirtualHost $addr:$port>
    ServerName localhost
    SSLEngine on
    SSLCertificateFile $CERT
    SSLCertificateKeyFile $KEY
    <Location />
        Require all granted
    </Location>
</VirtualHost>
EOF2
}

# egconf_env EGCONF: EG_ENV (array), a daemon's environment: OPENSSL_CONF=
# EMS_CNF; EGCONF empty: nothing more (stock); "-": preloaded (PRE_ENV) with
# the process's own policy; a file: preloaded with EMSGUARD_CONF=EGCONF.
egconf_env() {
    EG_ENV=(OPENSSL_CONF="$EMS_CNF")
    if [ "$1" = - ]; then
        EG_ENV+=("${PRE_ENV[@]}")
    elif [ -n "$1" ]; then
        EG_ENV+=("${PRE_ENV[@]}" EMSGUARD_CONF="$1")
    fi
}

# start_apache_tls NAME ADDR PORT EGCONF [DIRECTIVES]: Apache httpd in the
# foreground (-DFOREGROUND) with apache_tls_conf's configuration in $TMP/NAME,
# OPENSSL_CONF=EMS_CNF.  PORT empty: a free port (APX_PORT says which).
# EGCONF empty: stock; "-": preloaded (PRE_ENV) with the process's own
# policy; a file: preloaded with EMSGUARD_CONF=EGCONF.  APACHE_ENV (array)
# adds environment (EMSGUARD_DEBUG=1, ...).  Apache writes its stderr, and so
# emsguard's lines, into APX_ERROR.  Sets APX_DIR, APX_PID (in SERVER_PIDS),
# APX_PORT, APX_ACCESS, APX_ERROR; returns 1 if ADDR:PORT did not listen
# within 20 s.  Stop it with stop_tree "$APX_PID".
start_apache_tls() {
    local name=$1 addr=$2 port=$3 egconf=$4 directives=${5:-} i e
    APX_DIR=$TMP/$name
    APX_ACCESS=$APX_DIR/access.log
    APX_ERROR=$APX_DIR/error.log
    APX_PID=""
    APX_PORT=""
    mkdir -p "$APX_DIR"
    egconf_env "$egconf"
    e=("${EG_ENV[@]}")
    for _ in 1 2 3 4 5 6; do
        APX_PORT=${port:-$(random_port)}
        if [ -z "$port" ] && port_listening "$APX_PORT"; then
            continue
        fi
        apache_tls_conf "$APX_DIR" "$addr" "$APX_PORT" "$directives" >"$APX_DIR/httpd.conf"
        : >"$APX_ERROR"
        : >"$APX_ACCESS"
        # setsid: at shutdown Apache signals its whole process group
        # (prefork: killpg(getpgrp(), SIGTERM)), which would otherwise be the
        # test script's.  Not a group leader here, so setsid keeps the PID.
        setsid env "${e[@]}" ${APACHE_ENV[@]+"${APACHE_ENV[@]}"} "${APACHE:-/usr/sbin/apache2}" -d "$APX_DIR" \
            -f "$APX_DIR/httpd.conf" -DFOREGROUND \
            </dev/null >"$APX_DIR/stdout" 2>"$APX_DIR/stderr" &
        APX_PID=$!
        SERVER_PIDS+=("$APX_PID")
        for ((i = 0; i < 400; i++)); do
            kill -0 "$APX_PID" 2>/dev/null || break
            addr_listening "$addr" "$APX_PORT" && return 0
            sleep 0.05
        done
        stop_tree "$APX_PID"
        APX_PID=""
        [ -z "$port" ] || break
        grep -qi "in use" "$APX_ERROR" "$APX_DIR/stderr" 2>/dev/null || break
    done
    return 1
}

# start_haproxy_tls NAME EGCONF [BIND-OPTIONS] [FRONTEND-LINES]: HAProxy in
# the foreground (-db) with a configuration of its own in $TMP/NAME: one
# frontend on a free 127.0.0.1 port (HAP_PORT) that terminates TLS
# (`bind ... ssl crt` CERT+KEY, then BIND-OPTIONS, e.g. `tls-ticket-keys
# FILE` or `no-tls-tickets`) and answers every HTTP request itself with 200
# "served".  EGCONF as for start_apache_tls; HAPROXY_ENV (array) adds
# environment.  HAProxy logs one line per request to its stderr (HAP_LOG,
# shared with emsguard's lines):
#   fleet CLIENT PROTOCOL resumed=0|1 sid=SESSION-ID "REQUEST" STATUS
# Sets HAP_DIR, HAP_PID (in SERVER_PIDS), HAP_PORT, HAP_LOG; returns 1 if it
# did not listen within 20 s.  Stop it with stop_tree "$HAP_PID".
start_haproxy_tls() {
    local name=$1 egconf=$2 bindopts=${3:-} lines=${4:-} i e
    HAP_DIR=$TMP/$name
    HAP_LOG=$HAP_DIR/stderr
    HAP_PID=""
    HAP_PORT=""
    mkdir -p "$HAP_DIR"
    cat "$CERT" "$KEY" >"$HAP_DIR/crt.pem"
    egconf_env "$egconf"
    e=("${EG_ENV[@]}")
    for _ in 1 2 3 4 5 6; do
        HAP_PORT=$(random_port)
        port_listening "$HAP_PORT" && continue
        cat >"$HAP_DIR/haproxy.cfg" <<EOF2
global
    nbthread 2
    log stderr format raw local0 info
defaults
    mode http
    log global
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend fleet
    bind 127.0.0.1:$HAP_PORT ssl crt $HAP_DIR/crt.pem $bindopts
    log-format "fleet %ci %[ssl_fc_protocol] resumed=%[ssl_fc_is_resumed] sid=%[ssl_fc_session_id,hex] %{+Q}r %ST"
    http-request return status 200 content-type text/plain string "served"
$lines
EOF2
        env "${e[@]}" ${HAPROXY_ENV[@]+"${HAPROXY_ENV[@]}"} "${HAPROXY:-haproxy}" -db -f "$HAP_DIR/haproxy.cfg" \
            </dev/null >"$HAP_DIR/stdout" 2>"$HAP_LOG" &
        HAP_PID=$!
        SERVER_PIDS+=("$HAP_PID")
        for ((i = 0; i < 400; i++)); do
            kill -0 "$HAP_PID" 2>/dev/null || break
            addr_listening 127.0.0.1 "$HAP_PORT" && return 0
            sleep 0.05
        done
        stop_tree "$HAP_PID"
        HAP_PID=""
        grep -qi "in use" "$HAP_LOG" 2>/dev/null || break
    done
    return 1
}

# expect_asan_mapped DESC PID: under a sanitizer build (ASAN_RT set by
# set_preload_env), the preloaded daemon PID really runs with libasan.
expect_asan_mapped() {
    [ -n "${ASAN_RT:-}" ] || return 0
    grep -q "libasan" "/proc/$2/maps" 2>/dev/null || err "$1: libasan not mapped in pid $2"
}
