#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# emsguard-bench under callgrind: instructions and simulated cache misses per
# handshake, stock against each route.  Deterministic, so it resolves far
# smaller differences than the timed run can on a shared machine, and it says
# where (per function) a route's cost goes.
#
# Each route runs as a benchmark child (the timed run's own code: one lean
# in-memory handshake, client and server in one thread, RSA/ECDSA keys from one
# file), once with N1 and once with N2 handshakes per batch; the cost per
# handshake is the difference divided by N2 - N1, so set-up, the first (cold)
# handshakes and exit cancel out.  The heap history is fixed
# (EMSGUARD_BENCH_HEAP_SEED, default 1) so stock and the routes start alike.
#
#   BUILD=build bash bench/profile.sh [suite] [mode] [variants...]
#     suite: ecdsa|rsa (default ecdsa); mode: full|session-id|ticket|all
#     variants: stock-child api-policy guard-audit guard-enforce preload all
#   PROFILE_N1 / PROFILE_N2: handshakes (default 100 / 600; full: 20 / 120)
#   PROFILE_KEEP=1 keeps the callgrind files under $BUILD/bench/profile/
#
# Prints one row per variant and mode: per-handshake Ir, I1 misses, D1 read and
# write misses, LL misses and mispredicted branches, and each route's
# difference to stock-child (absolute and %).  `... | grep -v '^#'` for the
# table only.  The per-function differences: bench/profile-diff.py A B.
set -euo pipefail
BUILD=${BUILD:-build}
BIN=$BUILD/bench/emsguard-bench
PRELOAD=$(realpath "$BUILD/libemsguard-preload.so")
MODULE=$(realpath "$BUILD/emsguard.so")
OUT=$BUILD/bench/profile
suite=${1:-ecdsa}; mode=${2:-all}; shift $(( $# > 2 ? 2 : $# )) || true
variants=${*:-stock-child api-policy preload all}
mkdir -p "$OUT"
command -v valgrind >/dev/null || { echo "profile.sh: valgrind is not installed" >&2; exit 2; }

case $suite in ecdsa) s=0 ;; rsa) s=1 ;; *) echo "profile.sh: suite ecdsa or rsa" >&2; exit 2 ;; esac
case $mode in
    full) modes="0" ;; session-id) modes="1" ;; ticket) modes="2" ;; all) modes="0 1 2" ;;
    *) echo "profile.sh: mode full, session-id, ticket or all" >&2; exit 2 ;;
esac
mode_name=(full session-id ticket)

keys=$OUT/keys.pem
if [ ! -s "$keys" ]; then
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 > "$keys.tmp" 2>/dev/null
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 >> "$keys.tmp" 2>/dev/null
    mv "$keys.tmp" "$keys"
fi
# The children's EMSGUARD_CONF, as child.c writes them.
conf() { # $1: Require
    printf 'openssl_conf = init\n[init]\nproviders = provs\nalg_section = algs\n'
    printf '[provs]\ndefault = def\nemsguard = eg\n[def]\nactivate = 1\n'
    printf '[eg]\nmodule = %s\nactivate = 1\nEventLogging = 0\nRequireExtendedMasterSecret = %s\n' "$MODULE" "$1"
    printf '[algs]\ndefault_properties = ?emsguard.guard=yes\n'
}
conf 0 > "$OUT/preload.cnf"
conf 1 > "$OUT/all.cnf"

# Prints the summary line's events of one callgrind run: Ir ... (see EVENTS).
run_one() { # variant mode n -> file
    local v=$1 m=$2 n=$3 f=$OUT/cg.$v.$suite.${mode_name[$2]}.$3
    local env=(EMSGUARD_BENCH_HEAP_SEED=${EMSGUARD_BENCH_HEAP_SEED:-1})
    case $v in
        preload) env+=(LD_PRELOAD="$PRELOAD" EMSGUARD_CONF="$OUT/preload.cnf") ;;
        all) env+=(LD_PRELOAD="$PRELOAD" EMSGUARD_CONF="$OUT/all.cnf") ;;
    esac
    printf 'run 0 %d %d %d\nquit\n' "$s" "$m" "$n" | env "${env[@]}" BUILD="$BUILD" \
        valgrind --tool=callgrind --cache-sim=yes --branch-sim=yes \
        --collect-atstart=no --toggle-collect=bench_time_batch \
        --callgrind-out-file="$f" "$BIN" --child "$v" --keys "$keys" > "$f.log" 2>&1 ||
        { cat "$f.log" >&2; echo "profile.sh: $v failed" >&2; exit 1; }
    echo "$f"
}
events() { grep -m1 '^events:' "$1" | cut -d' ' -f2-; }
totals() { grep -m1 '^summary:' "$1" | cut -d' ' -f2-; }

echo "# callgrind, $suite, per handshake (client + server), heap seed ${EMSGUARD_BENCH_HEAP_SEED:-1}"
for m in $modes; do
    if [ "$m" = 0 ]; then n1=${PROFILE_N1:-20}; n2=${PROFILE_N2:-120}; else n1=${PROFILE_N1:-100}; n2=${PROFILE_N2:-600}; fi
    base=""
    for v in $variants; do
        a=$(run_one "$v" "$m" "$n1"); b=$(run_one "$v" "$m" "$n2")
        row=$(python3 - "$(events "$b")" "$(totals "$a")" "$(totals "$b")" $((n2 - n1)) <<'EOF'
import sys
ev = sys.argv[1].split(); a = list(map(int, sys.argv[2].split())); b = list(map(int, sys.argv[3].split()))
n = int(sys.argv[4]); d = dict(zip(ev, [(y - x) / n for x, y in zip(a, b)]))
g = lambda *k: sum(d.get(x, 0) for x in k)
print("%.0f %.1f %.1f %.1f %.1f %.1f" % (g("Ir"), g("I1mr"), g("D1mr"), g("D1mw"),
      g("ILmr", "DLmr", "DLmw"), g("Bcm", "Bim")))
EOF
)
        [ -n "$base" ] || base=$row
        python3 - "$v" "${mode_name[$m]}" "$row" "$base" <<'EOF'
import sys
v, m, row, base = sys.argv[1], sys.argv[2], list(map(float, sys.argv[3].split())), list(map(float, sys.argv[4].split()))
names = ["Ir", "I1mr", "D1mr", "D1mw", "LLmiss", "mispred"]
cells = []
for k, (x, y) in enumerate(zip(row, base)):
    dd = x - y
    cells.append("%s %.0f (%+.0f, %+.2f%%)" % (names[k], x, dd, 100 * dd / y if y else 0))
print("%-10s %-13s %s" % (m, v, " | ".join(cells)))
EOF
        [ "${PROFILE_KEEP:-0}" = 1 ] || rm -f "$a" "$a.log"
    done
done
