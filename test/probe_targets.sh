#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `emsguard probe --targets FILE [--parallel N]`: estate scans against local
# peers on 127.0.0.0/8.
#
#   BUILD=build bash test/probe_targets.sh
#   BUILD=build-san SANITIZE=1 bash test/probe_targets.sh
#
#   01 a mixed file: a legacy s_server (findings), a preloaded s_server
#      (compliant, listed twice, once on 127.0.0.2), a closed port (error),
#      a --starttls smtp line and a --sni line, comments, blank lines and
#      malformed lines: one JSON object per target on its own line (JSON
#      Lines), each valid against docs/probe.schema.json, with scan.line;
#      malformed lines reported with their number; summary; exit 1
#   02 the same file as text: one report per target, errors on stdout too
#   03 exit status: only compliant -> 0; compliant + error -> 2;
#      compliant + malformed line -> 2; findings + error -> 1
#   04 a silent host does not hold up the others (--parallel 4): the fast
#      targets finish first, the silent one after --timeout
#   05 the per-target deadline (30 x --timeout) ends an endless DHE run: a
#      finding "stopped by the target's deadline", after about the deadline
#      (whether it falls between two handshakes or inside one)
#   06 progress line on a terminal (script(1) gives the probe a pty)
#   07 Ctrl-C: the summary of what finished, exit 130, whole JSON lines only
#   08 --targets - (stdin), usage errors, unreadable file
#
# Every case prints `PASS name` or `FAIL name: details`; the last line is
# `N passed, M failed, K skipped`.  Environment: BUILD, SANITIZE, OPENSSL,
# KEEP_TMP=1, VERBOSE=1.
set -u

OPENSSL=${OPENSSL:-openssl}
HERE=$(cd "$(dirname "$0")" && pwd)

TO=20            # timeout for openssl helpers, seconds
PTO=300          # bound on one whole scan, seconds
SERVER_PIDS=()
# shellcheck source=test/lib.sh
. "$HERE/lib.sh"
script_start probe-targets
EMSG=$BDIR/tools/emsguard
PEER=$BDIR/test/probe_peer
SCHEMA=$ROOT/docs/probe.schema.json

unset EMSGUARD_CONF EMSGUARD_DEBUG

for f in "$EMSG" "$PEER" "$PRELOAD"; do
    [ -e "$f" ] || prereq_fail "$f not built (make BUILD_DIR=... all tests)"
done
command -v "$OPENSSL" >/dev/null 2>&1 || prereq_fail "openssl not installed"
command -v script >/dev/null 2>&1 || prereq_fail "script(1) not installed (bsdutils)"
require_jsonschema
set_preload_env
make_fixtures || prereq_fail "cannot make a certificate"

# lines.py SCHEMA FILE: validates every line of FILE (JSON Lines) against the
# schema; prints one line per object: "LINE STATUS EXIT KIND DURATION_MS
# HOST:PORT STARTTLS SNI", or "BAD ..." for a problem.
cat >"$TMP/lines.py" <<'PY'
import json, sys
import jsonschema

v = jsonschema.Draft202012Validator(json.load(open(sys.argv[1])))
for n, raw in enumerate(open(sys.argv[2], encoding="utf-8"), 1):
    try:
        d = json.loads(raw)
    except Exception as e:
        print("BAD output line %d is not JSON: %s" % (n, e))
        continue
    for err in v.iter_errors(d):
        print("BAD output line %d: schema: %s at /%s" % (n, err.message, "/".join(str(p) for p in err.path)))
    s = d.get("scan") or {}
    t = d.get("target") or {}
    print(s.get("line"), d.get("status"), d.get("exit_code"), (d.get("error") or {}).get("kind", "-"),
          s.get("duration_ms"), "%s:%s" % (t.get("host"), t.get("port")), t.get("starttls"), t.get("sni"))
PY

# scan NAME ARGS...: the scan, bounded; stdout NAME.out, stderr NAME.err, SRC.
scan() {
    local name=$1
    shift
    timeout $PTO "$EMSG" probe "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
    SRC=$?
    artifact "$TMP/$name.out" "$TMP/$name.err"
    san_clean "$TMP/$name.err"
}

# lines NAME: lines.py of NAME.out into NAME.lines; BAD lines become errors.
lines() {
    "$PYTHON" "$TMP/lines.py" "$SCHEMA" "$TMP/$1.out" >"$TMP/$1.lines" 2>&1
    artifact "$TMP/$1.lines"
    while IFS= read -r l; do
        case "$l" in BAD*) err "$l" ;; esac
    done <"$TMP/$1.lines"
}

# field NAME TARGETLINE COLUMN: a column of lines.py's output for a file line
field() { awk -v l="$2" -v c="$3" '$1 == l { print $c; exit }' "$TMP/$1.lines"; }

closed_port() {
    local c
    for _ in 1 2 3 4 5 6 7 8; do
        c=$(random_port)
        port_listening "$c" || { echo "$c"; return; }
    done
}

# ---- servers: legacy and preloaded s_server, a silent peer, a fake SMTP server

LEG_UP=0
if stock_server legacy "$LEGACY_CNF"; then
    LEG_PORT=$SRV_PORT
    LEG_UP=1
fi
SRV_ENV=(OPENSSL_CONF="$EMS_CNF" "${PRE_ENV[@]}")
PRE_UP=0
if start_server preloaded "$OPENSSL" s_server -accept @PORT@ -cert "$CERT" -key "$KEY" -www -quiet; then
    PRE_PORT=$SRV_PORT
    PRE_UP=1
fi
SRV_ENV=()
HANG_UP=0
if start_server hang "$PEER" hang @PORT@; then
    HANG_PORT=$SRV_PORT
    HANG_UP=1
fi
CLOSED=$(closed_port)
# An SMTP server without STARTTLS: the --starttls smtp line's error.
cat >"$TMP/nostarttls.py" <<'PY'
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(16)
print("port", s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    f = c.makefile("rb")
    c.sendall(b"220 fake.test ESMTP\r\n")
    for raw in f:
        if raw.upper().startswith(b"EHLO"):
            c.sendall(b"250-fake.test\r\n250 PIPELINING\r\n")
        else:
            c.sendall(b"500 unknown\r\n")
    f.close()
    c.close()
PY
SMTP_UP=0
if start_port_server nostarttls "$PYTHON" "$TMP/nostarttls.py"; then
    SMTP_PORT=$SRV_PORT
    SMTP_UP=1
fi

servers_up() {
    [ "$LEG_UP" = 1 ] || err "legacy s_server did not start"
    [ "$PRE_UP" = 1 ] || err "preloaded s_server did not start"
    [ "$HANG_UP" = 1 ] || err "silent peer did not start"
    [ "$SMTP_UP" = 1 ] || err "fake SMTP server did not start"
    [ "$LEG_UP$PRE_UP$HANG_UP$SMTP_UP" = 1111 ]
}

# ---- 01/02: the mixed file ---------------------------------------------------------

cat >"$TMP/estate.txt" <<EOF
# an estate: one target per line
127.0.0.1:${LEG_PORT:-1}
127.0.0.1:${PRE_PORT:-1}     # the same server twice, the second time on 127.0.0.2
127.0.0.2:${PRE_PORT:-1} --sni www.example.test

127.0.0.1:$CLOSED
127.0.0.1:${SMTP_PORT:-1} --starttls smtp
127.0.0.1:99999
127.0.0.1:${PRE_PORT:-1} --starttls xmpp
127.0.0.1:${PRE_PORT:-1} --bogus
   # indented comment
EOF

begin 01-mixed-file-json-lines
if servers_up; then
    scan 01 --targets "$TMP/estate.txt" --json --parallel 3 --timeout 10
    artifact "$TMP/estate.txt"
    expect_eq "exit status (a target with findings)" "$SRC" 1
    lines 01
    expect_eq "JSON lines (one per target)" "$(wc -l <"$TMP/01.out" | tr -d ' ')" 5
    expect_eq "file lines of the objects" "$(awk '{ print $1 }' "$TMP/01.lines" | sort -n | tr '\n' ' ')" "2 3 4 6 7 "
    expect_eq "line 2 (legacy)" "$(field 01 2 2)/$(field 01 2 3)" findings/1
    expect_eq "line 3 (preloaded)" "$(field 01 3 2)/$(field 01 3 3)" compliant/0
    expect_eq "line 4 (preloaded, 127.0.0.2, --sni)" "$(field 01 4 2)/$(field 01 4 6)/$(field 01 4 8)" \
        "compliant/127.0.0.2:${PRE_PORT:-1}/www.example.test"
    expect_eq "line 6 (closed port)" "$(field 01 6 2)/$(field 01 6 4)" error/refused
    expect_eq "line 7 (--starttls smtp, no STARTTLS)" "$(field 01 7 2)/$(field 01 7 4)/$(field 01 7 7)" error/starttls/smtp
    expect_grep "malformed line 8 (port)" "^emsguard probe: .*estate\\.txt:8: bad target '127\\.0\\.0\\.1:99999' \\(HOST\\[:PORT\\], \\[IPv6\\]:PORT\\); line skipped$" "$TMP/01.err"
    expect_grep "malformed line 9 (--starttls xmpp)" "^emsguard probe: .*estate\\.txt:9: --starttls wants one of ftp, smtp, imap, pop3, not 'xmpp'; line skipped$" "$TMP/01.err"
    expect_grep "malformed line 10 (--bogus)" "^emsguard probe: .*estate\\.txt:10: unknown option '--bogus' \\(only --starttls and --sni\\); line skipped$" "$TMP/01.err"
    expect_grep "summary" "^summary: 5 of 5 targets in [0-9.]+ m?s: 2 compliant, 1 with findings, 2 errors; 3 malformed lines skipped$" "$TMP/01.err"
    expect_grep "slowest targets" "^slowest: +[0-9.]+ m?s  127\\.0\\.0\\.[12]:[0-9]+.* \\(.*estate\\.txt:[0-9]+\\)$" "$TMP/01.err"
    expect_eq "slowest lines (at most 5)" "$(grep -cE '^(slowest:|        ) +[0-9.]+ m?s  ' "$TMP/01.err")" 5
    expect_nogrep "no progress line without a terminal" "ETA" "$TMP/01.err"
fi
end_test

begin 02-mixed-file-text
if servers_up; then
    scan 02 --targets "$TMP/estate.txt" --parallel 2 --timeout 10
    expect_eq "exit status" "$SRC" 1
    expect_eq "reports (one per target)" "$(grep -c '^emsguard probe: 127\.0\.0\.[12]:' "$TMP/02.out")" 5
    expect_eq "verdict lines" "$(grep -c '^verdict: ' "$TMP/02.out")" 3
    expect_grep "the closed port's report" "^error \\(refused\\): 127\\.0\\.0\\.1:$CLOSED: connection refused$" "$TMP/02.out"
    expect_grep "the SMTP line's report" "^emsguard probe: 127\\.0\\.0\\.1:${SMTP_PORT:-1} \\(SMTP, STARTTLS\\)$" "$TMP/02.out"
    expect_grep "its error" "^error \\(starttls\\): 127\\.0\\.0\\.1:${SMTP_PORT:-1}: the SMTP server does not offer STARTTLS \\(not in its EHLO reply\\)$" "$TMP/02.out"
    expect_nogrep "errors are reports, not stderr lines" "connection refused" "$TMP/02.err"
    expect_grep "summary" "^summary: 5 of 5 targets" "$TMP/02.err"
fi
end_test

# ---- 03: exit status ------------------------------------------------------------------

begin 03-exit-status-rules
if servers_up; then
    printf '127.0.0.1:%s\n127.0.0.2:%s\n' "$PRE_PORT" "$PRE_PORT" >"$TMP/ok.txt"
    scan 03a --targets "$TMP/ok.txt" --json
    expect_eq "only compliant targets" "$SRC" 0
    expect_grep "summary" "^summary: 2 of 2 targets in [0-9.]+ m?s: 2 compliant, 0 with findings, 0 errors$" "$TMP/03a.err"
    printf '127.0.0.1:%s\n127.0.0.1:%s\n' "$PRE_PORT" "$CLOSED" >"$TMP/err.txt"
    scan 03b --targets "$TMP/err.txt" --json
    expect_eq "compliant + an error" "$SRC" 2
    printf '127.0.0.1:%s\nno-port-here:\n' "$PRE_PORT" >"$TMP/bad.txt"
    scan 03c --targets "$TMP/bad.txt" --json
    expect_eq "compliant + a malformed line" "$SRC" 2
    expect_grep "malformed line 2" "bad\\.txt:2: bad target 'no-port-here:'" "$TMP/03c.err"
    printf '127.0.0.1:%s\n127.0.0.1:%s\nno-port-here:\n' "$LEG_PORT" "$CLOSED" >"$TMP/mix.txt"
    scan 03d --targets "$TMP/mix.txt" --json
    expect_eq "findings + an error + a malformed line" "$SRC" 1
    : >"$TMP/empty.txt"
    scan 03e --targets "$TMP/empty.txt"
    expect_eq "an empty file" "$SRC" 0
    expect_grep "summary of nothing" "^summary: 0 of 0 targets" "$TMP/03e.err"
fi
end_test

# ---- 04: a silent host does not hold up the others -----------------------------------

begin 04-silent-host-does-not-hold-up-others
if servers_up; then
    {
        echo "127.0.0.1:$HANG_PORT"
        for a in 1 2 3; do echo "127.0.0.$a:$PRE_PORT"; done
    } >"$TMP/slow.txt"
    t0=$(date +%s%N)
    scan 04 --targets "$TMP/slow.txt" --json --parallel 4 --timeout 4
    t1=$(date +%s%N)
    lines 04
    expect_eq "exit status (an error)" "$SRC" 2
    expect_eq "the silent target finished last" "$(tail -n1 "$TMP/04.lines" | awk '{ print $1, $2, $4 }')" "1 error timeout"
    d=$(field 04 1 5)
    expect_ge "the silent target took its --timeout (ms)" "${d:-0}" 3900
    ms=$(((t1 - t0) / 1000000))
    echo "    04: scan with one silent host (--timeout 4, --parallel 4): $ms ms; silent target ${d:-?} ms"
    # serially it would be 4 s plus the others; in parallel about 4 s
    [ "$ms" -lt 30000 ] || err "the scan took $ms ms"
fi
end_test

# ---- 05: per-target deadline ---------------------------------------------------------

begin 05-per-target-deadline
SRV_ENV=()
if start_server 05-dhe "$PEER" dhe @PORT@ --correct; then
    echo "127.0.0.1:$SRV_PORT" >"$TMP/dhe.txt"
    # --timeout 0.4: a deadline of 12 s; 100 leading-zero secrets would need
    # about 25600 handshakes, far more than 12 s allow.
    scan 05 --targets "$TMP/dhe.txt" --json --timeout 0.4 --dhe-events 100 --max-handshakes 10000000
    lines 05
    expect_eq "exit status (undetermined: a finding)" "$SRC" 1
    d=$(field 05 1 5)
    expect_ge "duration (ms) reached the deadline" "${d:-0}" 12000
    [ "${d:-0}" -lt 30000 ] 2>/dev/null || err "duration ${d:-?} ms: the deadline did not stop the run"
    det=$("$PYTHON" -c 'import json,sys; d=json.loads(open(sys.argv[1]).readline()); print([c["observed"]+"|"+c["detail"] for c in d["checks"] if c["id"]=="dhe.leading_zero"][0])' "$TMP/05.out" 2>&1)
    case "$det" in
    "undetermined|only "*" of 100 leading-zero secrets in "*" handshakes (stopped by the target's deadline)") ;;
    *) err "dhe.leading_zero row: $det" ;;
    esac
    echo "    05: deadline run: ${d:-?} ms, $det"
    stop_server "$SRV_PID"
else
    server_up_or_fail 05-dhe
fi
end_test

# ---- 06: progress line on a terminal ----------------------------------------------------

begin 06-progress-line-on-a-terminal
if servers_up; then
    printf '127.0.0.1:%s\n127.0.0.2:%s\n127.0.0.1:%s\n' "$PRE_PORT" "$PRE_PORT" "$HANG_PORT" >"$TMP/tty.txt"
    # script(1): the probe's stderr (and stdout) is a pty.
    timeout $PTO script -qec "'$EMSG' probe --targets '$TMP/tty.txt' --json --parallel 1 --timeout 2" \
        /dev/null >"$TMP/06.tty" 2>&1
    SRC=$?
    artifact "$TMP/06.tty"
    expect_eq "exit status" "$SRC" 2
    expect_grep "progress before any target finished" $'\\[0/3\\] 0 with findings, 0 errors, ETA --' "$TMP/06.tty"
    expect_grep "progress with an ETA" $'\\[2/3\\] 0 with findings, 0 errors, ETA [0-9.]+ m?s' "$TMP/06.tty"
    expect_grep "summary" "summary: 3 of 3 targets" "$TMP/06.tty"
fi
end_test

# ---- 07: Ctrl-C ---------------------------------------------------------------------------

begin 07-ctrl-c-prints-the-summary
if servers_up; then
    {
        echo "127.0.0.1:$PRE_PORT"
        echo "127.0.0.2:$PRE_PORT"
        for _ in 1 2 3 4; do echo "127.0.0.1:$HANG_PORT"; done
    } >"$TMP/int.txt"
    "$EMSG" probe --targets "$TMP/int.txt" --json --parallel 3 --timeout 60 \
        >"$TMP/07.out" 2>"$TMP/07.err" &
    pid=$!
    for ((i = 0; i < 600; i++)); do
        [ "$(wc -l <"$TMP/07.out")" -ge 2 ] && break
        sleep 0.05
    done
    sleep 0.3
    kill -INT "$pid"
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        err "still running 5 s after SIGINT"
        kill -KILL "$pid"
    fi
    wait "$pid"
    SRC=$?
    artifact "$TMP/07.out" "$TMP/07.err"
    expect_eq "exit status" "$SRC" 130
    expect_grep "summary of what finished" "^summary \\(interrupted\\): 2 of 6 targets in [0-9.]+ m?s: 2 compliant, 0 with findings, 0 errors$" "$TMP/07.err"
    lines 07
    expect_eq "whole JSON lines only" "$(wc -l <"$TMP/07.out" | tr -d ' ')" 2
    san_clean "$TMP/07.err"
fi
end_test

# ---- 08: stdin, usage, unreadable file -----------------------------------------------------

begin 08-stdin-usage-and-unreadable-file
if servers_up; then
    printf '127.0.0.1:%s\n' "$PRE_PORT" | timeout $PTO "$EMSG" probe --targets - --json >"$TMP/08.out" 2>"$TMP/08.err"
    expect_eq "--targets - exit status" "$?" 0
    expect_grep "stdin summary" "^summary: 1 of 1 targets" "$TMP/08.err"
    artifact "$TMP/08.out" "$TMP/08.err"
fi
u() {
    local want=$1
    shift
    "$EMSG" probe "$@" >"$TMP/08u.out" 2>"$TMP/08u.err"
    expect_eq "exit status of: $*" "$?" 2
    expect_grep "message of: $*" "^emsguard probe: $want\$" "$TMP/08u.err"
}
u "a target \\('127\\.0\\.0\\.1:1'\\) and --targets: give one or the other" 127.0.0.1:1 --targets "$TMP/ok.txt"
u "--parallel needs --targets FILE" 127.0.0.1:1 --parallel 4
u "--sni with --targets: put --sni NAME on the lines of the file" --targets "$TMP/ok.txt" --sni x
u "--parallel wants a number from 1 to 256, not '0'" --targets "$TMP/ok.txt" --parallel 0
u "cannot read --targets $TMP/missing\\.txt: No such file or directory" --targets "$TMP/missing.txt"
end_test

summary
[ "$NFAIL" -eq 0 ] && [ "$NSKIP" -eq 0 ]
