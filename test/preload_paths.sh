#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Paths into libssl that libemsguard-preload.so must cover (issue 15: F4,
# F5, C3), over real TCP on 127.0.0.1 against stock Debian peers:
#
#   2x  the exported symbols are exactly what preload.c interposes, and an
#       application's own ClientHello callback is chained behind emsguard's
#       (RequireExtendedMasterSecret=1 still refuses a legacy client)
#   3x  programs that dlopen libssl (test/preload/dl_client.c): a plugin
#       loaded RTLD_LOCAL (as Python's _ssl), dlsym()/dlvsym() on libssl's
#       handle, RTLD_DEEPBIND, dlmopen, a second copy of libssl.  The policy
#       holds, or the process says loudly (stderr and syslog) that an SSL_CTX
#       escaped it, or SSL_CTX_new fails; never a silent resumption.  Under
#       ASan the cases the sanitizer runtime itself cannot run are SKIPs.
#   4x  Debian's python3 under the preload, as server and as client
#   5x  Schannel-mapped values (one group per case, and the .reg templates
#       through PolicyFile) under the preload: stock s_server and nginx start,
#       serve, and show the setting
#
#   BUILD=build SANITIZE= bash test/preload_paths.sh
#   BUILD=build-san SANITIZE=1 bash test/preload_paths.sh
#
# Conventions as in test/preload.sh (legacy peers: OPENSSL_CONF with
# `Options = -ExtendedMasterSecret`; `PASS`/`FAIL`/`SKIP` per case; a missing
# peer is a FAIL).  Environment: BUILD, SANITIZE, OPENSSL, NGINX, PYTHON
# (default /usr/bin/python3), CC (its preprocessor reads preload.c's list of
# interposed functions), NM, KEEP_TMP=1, VERBOSE=1.
set -u

BUILD=${BUILD:-build}
OPENSSL=${OPENSSL:-openssl}
NGINX=${NGINX:-nginx}
CC=${CC:-cc}
NM=${NM:-nm}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
case "$BUILD" in
/*) BDIR=$BUILD ;;
*) BDIR=$ROOT/$BUILD ;;
esac
PRELOAD=$BDIR/libemsguard-preload.so
HELPERS=$BDIR/test/preload
PLUGIN=$HELPERS/libegdlplugin.so

TO=20
SERVER_PIDS=()
NGINX_PIDS=()
# shellcheck source=test/lib.sh
. "$HERE/lib.sh"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/eg-preload-paths.XXXXXX") || exit 2
trap 'cleanup_servers "${NGINX_PIDS[@]}"' EXIT
trap 'exit 130' INT TERM HUP

# ---- prerequisites ------------------------------------------------------------

for f in "$PRELOAD" "$BDIR/libemsguard.so.0" "$BDIR/provider/preload.o" \
    "$HELPERS/hello_server" "$HELPERS/dl_client" "$HELPERS/dl_client_rp" "$PLUGIN"; do
    [ -e "$f" ] || prereq_fail "$f not built (make tests)"
done
set_preload_env
for tool in "$OPENSSL" "$PYTHON" "$CC" "$NM"; do
    command -v "$tool" >/dev/null 2>&1 || prereq_fail "required tool '$tool' not installed"
done
if ! command -v "$NGINX" >/dev/null 2>&1; then
    [ -x /usr/sbin/nginx ] || prereq_fail "required peer nginx not installed"
    NGINX=/usr/sbin/nginx
fi
make_fixtures || prereq_fail "cannot make a certificate"
# An RSA certificate next to the P-256 one (s_server -dcert): DHE-RSA suites.
RSA_CERT=$TMP/rsa-cert.pem
RSA_KEY=$TMP/rsa-key.pem
timeout $TO "$OPENSSL" req -x509 -newkey rsa:2048 -keyout "$RSA_KEY" -out "$RSA_CERT" \
    -days 2 -nodes -subj /CN=localhost >"$TMP/rsa-req.log" 2>&1 || prereq_fail "cannot make an RSA certificate"

# write_eg_cnf FILE KEY=VALUE...: an emsguard section for EMSGUARD_CONF.
# (lib.sh write_eg_module_cnf with this script's module)
write_eg_cnf() { write_eg_module_cnf "$1" emsguard.so "${@:2}"; }

# The loud message of an SSL_CTX made behind the preload's back, and the one
# for libssl in a dlmopen() namespace; on stderr and (through dl_client's
# syslog()) in the system log.
ESCAPED_RE='^emsguard-preload: error: an SSL_CTX was made without passing through this library .*the emsguard policy is NOT applied to it'
ESCAPED_SYSLOG_RE='^syslog: <[0-9]+> emsguard-preload: error: an SSL_CTX was made without passing through this library'
NAMESPACE_RE='^emsguard-preload: error: libssl\.so\.3 in link-map namespace [0-9]+ \(dlmopen\) is out of this library.s reach; SSL_CTXs made there get no emsguard policy'
NAMESPACE_SYSLOG_RE='^syslog: <[0-9]+> emsguard-preload: error: libssl\.so\.3 in link-map namespace'
MIXED_RE='^emsguard-preload: error: SSL_CTX_new\(\) called with a method of .*/other/libssl\.so\.3, another libssl than .*libssl\.so\.3: refused'
MIXED_SYSLOG_RE='^syslog: <[0-9]+> emsguard-preload: error: SSL_CTX_new\(\) called with a method of '

# ---- 2. exported symbols, the application's ClientHello callback (F4) --------

# 20: what libemsguard-preload.so exports (nm -D), what preload.o defines
# globally, and the list preload.c keeps (PRELOAD_INTERPOSED, read with the
# preprocessor) are the same set, and each name is a function of libssl or
# libc.  A function interposed in preload.c but missing from preload.map
# (F4: SSL_CTX_set_client_hello_cb) is never reached, and nothing else says so.
begin 20-exports-match-interposed
exported=$TMP/20-exported.txt
defined=$TMP/20-defined.txt
listed=$TMP/20-listed.txt
"$NM" -D --defined-only "$PRELOAD" | awk '$2 ~ /^[TW]$/ { print $3 }' | sort -u >"$exported"
"$NM" -g --defined-only "$BDIR/provider/preload.o" | awk '$2 ~ /^[TW]$/ { print $3 }' | sort -u >"$defined"
# shellcheck disable=SC2046
"$CC" -E -dM -D_GNU_SOURCE -I"$ROOT/include" -I"$ROOT/provider" \
    $(pkg-config --cflags libssl 2>/dev/null) "$ROOT/provider/preload.c" 2>"$TMP/20-cpp.err" \
    | sed -n 's/^#define PRELOAD_INTERPOSED(X) //p' | grep -oE '\bX\([A-Za-z_0-9]+[,)]' \
    | sed 's/^X(\(.*\).$/\1/' | sort -u >"$listed"
artifact "$exported" "$defined" "$listed" "$TMP/20-cpp.err"
[ -s "$exported" ] || err "nm -D shows no exported function"
[ -s "$listed" ] || err "preload.c has no PRELOAD_INTERPOSED(X) list"
d=$(comm -3 "$defined" "$exported" | tr -s ' \t\n' ' ')
[ -z "$d" ] || err "defined in preload.o but not exported, or the reverse: $d"
d=$(comm -3 "$listed" "$exported" | tr -s ' \t\n' ' ')
[ -z "$d" ] || err "PRELOAD_INTERPOSED and the exports differ: $d"
LIBSSL_SO=$(ldd "$HELPERS/hello_server" | awk '$1 ~ /^libssl\.so/ { print $3; exit }')
LIBC_SO=$(ldd "$HELPERS/hello_server" | awk '$1 ~ /^libc\.so/ { print $3; exit }')
"$NM" -D --defined-only "$LIBSSL_SO" "$LIBC_SO" 2>/dev/null | awk '{ sub(/@.*/, "", $3); print $3 }' \
    | sort -u >"$TMP/20-libs.txt"
d=$(comm -23 "$exported" "$TMP/20-libs.txt" | tr -s ' \t\n' ' ')
[ -z "$d" ] || err "exported but neither in $LIBSSL_SO nor in $LIBC_SO: $d"
end_test

# 21: an application that sets its own ClientHello callback after
# SSL_CTX_new (hello_server.c, linked against libssl only), under the
# preload with RequireExtendedMasterSecret=1: the legacy client is refused,
# the EMS client completes, and the application's callback ran both times.
begin 21-app-client-hello-cb-chained
EG_REQUIRE=$TMP/eg-require.cnf
write_eg_cnf "$EG_REQUIRE" RequireExtendedMasterSecret=1
SRV_ENV=(OPENSSL_CONF="$EMS_CNF" EMSGUARD_CONF="$EG_REQUIRE" "${PRE_ENV[@]}")
if start_port_server 21-hello "$HELPERS/hello_server" "$CERT" "$KEY" 2; then
    artifact "$SRV_OUT" "$SRV_ERR"
    out=$TMP/21-legacy.txt
    sclient "$out" "$LEGACY_CNF" -connect 127.0.0.1:"$SRV_PORT" -tls1_2
    expect_ne "legacy s_client exit status" "$CRC" 0
    expect_grep "legacy s_client: alert" "alert" "$out"
    out=$TMP/21-ems.txt
    sclient "$out" "$EMS_CNF" -connect 127.0.0.1:"$SRV_PORT" -tls1_2
    expect_eq "EMS s_client exit status" "$CRC" 0
    wait_exit "$SRV_PID"
    expect_eq "hello_server exit status" "$SRV_RC" 0
    expect_grep "legacy connection refused, the application's callback ran" \
        "^conn 1: failed app_hello_cb=1$" "$SRV_OUT"
    expect_grep "EMS connection completed, the application's callback ran" \
        "^conn 2: ok app_hello_cb=2$" "$SRV_OUT"
    expect_grep "refusal logged" "reason=ems-required" "$SRV_ERR"
    san_clean "$SRV_ERR"
else
    err "hello_server did not start: $(tail -n 3 "$SRV_ERR" 2>/dev/null | tr '\n' ' ')"
fi
# Contrast: without the preload the legacy client completes.
SRV_ENV=(OPENSSL_CONF="$EMS_CNF")
if start_port_server 21-hello-stock "$HELPERS/hello_server" "$CERT" "$KEY" 1; then
    sclient "$TMP/21-stock.txt" "$LEGACY_CNF" -connect 127.0.0.1:"$SRV_PORT" -tls1_2
    wait_exit "$SRV_PID"
    expect_grep "contrast (no preload): legacy completes" "^conn 1: ok app_hello_cb=1$" "$SRV_OUT"
else
    err "stock hello_server did not start"
fi
end_test

# ---- 3. programs that dlopen libssl (F5) ---------------------------------------
#
# dl_client connects twice to a stock legacy s_server, offering the first
# session the second time.  Under the preload with the defaults a non-EMS
# session is never offered (reused=0); without it, it resumes (reused=1).

# dl_cmd MODE: the dl_client command line for MODE (plugin-bare: the
# program with a DT_RUNPATH, given the plugin's bare name).
dl_cmd() {
    if [ "$1" = plugin-bare ]; then
        DL_CMD=("$HELPERS/dl_client_rp" "$1" "$SRV_PORT" "$(basename "$PLUGIN")")
    else
        DL_CMD=("$HELPERS/dl_client" "$1" "$SRV_PORT" "$PLUGIN")
    fi
}

# dl_run OUT MODE [ENV...]: dl_client under the preload; stdout in OUT,
# stderr in OUT.err; sets CRC.
dl_run() {
    local out=$1 mode=$2
    shift 2
    dl_cmd "$mode"
    env OPENSSL_CONF="$EMS_CNF" "${PRE_ENV[@]}" "$@" timeout $TO \
        "${DL_CMD[@]}" >"$out" 2>"$out.err"
    CRC=$?
    artifact "$out" "$out.err"
    san_clean "$out.err"
}

# Never a silent resumption: a resumed non-EMS session needs the loud line.
never_silent() {
    if grep -q '^reused=1$' "$1" && ! grep -Eq "$ESCAPED_RE|$NAMESPACE_RE" "$1.err"; then
        err "non-EMS session resumed under the preload and nothing said so"
    fi
}

# dl_covered NAME MODE: the preload covers this path: the policy holds.
dl_covered() {
    local name=$1 mode=$2 out
    begin "$name"
    out=$TMP/$name.txt
    dl_run "$out" "$mode" EMSGUARD_CONF="$EG_LOG3"
    expect_eq "dl_client exit status" "$CRC" 0
    expect_grep "SSL_CTX made" "^ctx=ok$" "$out"
    expect_grep "non-EMS session not resumed" "^reused=0$" "$out"
    expect_grep "session not offered (logged, EventLogging=3)" \
        "^emsguard: warning: role=client did not offer session.*reason=no-ems" "$out.err"
    expect_grep "one libssl, and libemsguard bound to it" "^libssl_copies=1 libemsguard=1$" "$out"
    expect_nogrep "no misleading 'no libssl' line" "no OpenSSL 3 libssl" "$out.err"
    expect_nogrep "no escape reported" "$ESCAPED_RE" "$out.err"
    never_silent "$out"
    expect_nogrep "no RTLD_DEEPBIND warning" "RTLD_DEEPBIND" "$out.err"
    case $mode in
    plugin-*)
        expect_grep "dlsym(RTLD_DEFAULT/RTLD_NEXT) from the plugin still answers for the plugin" \
            "^lookup default=1 next=1$" "$out" ;;
    esac
    # Contrast: the same program without the preload resumes.
    out=$TMP/$name-stock.txt
    dl_cmd "$mode"
    OPENSSL_CONF=$EMS_CNF timeout $TO "${DL_CMD[@]}" >"$out" 2>&1
    artifact "$out"
    expect_grep "contrast (no preload): resumed" "^reused=1$" "$out"
    end_test
}

# dl_escaped NAME MODE RE SYSLOG_RE [RE2]: interposition is impossible on
# this path; the process must say so on stderr (RE, and RE2 if given) and in
# syslog.
dl_escaped() {
    local name=$1 mode=$2 re=$3 sre=$4 re2=${5:-} out
    begin "$name"
    out=$TMP/$name.txt
    dl_run "$out" "$mode"
    expect_eq "dl_client exit status" "$CRC" 0
    expect_grep "SSL_CTX made" "^ctx=ok$" "$out"
    expect_grep "the escape is said on stderr" "$re" "$out.err"
    expect_grep "the escape is said to syslog" "$sre" "$out.err"
    expect_eq "said once" "$(count_re "$out.err" "$re")" 1
    [ -n "$re2" ] && expect_grep "and also" "$re2" "$out.err"
    never_silent "$out"
    end_test
}

# not_under_asan NAME WHAT: in sanitizer builds the sanitizer runtime itself
# refuses or breaks WHAT, with or without the preload: SKIP (never a PASS).
not_under_asan() {
    if [ -n "$ASAN_RT" ]; then
        skip "$1" "the sanitizer runtime $2 (run the normal build)"
        return 1
    fi
    return 0
}

EG_LOG3=$TMP/eg-log3.cnf
write_eg_cnf "$EG_LOG3" EventLogging=3
if stock_server 30-legacy-s_server "$LEGACY_CNF"; then
    dl_covered 30a-dlopen-plugin-rtld-local plugin-local
    # The preload's dlopen() passes this search on as the program's own.
    not_under_asan 30a2-dlopen-plugin-by-runpath \
        "calls dlopen() for the program and so loses its DT_RUNPATH" \
        && dl_covered 30a2-dlopen-plugin-by-runpath plugin-bare
    dl_covered 30b-dlsym-on-rtld-local-libssl handle-local
    dl_covered 30c-dlsym-ssl_ctx_new_ex-on-global-libssl handle-global-ex
    not_under_asan 30d-dlsym-on-deepbind-libssl "aborts on RTLD_DEEPBIND" \
        && dl_covered 30d-dlsym-on-deepbind-libssl handle-deepbind
    # The dlopen() names the RTLD_DEEPBIND object, the SSL_CTX watch the escape.
    not_under_asan 30e-dlopen-plugin-rtld-deepbind "aborts on RTLD_DEEPBIND" \
        && dl_escaped 30e-dlopen-plugin-rtld-deepbind plugin-deepbind "$ESCAPED_RE" \
            "$ESCAPED_SYSLOG_RE" \
            '^emsguard-preload: error: .*libegdlplugin\.so was loaded with RTLD_DEEPBIND and binds to .*libssl\.so\.3 directly'
    dl_escaped 30f-dlvsym-on-libssl dlvsym "$ESCAPED_RE" "$ESCAPED_SYSLOG_RE"
    not_under_asan 30g-dlmopen-libssl "crashes in a dlmopen() namespace" \
        && dl_escaped 30g-dlmopen-libssl dlmopen "$NAMESPACE_RE" "$NAMESPACE_SYSLOG_RE"
    # 30h: a second libssl.so.3 (a vendored copy) whose users bind to the
    # preload's SSL_CTX_new: its SSL_CTX cannot get the policy, and handing
    # its method to the first libssl would mix the two.  Refused, loudly.
    begin 30h-second-libssl-copy-refused
    mkdir -p "$TMP/other"
    if cp "$LIBSSL_SO" "$TMP/other/libssl.so.3"; then
        out=$TMP/30h.txt
        env OPENSSL_CONF="$EMS_CNF" "${PRE_ENV[@]}" timeout $TO "$HELPERS/dl_client" mixed-libssl \
            "$SRV_PORT" "$TMP/other/libssl.so.3" >"$out" 2>"$out.err"
        expect_eq "dl_client exit status (no SSL_CTX)" "$?" 3
        artifact "$out" "$out.err"
        expect_grep "SSL_CTX_new refused" "^ctx=NULL$" "$out"
        expect_grep "said on stderr" "$MIXED_RE" "$out.err"
        expect_grep "said to syslog" "$MIXED_SYSLOG_RE" "$out.err"
        san_clean "$out.err"
    else
        err "cannot copy $LIBSSL_SO"
    fi
    end_test
    stop_server "$SRV_PID"
else
    fail_now 30-dlopen "stock legacy s_server did not start"
fi

# ---- 4. Debian's python3 (F5: _ssl is dlopened RTLD_LOCAL) ----------------------

cat >"$TMP/py_server.py" <<'EOF'
# TLS 1.2 server, OpenSSL's internal session cache on (Python's default,
# with its "Python" session ID context); prints `port N`, then a line per
# connection.
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(16)
print("port", ls.getsockname()[1], flush=True)
n = 0
while True:
    c, _ = ls.accept()
    n += 1
    try:
        s = ctx.wrap_socket(c, server_side=True)
        print("conn", n, "reused" if s.session_reused else "new", flush=True)
        try:
            s.recv(1)
        except (OSError, ssl.SSLError):
            pass
        # A connection freed without close_notify takes its session out
        # of OpenSSL's cache (SSL_free -> ssl_clear_bad_session).
        try:
            s.unwrap()
        except (OSError, ssl.SSLError, ValueError):
            pass
        s.close()
    except (OSError, ssl.SSLError) as e:
        print("conn", n, "error", e, flush=True)
        c.close()
EOF
cat >"$TMP/py_client.py" <<'EOF'
# TLS 1.2 client: two HTTP/1.0 requests to s_server -www, the second one
# offering the first connection's session (SSLContext.wrap_socket(session=)).
import socket, ssl, sys
port = int(sys.argv[1])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
def get(session=None):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), session=session)
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    body = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        body += d
    r = (s.session_reused, s.session, body.decode(errors="replace"))
    s.close()
    return r
r1, sess, b1 = get()
r2, _, b2 = get(sess)
print("first reused", r1)
print("second reused", r2)
sys.stdout.write(b1 + b2)
EOF

# 40a: the one-liner of the issue.
begin 40a-python-create-default-context
out=$TMP/40a.txt
env OPENSSL_CONF="$EMS_CNF" "${PRE_ENV[@]}" timeout $TO "$PYTHON" -c \
    'import ssl; ssl.create_default_context(); print("ok")' >"$out" 2>&1
expect_eq "python3 exit status" "$?" 0
artifact "$out"
expect_grep "context made" "^ok$" "$out"
expect_nogrep "no 'no libssl' line" "no OpenSSL 3 libssl" "$out"
san_clean "$out"
end_test

# 40b/c: the python server under the preload: a legacy s_client never
# resumes, an EMS one does (tickets; session IDs from OpenSSL's cache).
py_server_case() {
    local name=$1 cliargs=$2 out
    begin "$name"
    SRV_ENV=(OPENSSL_CONF="$EMS_CNF" "${PRE_ENV[@]}")
    if start_port_server "$name" "$PYTHON" "$TMP/py_server.py" "$CERT" "$KEY"; then
        artifact "$SRV_OUT" "$SRV_ERR"
        out=$TMP/$name-legacy.txt
        # shellcheck disable=SC2086
        sclient "$out" "$LEGACY_CNF" -connect 127.0.0.1:"$SRV_PORT" -tls1_2 -reconnect $cliargs
        expect_eq "legacy s_client exit status" "$CRC" 0
        expect_eq "legacy s_client New lines" "$(count_prefix "$out" New,)" 6
        expect_eq "legacy s_client Reused lines" "$(count_prefix "$out" Reused,)" 0
        out=$TMP/$name-ems.txt
        # shellcheck disable=SC2086
        sclient "$out" "$EMS_CNF" -connect 127.0.0.1:"$SRV_PORT" -tls1_2 -reconnect $cliargs
        expect_eq "EMS s_client exit status" "$CRC" 0
        expect_eq "EMS s_client Reused lines" "$(count_prefix "$out" Reused,)" 5
        expect_eq "python server: resumptions seen" "$(count_re "$SRV_OUT" " reused$")" 5
        expect_nogrep "python server: errors" " error " "$SRV_OUT"
        stop_server "$SRV_PID"
        expect_nogrep "no 'no libssl' line" "no OpenSSL 3 libssl" "$SRV_ERR"
        san_clean "$SRV_ERR"
    else
        err "python server did not start: $(tail -n 3 "$SRV_ERR" 2>/dev/null | tr '\n' ' ')"
    fi
    # Contrast: the same server without the preload resumes the legacy client.
    SRV_ENV=(OPENSSL_CONF="$EMS_CNF")
    if start_port_server "$name-stock" "$PYTHON" "$TMP/py_server.py" "$CERT" "$KEY"; then
        out=$TMP/$name-stock.txt
        # shellcheck disable=SC2086
        sclient "$out" "$LEGACY_CNF" -connect 127.0.0.1:"$SRV_PORT" -tls1_2 -reconnect $cliargs
        expect_eq "contrast (no preload): Reused lines" "$(count_prefix "$out" Reused,)" 5
        stop_server "$SRV_PID"
    else
        err "stock python server did not start"
    fi
    end_test
}
py_server_case 40b-python-server-tickets ""
py_server_case 40c-python-server-session-ids-internal-cache "-no_ticket"

# 40d/e: the python client under the preload against a stock legacy s_server.
py_client_case() {
    local name=$1 srvargs=$2 out
    begin "$name"
    # shellcheck disable=SC2086
    if stock_server "$name" "$LEGACY_CNF" -tls1_2 $srvargs; then
        artifact "$SRV_ERR"
        out=$TMP/$name.txt
        env OPENSSL_CONF="$EMS_CNF" EMSGUARD_CONF="$EG_LOG3" "${PRE_ENV[@]}" timeout $TO \
            "$PYTHON" "$TMP/py_client.py" "$SRV_PORT" >"$out" 2>"$out.err"
        expect_eq "python client exit status" "$?" 0
        artifact "$out" "$out.err"
        expect_grep "second connection: not resumed" "^second reused False$" "$out"
        expect_eq "s_server saw New twice" "$(count_prefix "$out" New,)" 2
        expect_eq "s_server saw no Reused" "$(count_prefix "$out" Reused,)" 0
        expect_grep "session not offered (logged)" \
            "^emsguard: warning: role=client did not offer session.*reason=no-ems" "$out.err"
        san_clean "$out.err"
        out=$TMP/$name-stock.txt
        OPENSSL_CONF=$EMS_CNF timeout $TO "$PYTHON" "$TMP/py_client.py" "$SRV_PORT" >"$out" 2>&1
        artifact "$out"
        expect_grep "contrast (no preload): resumed" "^second reused True$" "$out"
        stop_server "$SRV_PID"
    else
        server_up_or_fail "$name"
    fi
    end_test
}
py_client_case 40d-python-client-vs-legacy-tickets ""
py_client_case 40e-python-client-vs-legacy-session-ids "-no_ticket"

# ---- 5. Schannel-mapped values under the preload (C3) -----------------------------
#
# Each case: a preloaded s_server (P-256 certificate, plus RSA for DHE) with
# one Schannel value group from EMSGUARD_CONF must start (it used to recurse
# in SSL_CTX_new until the stack overflowed), serve, and show the setting;
# the same s_server without the preload is the contrast.

# sch_server NAME EGCONF ARGS...: the preloaded s_server.
sch_server() {
    local name=$1 egconf=$2
    shift 2
    SRV_ENV=(OPENSSL_CONF="$EMS_CNF" EMSGUARD_CONF="$egconf" "${PRE_ENV[@]}")
    start_server "$name" "$OPENSSL" s_server -accept @PORT@ -cert "$CERT" -key "$KEY" \
        -dcert "$RSA_CERT" -dkey "$RSA_KEY" -www -quiet "$@"
}

# sch_stock NAME ARGS...: the same without the preload.
sch_stock() {
    local name=$1
    shift
    SRV_ENV=(OPENSSL_CONF="$EMS_CNF")
    start_server "$name" "$OPENSSL" s_server -accept @PORT@ -cert "$CERT" -key "$KEY" \
        -dcert "$RSA_CERT" -dkey "$RSA_KEY" -www -quiet "$@"
}

# sch_case NAME "KEY=VALUE;..." "SERVER-ARGS" CHECK-FUNCTION: runs CHECK with
# mode=policy against the preloaded server and mode=stock against the stock
# one.  CHECK reads SRV_PORT and mode.
sch_case() {
    local name=$1 kvs=$2 srvargs=$3 check=$4 egconf kv
    local -a kva=()
    begin "$name"
    egconf=$TMP/$name.cnf
    IFS=';' read -r -a kva <<<"$kvs"
    write_eg_cnf "$egconf" "${kva[@]}"
    artifact "$egconf"
    # shellcheck disable=SC2086
    if sch_server "$name" "$egconf" $srvargs; then
        artifact "$SRV_ERR"
        mode=policy
        "$check"
        # A page served: the server is up and answering.
        out=$TMP/$name-page.txt
        printf 'GET / HTTP/1.0\r\n\r\n' | OPENSSL_CONF=$EMS_CNF timeout $TO "$OPENSSL" s_client \
            -connect 127.0.0.1:"$SRV_PORT" -ign_eof >"$out" 2>&1
        expect_grep "a page served" "^HTTP/1\\.0 200 ok" "$out"
        stop_policy_server
    else
        # Once more in the foreground, for its exit status (139: SIGSEGV).
        env "${SRV_ENV[@]}" timeout 20 "$OPENSSL" s_server -accept 0 -cert "$CERT" -key "$KEY" \
            -www -quiet </dev/null >/dev/null 2>&1
        err "preloaded s_server did not start (exit status $?): $(tail -n 3 "$SRV_ERR" 2>/dev/null | tr '\n' ' ')"
    fi
    # shellcheck disable=SC2086
    if sch_stock "$name-stock" $srvargs; then
        mode=stock
        "$check"
        stop_server "$SRV_PID"
    else
        server_up_or_fail "$name-stock"
    fi
    end_test
}

stop_policy_server() {
    stop_server "$SRV_PID"
    expect_eq "preloaded s_server exit status (SIGTERM)" "$SRV_RC" 143
    san_clean "$SRV_ERR"
}

# c_run OUT ARGS...: a stock EMS s_client against SRV_PORT.
c_run() {
    local out=$1
    shift
    sclient "$out" "$EMS_CNF" -connect 127.0.0.1:"$SRV_PORT" "$@"
}

check_cache_time() {
    local out=$TMP/$CUR-$mode.txt
    c_run "$out" -tls1_2
    if [ "$mode" = policy ]; then
        expect_grep "ServerCacheTime=600000 ms: ticket lifetime 600 s" \
            "TLS session ticket lifetime hint: 600 \\(seconds\\)" "$out"
    else
        expect_grep "contrast: lifetime 7200 s" "TLS session ticket lifetime hint: 7200 \\(seconds\\)" "$out"
    fi
}
check_cache_size() {
    local out=$TMP/$CUR-$mode.txt
    c_run "$out" -tls1_2 -reconnect -no_ticket
    expect_eq "$mode: exit status" "$CRC" 0
    if [ "$mode" = policy ]; then
        expect_eq "MaximumCacheSize=0: no session cache (Reused lines)" "$(count_prefix "$out" Reused,)" 0
    else
        expect_eq "contrast: Reused lines" "$(count_prefix "$out" Reused,)" 5
    fi
}
check_renego() {
    local out=$TMP/$CUR-$mode.txt
    (echo R; sleep 1) | OPENSSL_CONF=$EMS_CNF timeout $TO "$OPENSSL" s_client \
        -connect 127.0.0.1:"$SRV_PORT" -tls1_2 -msg >"$out" 2>&1
    artifact "$out"
    expect_grep "$mode: renegotiation attempted" "^RENEGOTIATING" "$out"
    if [ "$mode" = policy ]; then
        expect_grep "DisableRenegoOnServer=1: refused" "warning no_renegotiation" "$out"
    else
        expect_nogrep "contrast (-client_renegotiation): allowed" "no_renegotiation" "$out"
        expect_eq "contrast: two handshakes" "$(count_re "$out" "^<<< TLS 1.2, Handshake .*Finished")" 2
    fi
}
check_protocols() {
    local out=$TMP/$CUR-$mode.txt
    c_run "$out" -tls1_2
    if [ "$mode" = policy ]; then
        expect_ne "TLS 1.2 server disabled: -tls1_2 fails" "$CRC" 0
        expect_grep "protocol_version alert" "alert protocol version" "$out"
        c_run "$out.13" -tls1_3
        expect_eq "TLS 1.3 still served" "$CRC" 0
        expect_grep "TLS 1.3 handshake" "^New, TLSv1.3" "$out.13"
    else
        expect_eq "contrast: -tls1_2 works" "$CRC" 0
    fi
}
check_ciphers() {
    local out=$TMP/$CUR-$mode.txt
    c_run "$out" -tls1_2 -cipher ECDHE-ECDSA-AES256-GCM-SHA384
    if [ "$mode" = policy ]; then
        expect_ne "AES 256 disabled: an AES-256-only client fails" "$CRC" 0
        expect_grep "handshake_failure alert" "alert handshake failure" "$out"
        c_run "$out.128" -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256
        expect_eq "AES 128 still served" "$CRC" 0
    else
        expect_eq "contrast: AES 256 works" "$CRC" 0
    fi
}
check_hashes() {
    local out=$TMP/$CUR-$mode.txt
    c_run "$out" -tls1_2 -cipher ECDHE-ECDSA-AES128-SHA
    if [ "$mode" = policy ]; then
        expect_ne "SHA disabled: a SHA-1 MAC suite fails" "$CRC" 0
        c_run "$out.256" -tls1_2 -cipher ECDHE-ECDSA-AES128-SHA256
        expect_eq "SHA-256 MAC suite still served" "$CRC" 0
    else
        expect_eq "contrast: SHA-1 MAC suite works" "$CRC" 0
    fi
}
check_kex() {
    local out=$TMP/$CUR-$mode.txt
    c_run "$out" -tls1_2
    expect_eq "$mode: exit status" "$CRC" 0
    if [ "$mode" = policy ]; then
        expect_grep "ECDH disabled: DHE-RSA negotiated" "^New, TLSv1.2, Cipher is DHE-RSA-" "$out"
    else
        expect_grep "contrast: ECDHE" "^New, TLSv1.2, Cipher is ECDHE-" "$out"
    fi
}
check_functions() {
    local out=$TMP/$CUR-$mode.txt
    c_run "$out" -tls1_2
    expect_eq "$mode: exit status" "$CRC" 0
    if [ "$mode" = policy ]; then
        expect_grep "Functions: the listed suite" "^New, TLSv1.2, Cipher is ECDHE-ECDSA-AES128-SHA256$" "$out"
        expect_grep "EccCurves=NistP384" "(Server|Peer) Temp Key: ECDH, secp384r1" "$out"
    else
        expect_nogrep "contrast: another suite" "Cipher is ECDHE-ECDSA-AES128-SHA256$" "$out"
        expect_nogrep "contrast: another group" "secp384r1" "$out"
    fi
}

sch_case 50a-schannel-server-cache-time "ServerCacheTime=600000" "" check_cache_time
sch_case 50b-schannel-maximum-cache-size "MaximumCacheSize=0" "" check_cache_size
sch_case 50c-schannel-renegotiation "DisableRenegoOnServer=1;AllowInsecureRenegoClients=0" \
    "-client_renegotiation" check_renego
sch_case 50d-schannel-protocols "Protocols.TLS_1.2.Server.Enabled=0" "" check_protocols
sch_case 50e-schannel-ciphers "Ciphers.AES_256/256.Enabled=0" "" check_ciphers
sch_case 50f-schannel-hashes "Hashes.SHA.Enabled=0" "" check_hashes
sch_case 50g-schannel-key-exchange "KeyExchangeAlgorithms.ECDH.Enabled=0" "" check_kex
sch_case 50h-schannel-functions-ecc-curves \
    "Functions=TLS_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256;EccCurves=NistP384" \
    "" check_functions

# 50i: the client side (any program crashed): a preloaded s_client with
# ClientCacheTime=0 never offers a session, even an EMS one.
begin 50i-schannel-client-cache-time
egconf=$TMP/50i.cnf
write_eg_cnf "$egconf" ClientCacheTime=0
if stock_server 50i-ems-s_server "$EMS_CNF"; then
    artifact "$SRV_ERR"
    out=$TMP/50i.txt
    env OPENSSL_CONF="$EMS_CNF" EMSGUARD_CONF="$egconf" "${PRE_ENV[@]}" timeout $TO \
        "$OPENSSL" s_client -connect 127.0.0.1:"$SRV_PORT" -tls1_2 -reconnect </dev/null >"$out" 2>"$out.err"
    expect_eq "preloaded s_client exit status" "$?" 0
    artifact "$out" "$out.err"
    san_clean "$out.err"
    expect_eq "ClientCacheTime=0: New lines" "$(count_prefix "$out" New,)" 6
    expect_eq "ClientCacheTime=0: Reused lines" "$(count_prefix "$out" Reused,)" 0
    sclient "$TMP/50i-stock.txt" "$EMS_CNF" -connect 127.0.0.1:"$SRV_PORT" -tls1_2 -reconnect
    expect_eq "contrast (no preload): Reused lines" "$(count_prefix "$TMP/50i-stock.txt" Reused,)" 5
    stop_server "$SRV_PID"
else
    server_up_or_fail 50i-ems-s_server
fi
end_test

# 50j/k: the hardening templates of test/reg through PolicyFile.
check_pci() {
    local out=$TMP/$CUR-$mode.txt
    c_run "$out" -tls1_3
    if [ "$mode" = policy ]; then
        expect_ne "pci.reg: TLS 1.3 disabled" "$CRC" 0
        c_run "$out.12" -tls1_2
        expect_eq "pci.reg: TLS 1.2 served" "$CRC" 0
        expect_grep "pci.reg: first suite of Functions" \
            "^New, TLSv1.2, Cipher is ECDHE-ECDSA-AES128-GCM-SHA256$" "$out.12"
        expect_grep "pci.reg: ServerCacheTime 3600000 ms" \
            "TLS session ticket lifetime hint: 3600 \\(seconds\\)" "$out.12"
    else
        expect_eq "contrast: TLS 1.3 works" "$CRC" 0
    fi
}
check_strict() {
    local out=$TMP/$CUR-$mode.txt
    c_run "$out" -tls1_2 -groups P-521:P-256
    expect_eq "$mode: exit status" "$CRC" 0
    if [ "$mode" = policy ]; then
        expect_grep "strict.reg: EccCurves leave out P-521" "(Server|Peer) Temp Key: ECDH, prime256v1" "$out"
        c_run "$out.ids" -tls1_2 -reconnect -no_ticket
        expect_eq "strict.reg: MaximumCacheSize=0 (Reused lines)" "$(count_prefix "$out.ids" Reused,)" 0
    else
        expect_grep "contrast: P-521" "(Server|Peer) Temp Key: ECDH, secp521r1" "$out"
    fi
}
sch_case 50j-schannel-reg-template-pci "PolicyFile=$ROOT/test/reg/pci.reg" "" check_pci
sch_case 50k-schannel-reg-template-strict-utf16 "PolicyFile=$ROOT/test/reg/strict.reg" "" check_strict

# 51: nginx, preloaded with a hardening template and with every value group
# at once: it starts, serves, and uses the policy's groups (nginx's
# `ssl_ecdh_curve auto` leaves them alone).  That the policy's protocols and
# ciphers also hold against nginx's own settings is preload_schannel.sh.
NGX_DIR=""
NGX_PID=""
nginx_case() {
    local name=$1 egconf=$2 want=$3 groups=$4 out
    begin "$name"
    if start_free_port_nginx "$name" "$egconf" ""; then
        artifact "$NGX_DIR/logs/error.log" "$NGX_DIR/stderr"
        out=$TMP/$name.txt
        nginx_get "$out" -tls1_2 -groups "$groups"
        expect_eq "request exit status" "$CRC" 0
        expect_grep "served" "^served$" "$out"
        expect_grep "the policy's group list" "(Server|Peer) Temp Key: ECDH, $want" "$out"
        stop_nginx
        expect_eq "preloaded nginx exit status (fast shutdown)" "$NGX_RC" 0
        expect_nogrep "nginx error log: emerg/alert/crit" "\\[(emerg|alert|crit)\\]" "$NGX_DIR/logs/error.log"
        expect_nogrep "nginx error log: a worker died" "exited on signal" "$NGX_DIR/logs/error.log"
        san_clean "$NGX_DIR/stderr"
        san_clean "$NGX_DIR/logs/error.log"
    else
        err "preloaded nginx did not start: $(tail -n 3 "$NGX_DIR/logs/error.log" "$NGX_DIR/stderr" 2>/dev/null | tr '\n' ' ')"
    fi
    end_test
}

begin 51a-nginx-control-no-preload
if start_free_port_nginx 51a-nginx-stock "" ""; then
    artifact "$NGX_DIR/logs/error.log"
    nginx_get "$TMP/51a.txt" -tls1_2 -groups P-521:P-256
    expect_grep "stock nginx: served" "^served$" "$TMP/51a.txt"
    expect_grep "stock nginx: P-521" "(Server|Peer) Temp Key: ECDH, secp521r1" "$TMP/51a.txt"
    stop_nginx
else
    err "stock nginx did not start: $(tail -n 3 "$NGX_DIR/logs/error.log" 2>/dev/null | tr '\n' ' ')"
fi
end_test
NGX_STRICT=$TMP/51b.cnf
write_eg_cnf "$NGX_STRICT" "PolicyFile=$ROOT/test/reg/strict.reg"
nginx_case 51b-nginx-reg-template-strict "$NGX_STRICT" prime256v1 P-521:P-256
NGX_ALL=$TMP/51c.cnf
write_eg_cnf "$NGX_ALL" ServerCacheTime=600000 ClientCacheTime=600000 MaximumCacheSize=100 \
    DisableRenegoOnServer=1 AllowInsecureRenegoClients=0 Protocols.TLS_1.0.Server.Enabled=0 \
    Ciphers.RC4_128/128.Enabled=0 Hashes.MD5.Enabled=0 KeyExchangeAlgorithms.PKCS.Enabled=0 \
    "Functions=TLS_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" EccCurves=NistP384,NistP256
nginx_case 51c-nginx-every-value-group "$NGX_ALL" secp384r1 P-521:P-384:P-256

summary
[ "$NFAIL" -eq 0 ]
