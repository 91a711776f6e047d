#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `emsguard probe` against two servers it starts on 127.0.0.1: a stock legacy
# OpenSSL server (`openssl s_server`, Extended Master Secret switched off) and
# the same stock s_server with emsguard (libemsguard-preload.so), and the two
# reports side by side (one below the other when the terminal is narrower
# than two reports).
#
#   BUILD=build bash demo/probe-demo.sh
#
# Exit status: 0 when both reports came out as expected (legacy: findings,
# exit 1; emsguard: compliant, exit 0), 1 otherwise, 2 when a server could
# not start.  Environment: BUILD (default build), OPENSSL, COLUMNS.
set -u

OPENSSL=${OPENSSL:-openssl}
HERE=$(cd "$(dirname "$0")" && pwd)

TO=20
SERVER_PIDS=()
# shellcheck source=test/lib.sh
. "$HERE/../test/lib.sh"
script_start probe-demo
EMSG=$BDIR/tools/emsguard

for f in "$EMSG" "$PRELOAD"; do
    if [ ! -e "$f" ]; then
        echo "probe-demo: $f not built (make BUILD_DIR=... all)" >&2
        exit 2
    fi
done
make_fixtures || { echo "probe-demo: cannot make a certificate" >&2; exit 2; }

# A sanitizer build's preload library needs libasan loaded first.
ASAN_RT=$(ldd "$PRELOAD" 2>/dev/null | awk '$1 ~ /^libasan\.so/ { print $3; exit }')
if [ -n "$ASAN_RT" ]; then
    PRE_ENV=(LD_PRELOAD="$ASAN_RT:$PRELOAD" ASAN_OPTIONS=detect_leaks=0)
else
    PRE_ENV=(LD_PRELOAD="$PRELOAD")
fi

run_probe() { # NAME PORT: report in $TMP/NAME.txt, exit status in $TMP/NAME.rc
    "$EMSG" probe "127.0.0.1:$2" --timeout 10 >"$TMP/$1.txt" 2>"$TMP/$1.err"
    echo $? >"$TMP/$1.rc"
    cat "$TMP/$1.err" >>"$TMP/$1.txt"
}

if ! stock_server srv-legacy "$LEGACY_CNF"; then
    echo "probe-demo: the legacy s_server did not start: $(tail -n 2 "$SRV_ERR")" >&2
    exit 2
fi
LEGACY_PORT=$SRV_PORT
SRV_ENV=(OPENSSL_CONF="$EMS_CNF" "${PRE_ENV[@]}")
if ! start_server srv-emsguard "$OPENSSL" s_server -accept @PORT@ -cert "$CERT" -key "$KEY" \
        -www -quiet; then
    echo "probe-demo: the emsguard s_server did not start: $(tail -n 2 "$SRV_ERR")" >&2
    exit 2
fi
EG_PORT=$SRV_PORT

run_probe legacy "$LEGACY_PORT"
run_probe emsguard "$EG_PORT"

LEFT="stock openssl s_server, EMS off (legacy)"
RIGHT="the same s_server + libemsguard-preload.so"
W=80
cols=${COLUMNS:-}
if [ -z "$cols" ] && [ -t 1 ]; then
    cols=$(tput cols 2>/dev/null || echo 80)
fi
cols=${cols:-$((2 * W + 3))}

if [ "$cols" -ge $((2 * W + 3)) ]; then
    {
        printf '%s\n' "== $LEFT" "$(printf '%*s' ${#LEFT} '' | tr ' ' '=')===" ""
        cat "$TMP/legacy.txt"
        echo "(exit status $(cat "$TMP/legacy.rc"))"
    } >"$TMP/left"
    {
        printf '%s\n' "== $RIGHT" "$(printf '%*s' ${#RIGHT} '' | tr ' ' '=')===" ""
        cat "$TMP/emsguard.txt"
        echo "(exit status $(cat "$TMP/emsguard.rc"))"
    } >"$TMP/right"
    awk -v w=$W 'NR == FNR { l[FNR] = $0; n = FNR; next }
        { r[FNR] = $0; m = FNR }
        END { k = n > m ? n : m
              for (i = 1; i <= k; i++) printf "%-*s | %s\n", w, l[i], r[i] }' \
        "$TMP/left" "$TMP/right"
else
    echo "== $LEFT"
    echo
    cat "$TMP/legacy.txt"
    echo "(exit status $(cat "$TMP/legacy.rc"))"
    echo
    echo "== $RIGHT"
    echo
    cat "$TMP/emsguard.txt"
    echo "(exit status $(cat "$TMP/emsguard.rc"))"
fi

ok=1
if [ "$(cat "$TMP/legacy.rc")" != 1 ] || ! grep -q '^verdict: NOT safe' "$TMP/legacy.txt"; then
    echo "probe-demo: UNEXPECTED: the legacy server's report is not 'findings' (exit 1)" >&2
    ok=0
fi
if [ "$(cat "$TMP/emsguard.rc")" != 0 ] || ! grep -q '^verdict: Safe' "$TMP/emsguard.txt"; then
    echo "probe-demo: UNEXPECTED: the emsguard server's report is not 'compliant' (exit 0)" >&2
    ok=0
fi
[ $ok = 1 ]
