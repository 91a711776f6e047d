#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `emsguard stats` against a running preloaded Apache httpd (issue 20): the
# live counters the Apache processes publish add up to what this script's
# clients did, while Apache runs.
#
#   BUILD=build SANITIZE= bash test/stats_apache.sh
#   BUILD=build-san SANITIZE=1 bash test/stats_apache.sh
#
# Two Apache httpd 2.4 (mod_ssl, prefork MPM, 3 children each, TLS 1.2,
# foreground) on free 127.0.0.1 ports with throwaway configs, sharing one
# SSLSessionTicketKeyFile:
#   policy  LD_PRELOAD=libemsguard-preload.so, EMSGUARD_STATS_DIR=$TMP/stats
#   stock   no preload: it issues tickets to legacy clients
# The clients (openssl s_client -tls1_2, one connection each):
#   EMS     full handshake on policy, then a resumption there        (x4)
#   legacy  full handshake on stock, then offers that ticket to
#           policy: refused, full handshake instead                   (x3)
#           (after some starts Apache never accepts the other member's
#           tickets, stock or not: then there is nothing to refuse; the
#           refusals counted must equal those the policy logged)
#   legacy  full handshake on policy, then a resumption attempt:
#           no ticket was issued, full handshake again                (x2)
# so policy did 4 + 3 + 2*2 = 11 full handshakes (7 without EMS), 4
# resumptions and refused 3 legacy sessions.  `emsguard stats --json` summed
# over policy's processes must say exactly that (text and --prometheus must
# agree), every file must be 0640 or stricter and belong to a live Apache
# process, and after Apache stops no file is left and no process is listed.
#
# Sanitizer builds: libasan preloaded in front of the preload library, as in
# test/vsftpd.sh; any sanitizer report fails.  A missing apache2, its modules
# or openssl is a FAIL.  Environment: BUILD, SANITIZE, OPENSSL, APACHE
# (default /usr/sbin/apache2), APACHE_MODULES (default
# /usr/lib/apache2/modules), KEEP_TMP=1, VERBOSE=1.
set -u

BUILD=${BUILD:-build}
OPENSSL=${OPENSSL:-openssl}
APACHE=${APACHE:-/usr/sbin/apache2}
APACHE_MODULES=${APACHE_MODULES:-/usr/lib/apache2/modules}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
case "$BUILD" in
/*) BDIR=$BUILD ;;
*) BDIR=$ROOT/$BUILD ;;
esac
PRELOAD=$BDIR/libemsguard-preload.so
EMSGUARD_CLI=$BDIR/tools/emsguard

TO=20
SERVER_PIDS=()
# shellcheck source=test/lib.sh
. "$HERE/lib.sh"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/eg-stats-apache.XXXXXX") || exit 2
unset EMSGUARD_CONF EMSGUARD_DEBUG OPENSSL_CONF EMSGUARD_STATS_DIR

trap cleanup_servers EXIT
trap 'exit 130' INT TERM HUP

prereq_fail() {
    echo "stats_apache.sh: $1" >&2
    fail_now 00-prerequisites "$1"
    summary
    exit 1
}

for m in mod_mpm_prefork.so mod_authz_core.so mod_ssl.so mod_socache_shmcb.so; do
    [ -f "$APACHE_MODULES/$m" ] || prereq_fail "$APACHE_MODULES/$m missing (apt-get install apache2)"
done
[ -x "$APACHE" ] || prereq_fail "$APACHE missing (apt-get install apache2)"
command -v "$OPENSSL" >/dev/null || prereq_fail "$OPENSSL missing"
command -v setsid >/dev/null || prereq_fail "setsid missing (util-linux)"
[ -x "$EMSGUARD_CLI" ] || prereq_fail "$EMSGUARD_CLI missing (make all)"
[ -f "$PRELOAD" ] || prereq_fail "$PRELOAD missing (make all)"
set_preload_env

STATS=$TMP/stats
mkdir -p "$STATS" "$TMP/pki"
chmod 0750 "$STATS"
CERT=$TMP/pki/cert.pem
KEY=$TMP/pki/key.pem
"$OPENSSL" req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -keyout "$KEY" -out "$CERT" >/dev/null 2>&1 \
    || prereq_fail "cannot make a certificate"
head -c 48 /dev/urandom >"$TMP/pki/tickets.key"
LEGACY_CNF=$TMP/legacy.cnf
write_cnf "$LEGACY_CNF" "-ExtendedMasterSecret"
# The preloaded Apache's policy: the defaults, every event logged (into its
# error log), so that each refusal can be matched with its count.
cat >"$TMP/emsguard.cnf" <<EOF
openssl_conf = init
[init]
providers = provs
[provs]
default = def
emsguard = eg
[def]
activate = 1
[eg]
activate = 1
EventLogging = 7
EOF

RUN_USER=$(id -un)
RUN_GROUP=$(id -gn)
if [ "$(id -u)" = 0 ]; then
    id www-data >/dev/null 2>&1 && RUN_USER=www-data RUN_GROUP=www-data
    chmod 0755 "$TMP" "$TMP/pki"
    chmod 0644 "$KEY"
fi

# start_apache NAME PRELOADED: Apache in $TMP/NAME on a free port (APORT),
# its pid in APID; 1 if it did not start.
start_apache() {
    local name=$1 preloaded=$2 dir=$TMP/$1 i e
    mkdir -p "$dir/logs" "$dir/run" "$dir/htdocs"
    echo served >"$dir/htdocs/index.html"
    e=()
    [ "$preloaded" = 1 ] && e=("${PRE_ENV[@]}" EMSGUARD_STATS_DIR="$STATS" EMSGUARD_CONF="$TMP/emsguard.cnf")
    for _ in 1 2 3 4 5 6; do
        APORT=$(random_port)
        port_listening "$APORT" && continue
        cat >"$dir/httpd.conf" <<EOF
ServerRoot $dir
ServerName localhost
DefaultRuntimeDir $dir/run
PidFile $dir/run/httpd.pid
Mutex file:$dir/run default
Listen 127.0.0.1:$APORT
User $RUN_USER
Group $RUN_GROUP
LoadModule mpm_prefork_module $APACHE_MODULES/mod_mpm_prefork.so
LoadModule authz_core_module $APACHE_MODULES/mod_authz_core.so
LoadModule socache_shmcb_module $APACHE_MODULES/mod_socache_shmcb.so
LoadModule ssl_module $APACHE_MODULES/mod_ssl.so
StartServers 3
MinSpareServers 3
MaxSpareServers 3
MaxRequestWorkers 8
ErrorLog $dir/logs/error.log
LogLevel warn ssl:info
DocumentRoot $dir/htdocs
SSLSessionCache shmcb:$dir/run/ssl_scache(512000)
SSLSessionTicketKeyFile $TMP/pki/tickets.key
SSLRandomSeed startup builtin
<VirtualHost 127.0.0.1:$APORT>
    SSLEngine on
    SSLProtocol -all +TLSv1.2
    SSLCertificateFile $CERT
    SSLCertificateKeyFile $KEY
</VirtualHost>
EOF
        # Its own session: at shutdown prefork signals its whole process group.
        env "${e[@]}" setsid "$APACHE" -d "$dir" -f "$dir/httpd.conf" -DFOREGROUND \
            </dev/null >"$dir/stdout" 2>"$dir/stderr" &
        APID=$!
        SERVER_PIDS+=("$APID")
        for ((i = 0; i < 200; i++)); do
            kill -0 "$APID" 2>/dev/null || break
            port_listening "$APORT" && return 0
            sleep 0.05
        done
        kill -0 "$APID" 2>/dev/null || continue
        return 1
    done
    return 1
}

# connect PORT LOGNAME [s_client options...]: one TLS 1.2 connection.
connect() {
    local port=$1 log=$2
    shift 2
    echo | timeout "$TO" "$OPENSSL" s_client -connect "127.0.0.1:$port" -tls1_2 \
        -servername localhost "$@" >"$TMP/$log" 2>&1
}
reused() { grep -q '^Reused, ' "$TMP/$1" && echo yes || echo no; }
ems_of() { grep -q '^ *Extended master secret: yes' "$TMP/$1" && echo yes || echo no; }

begin 01-apache-starts
start_apache policy 1 || err "the preloaded Apache did not start"
PPORT=$APORT PPID_=$APID
start_apache stock 0 || err "the stock Apache did not start"
SPORT=$APORT
artifact "$TMP/policy/stderr" "$TMP/policy/logs/error.log" "$TMP/stock/logs/error.log"
sleep 0.5
CHILDREN=$(ps -o pid= --ppid "$PPID_" | wc -l)
expect_ge "children of the preloaded Apache" "$CHILDREN" 2
end_test
[ "$NFAIL" = 0 ] || { summary; exit 1; }

begin 02-clients
for i in 1 2 3 4; do
    connect "$PPORT" "ems$i-full" -sess_out "$TMP/ems$i.sess" || err "EMS client $i: full handshake failed"
    expect_eq "EMS client $i: full handshake uses EMS" "$(ems_of "ems$i-full")" yes
    connect "$PPORT" "ems$i-again" -sess_in "$TMP/ems$i.sess" || err "EMS client $i: resumption failed"
    expect_eq "EMS client $i resumed" "$(reused "ems$i-again")" yes
done
for i in 1 2 3; do
    OPENSSL_CONF=$LEGACY_CNF connect "$SPORT" "fleet$i-stock" -sess_out "$TMP/fleet$i.sess" \
        || err "legacy client $i: handshake on stock failed"
    expect_eq "legacy client $i: no EMS" "$(ems_of "fleet$i-stock")" no
    grep -q 'TLS session ticket:' "$TMP/fleet$i-stock" || err "stock Apache issued no ticket to legacy client $i"
    OPENSSL_CONF=$LEGACY_CNF connect "$PPORT" "fleet$i-policy" -sess_in "$TMP/fleet$i.sess" \
        || err "legacy client $i: handshake on policy failed"
    expect_eq "legacy client $i's stock ticket resumed on policy" "$(reused "fleet$i-policy")" no
done
for i in 1 2; do
    OPENSSL_CONF=$LEGACY_CNF connect "$PPORT" "legacy$i-full" -sess_out "$TMP/legacy$i.sess" \
        || err "legacy client $i: full handshake on policy failed"
    OPENSSL_CONF=$LEGACY_CNF connect "$PPORT" "legacy$i-again" -sess_in "$TMP/legacy$i.sess" \
        || err "legacy client $i: second handshake on policy failed"
    expect_eq "legacy client $i resumed on policy" "$(reused "legacy$i-again")" no
done
end_test

# The counts are published as they happen: read them while Apache runs.
begin 03-stats-match-the-clients
artifact "$TMP/stats.json" "$TMP/stats.prom" "$TMP/stats.txt" "$TMP/check.out"
"$EMSGUARD_CLI" stats --dir "$STATS" --json >"$TMP/stats.json" 2>"$TMP/stats.err" \
    || err "emsguard stats --json failed: $(cat "$TMP/stats.err")"
"$EMSGUARD_CLI" stats --dir "$STATS" --prometheus >"$TMP/stats.prom" 2>>"$TMP/stats.err" \
    || err "emsguard stats --prometheus failed"
"$EMSGUARD_CLI" stats --dir "$STATS" >"$TMP/stats.txt" 2>>"$TMP/stats.err" \
    || err "emsguard stats failed"
APACHE_PIDS="$PPID_ $(ps -o pid= --ppid "$PPID_" | tr '\n' ' ')"
cat "$TMP/policy/stderr" "$TMP/policy/logs/error.log" >"$TMP/policy-events.log" 2>/dev/null
"$PYTHON" - "$TMP/stats.json" "$TMP/stats.prom" "$TMP/stats.txt" "$APACHE_PIDS" \
    "$TMP/policy-events.log" >"$TMP/check.out" 2>&1 <<'EOF' \
    || err "$(tail -n 5 "$TMP/check.out" | tr '\n' ' ')"
import json, re, sys
doc = json.load(open(sys.argv[1]))
prom = open(sys.argv[2]).read()
text = open(sys.argv[3]).read()
apache = {int(p) for p in sys.argv[4].split()}
bad = []
procs = doc["processes"]
pids = {p["pid"] for p in procs}
if not pids <= apache:
    bad.append("processes that are not the preloaded Apache's: %s" % sorted(pids - apache))
if len(procs) < 3:
    bad.append("%d processes publish, want the parent and >= 2 children" % len(procs))
if any(p["program"] != "apache2" for p in procs):
    bad.append("programs: %s" % sorted({p["program"] for p in procs}))
log = open(sys.argv[5], errors="replace").read()
events = lambda what: len(re.findall(r"^emsguard: \w+: role=server %s" % what, log, re.M))
want = {"full_handshakes": 11, "resumptions": 4, "full_without_ems": 7,
        "refused_ems_disabled": 0, "refused_unreadable": 0, "aborted_inconsistent": 0,
        "policy_bypassed": 0, "rejected_no_ems": 0, "refused_sni_switch": 0,
        "refused_schannel": 0,
        # what the policy did, one log line each
        "refused_no_ems": events("refused resumption"),
        "tickets_withheld": events("ticket withheld"),
        "sessions_not_cached": events("session not cached")}
if want["tickets_withheld"] != 7:
    bad.append("%d 'ticket withheld' lines, want one per full handshake without EMS (7)"
               % want["tickets_withheld"])
total = doc["total"]["counters"]
for name, n in want.items():
    if total[name] != n:
        bad.append("total %s = %d, want %d" % (name, total[name], n))
for name in total:
    s = sum(p["counters"][name] for p in procs)
    if s != total[name]:
        bad.append("total %s %d is not the sum %d" % (name, total[name], s))
    m = re.search(r"^emsguard_live_%s (\d+)$" % name, prom, re.M)
    if not m or int(m.group(1)) != total[name]:
        bad.append("prometheus emsguard_live_%s: %s" % (name, m and m.group(1)))
    for p in procs:
        m = re.search(r'^emsguard_%s_total\{pid="%d",program="apache2"\} (\d+)$' % (name, p["pid"]), prom, re.M)
        if not m or int(m.group(1)) != p["counters"][name]:
            bad.append("prometheus %s of pid %d" % (name, p["pid"]))
m = re.search(r"^total over (\d+) process", text, re.M)
if not m or int(m.group(1)) != len(procs):
    bad.append("text: no 'total over %d processes'" % len(procs))
m = re.search(r"^total over .*\n(?:  .*\n)*?  full_handshakes +(\d+)$", text, re.M)
if not m or int(m.group(1)) != total["full_handshakes"]:
    bad.append("text total full_handshakes")
busy = [p["pid"] for p in procs if p["counters"]["full_handshakes"] + p["counters"]["resumptions"]]
print("processes %s; handshakes spread over %s; totals %s" % (sorted(pids), busy, total))
if want["refused_no_ems"] != 3:
    # Apache 2.4.71: after some starts a member never accepts the other's
    # tickets, between two stock ones too (a full handshake all the same).
    print("note: %d of 3 stock legacy tickets were refused as such" % want["refused_no_ems"])
for b in bad:
    print("BAD " + b)
sys.exit(1 if bad else 0)
EOF
for f in "$STATS"/*.stats; do
    [ -e "$f" ] || continue
    mode=$(stat -c %a "$f")
    [ $((8#$mode & 8#137)) = 0 ] || err "$(basename "$f") has mode $mode, wider than 0640"
done
end_test

begin 04-apache-stops-files-go
artifact "$TMP/after.json"
kill -TERM "$PPID_" 2>/dev/null
wait "$PPID_" 2>/dev/null
for ((i = 0; i < 100; i++)); do
    [ -z "$(ps -o pid= --ppid "$PPID_" 2>/dev/null)" ] && break
    sleep 0.05
done
"$EMSGUARD_CLI" stats --dir "$STATS" --json >"$TMP/after.json" 2>&1 || err "emsguard stats failed after stop"
expect_grep "no live process once Apache stopped" '^    "processes": 0,?$' "$TMP/after.json"
left=$(find "$STATS" -name '*.stats' | wc -l)
expect_eq "stats files left after Apache stopped" "$left" 0
san_clean "$TMP/policy/stderr"
san_clean "$TMP/policy/logs/error.log"
expect_nogrep "emsguard errors in the preloaded Apache" "emsguard: (error|warning: stats)" "$TMP/policy-events.log"
end_test

summary
[ "$NFAIL" = 0 ]
