#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `emsguard probe` against real mail servers from Debian on 127.0.0.1:
# Postfix (smtpd, STARTTLS and implicit TLS) and Dovecot (IMAP and POP3,
# STARTTLS/STLS and implicit TLS), each run twice:
#
#   legacy     OPENSSL_CONF with `Options = -ExtendedMasterSecret`   findings (exit 1)
#   preloaded  LD_PRELOAD=libemsguard-preload.so (EMS config)         compliant (exit 0)
#
# and the STARTTLS failure messages: not offered, refused (quoted), not that
# protocol, timeout, data after the go-ahead (small fake servers in Python,
# and the real daemons probed with the wrong protocol).
#
#   BUILD=build bash test/probe_mail.sh
#   BUILD=build-san SANITIZE=1 bash test/probe_mail.sh
#
# The daemons run as root-started instances with their own throwaway
# configuration in $TMP, never the system services or /etc/postfix/main.cf,
# /etc/dovecot: Postfix via `postfix -c DIR start-fg` (its own main.cf and
# master.cf, queue and data directories in $TMP, logging to a file), Dovecot
# via `dovecot -F -c FILE` (base_dir and state_dir in $TMP, a static
# passdb/userdb that needs no system user of its own).  Their OpenSSL
# configuration and the preload reach the daemons' children through
# import_environment (both daemons clear the environment otherwise).
# Dovecot 2.4 changed the configuration syntax; the file is written for the
# version `dovecot --version` reports.  Sanitizer builds: the daemons get
# libasan in front of the preload (as test/preload.sh), and Dovecot's
# default_vsz_limit is lifted (ASan's shadow memory does not fit in 256M).
#
# Every case prints `PASS name` or `FAIL name: details`; the last line is
# `N passed, M failed, K skipped`.  A missing postfix, dovecot or
# python3-jsonschema is a FAIL; so is running as non-root (the daemons
# switch users).  Environment: BUILD, SANITIZE, OPENSSL, POSTFIX, DOVECOT,
# KEEP_TMP=1, VERBOSE=1.
set -u

OPENSSL=${OPENSSL:-openssl}
POSTFIX=${POSTFIX:-/usr/sbin/postfix}
DOVECOT=${DOVECOT:-/usr/sbin/dovecot}
HERE=$(cd "$(dirname "$0")" && pwd)

TO=20            # timeout for openssl helpers, seconds
PTO=180          # bound on one whole probe run, seconds
SERVER_PIDS=()
PF_DIRS=()       # Postfix instances to stop at exit
# shellcheck source=test/lib.sh
. "$HERE/lib.sh"
script_start probe-mail
EMSG=$BDIR/tools/emsguard
SCHEMA=$ROOT/docs/probe.schema.json
# shellcheck source=test/probe_lib.sh
. "$HERE/probe_lib.sh"

# The daemons' unprivileged users (postfix, dovecot) must reach their
# directories below TMP: traverse only, no listing.
chmod 0711 "$TMP"
unset EMSGUARD_CONF EMSGUARD_DEBUG

mail_cleanup() {
    local d
    for d in "${PF_DIRS[@]}"; do
        "$POSTFIX" -c "$d/etc" stop >/dev/null 2>&1
    done
    cleanup_servers
}
trap mail_cleanup EXIT
trap 'exit 130' INT TERM HUP

# ---- prerequisites ------------------------------------------------------------

for f in "$EMSG" "$PRELOAD"; do
    [ -e "$f" ] || prereq_fail "$f not built (make BUILD_DIR=... all)"
done
[ -x "$POSTFIX" ] || prereq_fail "postfix not installed at $POSTFIX (.ci/install-deps installs postfix)"
[ -x "$DOVECOT" ] || prereq_fail "dovecot not installed at $DOVECOT (.ci/install-deps installs dovecot-imapd, dovecot-pop3d)"
for m in imap pop3; do
    [ -x /usr/lib/dovecot/$m ] || prereq_fail "dovecot's $m service missing (.ci/install-deps installs dovecot-${m}d)"
done
for u in postfix dovecot dovenull; do
    getent passwd "$u" >/dev/null || prereq_fail "system user '$u' missing (made by the postfix/dovecot packages)"
done
command -v "$OPENSSL" >/dev/null 2>&1 || prereq_fail "openssl not installed"
require_jsonschema
[ "$(id -u)" -eq 0 ] || prereq_fail "postfix and dovecot must be started as root (they switch users); run this test as root, as CI does"
set_preload_env
make_fixtures || prereq_fail "cannot make a certificate"
write_pcheck "$TMP/pcheck.py"

# PRE_ENV as separate values, for the daemons' import_environment.
PRE_LD=""
PRE_ASAN=""
for kv in "${PRE_ENV[@]}"; do
    case "$kv" in
    LD_PRELOAD=*) PRE_LD=${kv#LD_PRELOAD=} ;;
    ASAN_OPTIONS=*) PRE_ASAN=${kv#ASAN_OPTIONS=} ;;
    esac
done

# free_ports N: N distinct free ports (stdout, one line): no socket in any
# state uses them (a connection's local port blocks a daemon's bind too).
free_ports() {
    local got=() p
    while [ ${#got[@]} -lt "$1" ]; do
        p=$(random_port)
        port_listening "$p" && continue
        [ -n "$(ss -Htan "sport = :$p" 2>/dev/null)" ] && continue
        [[ " ${got[*]} " == *" $p "* ]] && continue
        got+=("$p")
    done
    echo "${got[*]}"
}

# wait_ports PID PORT...: bounded wait (15 s) until every port listens; 1 if
# PID died first or the time ran out.
wait_ports() {
    local pid=$1 i p up
    shift
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || return 1
        up=1
        for p in "$@"; do
            port_listening "$p" || { up=0; break; }
        done
        [ "$up" = 1 ] && return 0
        sleep 0.05
    done
    return 1
}

# ---- Postfix ------------------------------------------------------------------

# The package's own directories, as postconf knows them (Debian 12 and 13
# agree today; asking keeps the config right if they move).
PF_DEFAULTS=$TMP/pf-defaults
mkdir -p "$PF_DEFAULTS"
: >"$PF_DEFAULTS/main.cf"
: >"$PF_DEFAULTS/master.cf"
mapfile -t PF_PATHS < <(postconf -c "$PF_DEFAULTS" -d -h daemon_directory shlib_directory \
    meta_directory command_directory 2>/dev/null)
[ ${#PF_PATHS[@]} -eq 4 ] || prereq_fail "postconf -d did not report Postfix's directories"

# postfix_start NAME CNF KIND (legacy|preload): an instance in $TMP/NAME with
# smtpd on PF_SMTP (STARTTLS offered) and PF_SMTPS (implicit TLS).  Sets
# PF_DIR, PF_PID (the start-fg shell), PF_LOG; 1 if it did not come up.
postfix_start() {
    local name=$1 cnf=$2 kind=$3 env_names="OPENSSL_CONF" ports try
    local e=(OPENSSL_CONF="$cnf")
    if [ "$kind" = preload ]; then
        e+=(LD_PRELOAD="$PRE_LD")
        env_names+=" LD_PRELOAD"
        if [ -n "$PRE_ASAN" ]; then
            e+=(ASAN_OPTIONS="$PRE_ASAN")
            env_names+=" ASAN_OPTIONS"
        fi
    fi
    PF_DIR=$TMP/$name
    PF_LOG=$PF_DIR/maillog
    PF_PID=""
    mkdir -p "$PF_DIR/etc" "$PF_DIR/spool" "$PF_DIR/data"
    chmod 0755 "$PF_DIR"
    chown postfix "$PF_DIR/data"
    for try in 1 2 3; do
        ports=$(free_ports 2)
        PF_SMTP=${ports% *}
        PF_SMTPS=${ports#* }
        cat >"$PF_DIR/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $PF_DIR/spool
data_directory = $PF_DIR/data
daemon_directory = ${PF_PATHS[0]}
shlib_directory = ${PF_PATHS[1]}
meta_directory = ${PF_PATHS[2]}
command_directory = ${PF_PATHS[3]}
mail_owner = postfix
setgid_group = postdrop
myhostname = probe.test
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
smtpd_relay_restrictions = reject
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
maillog_file = $PF_LOG
maillog_file_prefixes = $PF_DIR
import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C $env_names
smtpd_tls_security_level = may
smtpd_tls_cert_file = $CERT
smtpd_tls_key_file = $KEY
smtpd_tls_session_cache_database = btree:\${data_directory}/smtpd_scache
smtpd_tls_loglevel = 1
EOF
        cat >"$PF_DIR/etc/master.cf" <<EOF
127.0.0.1:$PF_SMTP inet n - n - - smtpd
127.0.0.1:$PF_SMTPS inet n - n - - smtpd -o smtpd_tls_wrappermode=yes -o smtpd_tls_security_level=encrypt
tlsmgr unix - - n 1000? 1 tlsmgr
anvil unix - - n - 1 anvil
postlog unix-dgram n - n - 1 postlogd
EOF
        env "${e[@]}" "$POSTFIX" -c "$PF_DIR/etc" start-fg </dev/null >"$PF_DIR/start.out" 2>&1 &
        PF_PID=$!
        SERVER_PIDS+=("$PF_PID")
        PF_DIRS+=("$PF_DIR")
        wait_ports "$PF_PID" "$PF_SMTP" "$PF_SMTPS" && return 0
        postfix_stop
        # a port taken meanwhile: again, with the failed try's log aside
        grep -qi "in use" "$PF_LOG" 2>/dev/null || break
        mv "$PF_LOG" "$PF_LOG.try$try"
    done
    PF_PID=""
    return 1
}

postfix_stop() {
    local i
    [ -n "$PF_PID" ] || return 0
    "$POSTFIX" -c "$PF_DIR/etc" stop >/dev/null 2>&1
    for ((i = 0; i < 200; i++)); do
        kill -0 "$PF_PID" 2>/dev/null || break
        sleep 0.05
    done
    stop_server "$PF_PID"
}

# ---- Dovecot ------------------------------------------------------------------

DOVECOT_VERSION=$("$DOVECOT" --version 2>/dev/null | awk '{ print $1 }')
# 2.4 and later: dovecot_config_version, ssl_server_*_file, named passdb/userdb.
dovecot_24() {
    local maj min
    maj=${DOVECOT_VERSION%%.*}
    min=${DOVECOT_VERSION#*.}
    min=${min%%.*}
    [ "${maj:-0}" -gt 2 ] 2>/dev/null || { [ "${maj:-0}" -eq 2 ] && [ "${min:-0}" -ge 4 ]; } 2>/dev/null
}

# dovecot_conf DIR CNF KIND IMAP IMAPS POP3 POP3S (stdout)
dovecot_conf() {
    local d=$1 cnf=$2 kind=$3 imap=$4 imaps=$5 pop3=$6 pop3s=$7 svc
    local envs=("OPENSSL_CONF=$cnf")
    if [ "$kind" = preload ]; then
        envs+=("LD_PRELOAD=$PRE_LD")
        [ -n "$PRE_ASAN" ] && envs+=("ASAN_OPTIONS=$PRE_ASAN")
    fi
    if dovecot_24; then
        echo "dovecot_config_version = 2.4.0"
        echo "dovecot_storage_version = 2.4.0"
    fi
    cat <<EOF
instance_name = eg-probe-$$-$(basename "$d")
base_dir = $d/run
state_dir = $d/state
log_path = $d/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
default_vsz_limit = $(dovecot_24 && echo unlimited || echo 0)
ssl = yes
ssl_min_protocol = TLSv1.2
EOF
    if dovecot_24; then
        local kv
        echo "import_environment {"
        for kv in "${envs[@]}"; do
            echo "  ${kv%%=*} = ${kv#*=}"
        done
        cat <<EOF
}
ssl_server_cert_file = $CERT
ssl_server_key_file = $KEY
mail_driver = maildir
mail_path = $d/mail/%{user}
passdb static {
  fields {
    nopassword = yes
  }
}
userdb static {
  fields {
    uid = dovecot
    gid = dovecot
    home = $d/home/%{user}
  }
}
EOF
        svc="restart_request_count = unlimited"
    else
        cat <<EOF
import_environment = TZ ${envs[*]}
ssl_cert = <$CERT
ssl_key = <$KEY
mail_location = maildir:$d/mail/%u
passdb {
  driver = static
  args = nopassword=y
}
userdb {
  driver = static
  args = uid=dovecot gid=dovecot home=$d/home/%u
}
EOF
        svc="service_count = 0"
    fi
    # One long-lived login process per protocol, not chrooted: its session
    # cache and ticket key serve every connection of the probe.
    cat <<EOF
service imap-login {
  inet_listener imap {
    port = $imap
  }
  inet_listener imaps {
    port = $imaps
    ssl = yes
  }
  chroot =
  $svc
  process_min_avail = 1
  process_limit = 1
}
service pop3-login {
  inet_listener pop3 {
    port = $pop3
  }
  inet_listener pop3s {
    port = $pop3s
    ssl = yes
  }
  chroot =
  $svc
  process_min_avail = 1
  process_limit = 1
}
EOF
}

# dovecot_start NAME CNF KIND: sets DV_DIR, DV_PID, DV_IMAP, DV_IMAPS,
# DV_POP3, DV_POP3S; 1 if it did not come up.
dovecot_start() {
    local name=$1 cnf=$2 kind=$3 ports try
    DV_DIR=$TMP/$name
    DV_PID=""
    mkdir -p "$DV_DIR"
    chmod 0755 "$DV_DIR"
    for try in 1 2 3; do
        ports=$(free_ports 4)
        read -r DV_IMAP DV_IMAPS DV_POP3 DV_POP3S <<<"$ports"
        dovecot_conf "$DV_DIR" "$cnf" "$kind" "$DV_IMAP" "$DV_IMAPS" "$DV_POP3" "$DV_POP3S" \
            >"$DV_DIR/dovecot.conf"
        "$DOVECOT" -F -c "$DV_DIR/dovecot.conf" </dev/null >"$DV_DIR/start.out" 2>&1 &
        DV_PID=$!
        SERVER_PIDS+=("$DV_PID")
        wait_ports "$DV_PID" "$DV_IMAP" "$DV_IMAPS" "$DV_POP3" "$DV_POP3S" && return 0
        stop_server "$DV_PID"
        grep -qi "in use" "$DV_DIR/start.out" "$DV_DIR/dovecot.log" 2>/dev/null || break
        mv "$DV_DIR/dovecot.log" "$DV_DIR/dovecot.log.try$try" 2>/dev/null
    done
    DV_PID=""
    return 1
}

dovecot_stop() {
    [ -n "$DV_PID" ] || return 0
    stop_server "$DV_PID"
    DV_PID=""
}

# ---- the cases ----------------------------------------------------------------

# mail_case NAME KIND(legacy|preload) ARGS...: the probe (text and JSON)
# against one port; legacy: findings, the legacy rows; preload: compliant,
# the emsguard rows.  Postfix sends the handshake_failure alert of an
# aborted resumption; Dovecot closes without flushing it (both are aborts).
mail_case() {
    local name=$1 kind=$2
    shift 2
    begin "$name"
    probe "$name" "$@"
    if [ "$kind" = legacy ]; then
        mapfile -t R < <(rows_legacy)
        verify "$name" 1 "${R[@]}" "${SKIP_SESSION_ID_ROWS[@]}" "$REMEDY_EMS"
    else
        mapfile -t R < <(rows_policy)
        verify "$name" 0 "${R[@]}" "${SKIP_SESSION_ID_ROWS[@]}"
        [[ "$name" == postfix-* ]] && alert40 "$name"
    fi
}

# Dovecot 2.4 (Debian 13) resumes a session ID only some of the time, even
# for a stock client (tickets always): its session-ID rows differ from run
# to run, so they are not judged there; its ticket rows, the verdict and the
# exit status are.  Dovecot 2.3 and Postfix are judged on every row.
SKIP_SESSION_ID_ROWS=()

# header_line NAME LABEL: the text report names the dialogue ("(SMTP, STARTTLS)").
header_line() {
    expect_grep "text header" "^emsguard probe: 127\\.0\\.0\\.1:[0-9]+${2:+ \\($2\\)}\$" "$TMP/$1.txt"
}

# json_starttls NAME VALUE: target.starttls of the JSON document
json_starttls() {
    expect_eq "JSON target.starttls" \
        "$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["target"]["starttls"])' "$TMP/$1.json" 2>&1)" "$2"
}

postfix_cases() {
    local kind=$1 cnf=$2
    if ! postfix_start "pf-$kind" "$cnf" "$kind"; then
        fail_now "postfix-$kind" "postfix did not start: $(tail -n 5 "$PF_LOG" "$PF_DIR/start.out" 2>/dev/null | tr '\n' ' ')"
        return
    fi
    mail_case "postfix-$kind-smtp-starttls" "$kind" "127.0.0.1:$PF_SMTP" --starttls smtp
    header_line "postfix-$kind-smtp-starttls" "SMTP, STARTTLS"
    json_starttls "postfix-$kind-smtp-starttls" smtp
    artifact "$PF_LOG"
    # Postfix's own count: every connection of both runs went through
    # EHLO and STARTTLS (one line per connection; "starttls=0/1" when the
    # handshake after it was aborted).
    expect_ge "postfix: sessions with ehlo=1 starttls=" \
        "$(count_re "$PF_LOG" "disconnect from .* ehlo=1 starttls=")" 20
    end_test
    mail_case "postfix-$kind-smtps-implicit-tls" "$kind" "127.0.0.1:$PF_SMTPS"
    header_line "postfix-$kind-smtps-implicit-tls" ""
    json_starttls "postfix-$kind-smtps-implicit-tls" None
    artifact "$PF_LOG"
    end_test
    if [ "$kind" = legacy ]; then
        wrong_protocol_postfix
    fi
    postfix_stop
    begin "postfix-$kind-log-clean"
    artifact "$PF_LOG"
    expect_nogrep "postfix fatal/panic" "(fatal|panic):" "$PF_LOG"
    san_clean "$PF_LOG"
    san_clean "$PF_DIR/start.out"
    end_test
}

dovecot_cases() {
    local kind=$1 cnf=$2
    if ! dovecot_start "dv-$kind" "$cnf" "$kind"; then
        fail_now "dovecot-$kind" "dovecot $DOVECOT_VERSION did not start: $(tail -n 5 "$DV_DIR/start.out" "$DV_DIR/dovecot.log" 2>/dev/null | tr '\n' ' ')"
        return
    fi
    SKIP_SESSION_ID_ROWS=()
    if dovecot_24; then
        echo "    dovecot $DOVECOT_VERSION: session-ID rows not judged (it resumes session IDs only some of the time)"
        SKIP_SESSION_ID_ROWS=(ignore=session_id)
    fi
    mail_case "dovecot-$kind-imap-starttls" "$kind" "127.0.0.1:$DV_IMAP" --starttls imap
    header_line "dovecot-$kind-imap-starttls" "IMAP, STARTTLS"
    json_starttls "dovecot-$kind-imap-starttls" imap
    end_test
    mail_case "dovecot-$kind-imaps-implicit-tls" "$kind" "127.0.0.1:$DV_IMAPS"
    end_test
    mail_case "dovecot-$kind-pop3-stls" "$kind" "127.0.0.1:$DV_POP3" --starttls pop3
    header_line "dovecot-$kind-pop3-stls" "POP3, STLS"
    json_starttls "dovecot-$kind-pop3-stls" pop3
    end_test
    mail_case "dovecot-$kind-pop3s-implicit-tls" "$kind" "127.0.0.1:$DV_POP3S"
    end_test
    SKIP_SESSION_ID_ROWS=()
    if [ "$kind" = legacy ]; then
        wrong_protocol_dovecot
    fi
    dovecot_stop
    begin "dovecot-$kind-log-clean"
    artifact "$DV_DIR/dovecot.log" "$DV_DIR/start.out"
    expect_nogrep "dovecot fatal/panic" "(Fatal|Panic):" "$DV_DIR/dovecot.log"
    expect_ge "dovecot: TLS sessions logged" "$(count_re "$DV_DIR/dovecot.log" "TLS")" 20
    san_clean "$DV_DIR/dovecot.log"
    san_clean "$DV_DIR/start.out"
    end_test
}

# ---- wrong protocol, wrong port, timeouts (with the legacy daemons up) ----------

P='emsguard probe: 127.0.0.1'

wrong_protocol_postfix() {
    begin postfix-wrong-protocol-imap-on-smtp
    perr wp1 "$P:$PF_SMTP does not speak IMAP: it sent \"220 probe.test ESMTP Postfix$(postfix_banner_tail)\"" \
        starttls "127.0.0.1:$PF_SMTP" --starttls imap
    end_test
    begin postfix-starttls-port-without-starttls
    probe wp2 "127.0.0.1:$PF_SMTP"
    expect_eq "exit status" "$TRC" 2
    # The greeting, or, when Postfix read the ClientHello before it greeted
    # (Debian 13's 3.10 at times), its pipelining error instead.
    expect_grep "message" "^$P:$PF_SMTP does not speak TLS: it answered the ClientHello with \"(220 probe\\.test ESMTP Postfix.*|554 5\\.5\\.0 Error: SMTP protocol synchronization)\" \\(a STARTTLS port\\? try --starttls smtp or --starttls ftp\\)\$" "$TMP/wp2.txt.err"
    end_test
    begin postfix-implicit-tls-port-with-starttls-timeout
    perr wp3 "$P:$PF_SMTPS: timed out after 1 s waiting for the SMTP greeting (an implicit-TLS port? then probe it without --starttls smtp)" \
        timeout "127.0.0.1:$PF_SMTPS" --starttls smtp --timeout 1
    end_test
}

# What follows "ESMTP Postfix" in the banner (Debian adds " (Debian/GNU)").
postfix_banner_tail() {
    local l
    l=$(timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PF_SMTP; head -n1 <&3" 2>/dev/null | tr -d '\r')
    echo "${l#220 probe.test ESMTP Postfix}"
}

wrong_protocol_dovecot() {
    local greet
    greet=$(timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$DV_IMAP; head -n1 <&3" 2>/dev/null | tr -d '\r')
    begin dovecot-wrong-protocol-smtp-on-imap
    perr wd1 "$P:$DV_IMAP does not speak SMTP: it sent \"${greet:0:80}\"" starttls \
        "127.0.0.1:$DV_IMAP" --starttls smtp
    end_test
    begin dovecot-wrong-protocol-imap-on-pop3
    greet=$(timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$DV_POP3; head -n1 <&3" 2>/dev/null | tr -d '\r')
    perr wd2 "$P:$DV_POP3 does not speak IMAP: it sent \"${greet:0:80}\"" starttls \
        "127.0.0.1:$DV_POP3" --starttls imap
    end_test
    begin dovecot-wrong-protocol-pop3-on-imap
    greet=$(timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$DV_IMAP; head -n1 <&3" 2>/dev/null | tr -d '\r')
    perr wd3 "$P:$DV_IMAP does not speak POP3: it sent \"${greet:0:80}\"" starttls \
        "127.0.0.1:$DV_IMAP" --starttls pop3
    end_test
    begin dovecot-implicit-tls-port-with-starttls-timeout
    perr wd4 "$P:$DV_POP3S: timed out after 1 s waiting for the POP3 greeting (an implicit-TLS port? then probe it without --starttls pop3)" \
        timeout "127.0.0.1:$DV_POP3S" --starttls pop3 --timeout 1
    end_test
}

# ---- fake servers: refusals the real daemons are not configured to give -------

cat >"$TMP/fake_mail.py" <<'PY'
# fake_mail.py MODE: a scripted plain-text mail server on 127.0.0.1 (port on
# stdout as "port N"), one connection at a time, until killed.
import socket, sys

GREET = {"smtp": "220 fake.test ESMTP ready", "imap": "* OK fake IMAP ready",
         "pop3": "+OK fake POP3 ready"}
EHLO_PLAIN = "250-fake.test\r\n250-PIPELINING\r\n250 SIZE 1000000"
EHLO_TLS = "250-fake.test\r\n250-PIPELINING\r\n250 STARTTLS"
MODES = {
    "smtp-nostarttls": ("smtp", {"EHLO": EHLO_PLAIN}),
    "smtp-refused": ("smtp", {"EHLO": EHLO_TLS,
                              "STARTTLS": "454 4.7.0 TLS not available due to local problem"}),
    "smtp-busy": ("554 5.3.2 fake.test no service right now", {}),
    "smtp-inject": ("smtp", {"EHLO": EHLO_TLS,
                             "STARTTLS": "220 2.0.0 Ready to start TLS\r\n250 injected"}),
    "imap-nostarttls": ("imap", {"CAPABILITY": "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n%s OK done"}),
    "imap-refused": ("imap", {"CAPABILITY": "* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\n%s OK done",
                              "STARTTLS": "%s NO [UNAVAILABLE] TLS is switched off"}),
    "imap-bye": ("* BYE fake IMAP too busy", {}),
    "pop3-nostls": ("pop3", {"CAPA": "+OK\r\nUSER\r\nUIDL\r\n."}),
    "pop3-refused": ("pop3", {"CAPA": "+OK\r\nSTLS\r\nUSER\r\n.", "STLS": "-ERR TLS not available"}),
    "silent": (None, {}),
}
greet, replies = MODES[sys.argv[1]]
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(16)
print("port", srv.getsockname()[1], flush=True)
while True:
    c, _ = srv.accept()
    f = c.makefile("rb")
    try:
        if greet is not None:
            c.sendall((GREET.get(greet, greet) + "\r\n").encode())
        for raw in f:
            words = raw.decode(errors="replace").strip().split()
            if not words:
                continue
            tag = ""
            if sys.argv[1].startswith("imap"):
                tag, words = words[0], words[1:]
            r = replies.get(words[0].upper() if words else "")
            if r is None:
                c.sendall(("%s BAD unknown\r\n" % tag if tag else "500 unknown\r\n").encode())
                continue
            c.sendall(((r % tag if "%s" in r else r) + "\r\n").encode())
    except OSError:
        pass
    finally:
        f.close()
        c.close()
PY

# fake_case NAME MODE PROTO EXPECTED-MESSAGE [KIND]
fake_case() {
    local name=$1 mode=$2 proto=$3 msg=$4 kind=${5:-starttls}
    begin "$name"
    SRV_ENV=()
    if start_port_server "$name-srv" "$PYTHON" "$TMP/fake_mail.py" "$mode"; then
        perr "$name" "${msg//@PORT@/$SRV_PORT}" "$kind" "127.0.0.1:$SRV_PORT" --starttls "$proto" --timeout 1
        stop_server "$SRV_PID"
    else
        err "fake server $mode did not start: $(tail -n 3 "$SRV_ERR" 2>/dev/null | tr '\n' ' ')"
    fi
    end_test
}

# ---- run --------------------------------------------------------------------------

echo "    postfix $(dpkg-query -W -f='${Version}' postfix 2>/dev/null), dovecot $DOVECOT_VERSION$(dovecot_24 && echo ' (2.4 syntax)')"
postfix_cases legacy "$LEGACY_CNF"
postfix_cases preload "$EMS_CNF"
dovecot_cases legacy "$LEGACY_CNF"
dovecot_cases preload "$EMS_CNF"

fake_case fake-smtp-no-starttls smtp-nostarttls smtp \
    "$P:@PORT@: the SMTP server does not offer STARTTLS (not in its EHLO reply)"
fake_case fake-smtp-starttls-refused smtp-refused smtp \
    "$P:@PORT@: the SMTP server refused STARTTLS: \"454 4.7.0 TLS not available due to local problem\""
fake_case fake-smtp-session-refused smtp-busy smtp \
    "$P:@PORT@: the SMTP server refused the session: \"554 5.3.2 fake.test no service right now\""
fake_case fake-smtp-data-after-go-ahead smtp-inject smtp \
    "$P:@PORT@: the SMTP server sent data after its 220 reply to STARTTLS"
fake_case fake-imap-no-starttls imap-nostarttls imap \
    "$P:@PORT@: the IMAP server does not offer STARTTLS (not in its CAPABILITY reply)"
fake_case fake-imap-starttls-refused imap-refused imap \
    "$P:@PORT@: the IMAP server refused STARTTLS: \"eg2 NO [UNAVAILABLE] TLS is switched off\""
fake_case fake-imap-session-refused imap-bye imap \
    "$P:@PORT@: the IMAP server refused the session: \"* BYE fake IMAP too busy\""
fake_case fake-pop3-no-stls pop3-nostls pop3 \
    "$P:@PORT@: the POP3 server does not offer STLS (not in its CAPA reply)"
fake_case fake-pop3-stls-refused pop3-refused pop3 \
    "$P:@PORT@: the POP3 server refused STLS: \"-ERR TLS not available\""
fake_case fake-silent-smtp-timeout silent smtp \
    "$P:@PORT@: timed out after 1 s waiting for the SMTP greeting (an implicit-TLS port? then probe it without --starttls smtp)" timeout
fake_case fake-silent-imap-timeout silent imap \
    "$P:@PORT@: timed out after 1 s waiting for the IMAP greeting (an implicit-TLS port? then probe it without --starttls imap)" timeout

summary
[ "$NFAIL" -eq 0 ] && [ "$NSKIP" -eq 0 ]
