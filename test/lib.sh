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

# stop_server PID: SIGTERM, bounded wait, SIGKILL; sets SRV_RC.
stop_server() {
    local pid=$1 i
    SRV_RC=""
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
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
    local i kids
    NGX_RC=""
    [ -n "$NGX_PID" ] || return 0
    kids=$(descendants_of "$NGX_PID")
    kill -TERM "$NGX_PID" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
        kill -0 "$NGX_PID" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$NGX_PID" 2>/dev/null
    wait "$NGX_PID" 2>/dev/null
    NGX_RC=$?
    for i in $kids; do
        kill -KILL "$i" 2>/dev/null
    done
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
