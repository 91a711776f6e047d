#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the libFuzzer targets (mk/fuzz.mk calls this).
#
#   bash fuzz/run.sh check TARGET...    fuzz each target for FUZZ_SECONDS on a
#                                       scratch copy of fuzz/corpus/TARGET
#   bash fuzz/run.sh regress TARGET...  every fuzz/corpus/TARGET/* and
#                                       fuzz/crashes/TARGET/* input, once
#
# Environment: FUZZ_DIR (the tree with fuzz/<target>), FUZZ_SECONDS (check,
# default 60), FUZZ_ARGS (extra libFuzzer flags).  A crash, leak, UBSan
# report, timeout or out-of-memory fails the target; check keeps what it
# found in $FUZZ_DIR/findings/TARGET/ (the committed corpus is never
# touched).  Prints, per target, executions (libFuzzer's
# stat::number_of_executed_units) and the corpus size before and after.
set -u

cd "$(dirname "$0")/.." || exit 1
# shellcheck source=test/lib.sh
. test/lib.sh

MODE=${1:-}
shift || true
FUZZ_DIR=${FUZZ_DIR:-build-fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_ARGS=${FUZZ_ARGS:-}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/emsguard-fuzz.XXXXXX") || exit 1
FUZZ_PID=
cleanup() {
    [ -n "$FUZZ_PID" ] && kill "$FUZZ_PID" 2>/dev/null
    rm -rf "$SCRATCH"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Longest input worth trying, per target: a .reg or openssl.cnf file needs
# room for overlong lines; a session or a ClientHello is small.
max_len() {
    case $1 in
    reg) echo 16384 ;;
    reg_utf16 | config) echo 8192 ;;
    *) echo 4096 ;;
    esac
}

# What a sanitizer or libFuzzer prints when an input went wrong.
BAD='ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|SUMMARY: |fuzz: check failed'

files_in() { find "$1" -maxdepth 1 -type f 2>/dev/null | wc -l; }
bytes_in() { du -sb "$1" 2>/dev/null | cut -f1; }

check_target() {
    local t=$1 bin=$FUZZ_DIR/fuzz/$1 dir=$SCRATCH/$1 rc execs before after start
    begin "fuzz $t"
    if [ ! -x "$bin" ]; then
        err "no $bin (make fuzz)"
        end_test
        return
    fi
    mkdir -p "$dir/corpus" "$dir/artifacts"
    cp fuzz/corpus/"$t"/* "$dir/corpus/" 2>/dev/null
    before=$(files_in "$dir/corpus")
    expect_ge "seed files in fuzz/corpus/$t" "$before" 1
    start=$SECONDS
    # shellcheck disable=SC2086
    "$bin" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 -timeout=20 \
        -rss_limit_mb=2048 -max_len="$(max_len "$t")" -dict="fuzz/$t.dict" \
        -artifact_prefix="$dir/artifacts/" $FUZZ_ARGS "$dir/corpus" \
        </dev/null >"$dir/log" 2>&1 &
    FUZZ_PID=$!
    wait "$FUZZ_PID"
    rc=$?
    FUZZ_PID=
    execs=$(awk '/stat::number_of_executed_units:/ { print $2 }' "$dir/log" | tail -n 1)
    after=$(files_in "$dir/corpus")
    printf '  %-14s %4ss  executions %10s  corpus %4s -> %4s files (%s bytes)\n' \
        "$t" "$((SECONDS - start))" "${execs:-?}" "$before" "$after" "$(bytes_in "$dir/corpus")"
    expect_eq "libFuzzer exit status" "$rc" 0
    expect_nogrep "sanitizer or check report" "$BAD" "$dir/log"
    expect_ge "executions" "${execs:-0}" 1
    if [ -n "$(ls -A "$dir/artifacts")" ]; then
        err "inputs saved: $(find "$dir/artifacts" -type f -printf '%f ')"
    fi
    if [ ${#ERRS[@]} -gt 0 ]; then
        mkdir -p "$FUZZ_DIR/findings/$t"
        cp "$dir"/artifacts/* "$dir/log" "$FUZZ_DIR/findings/$t/" 2>/dev/null
        err "log and inputs kept in $FUZZ_DIR/findings/$t/"
        grep -Em1 -A25 -- "$BAD" "$dir/log" | sed 's/^/    | /'
    fi
    end_test
}

regress_target() {
    local t=$1 bin=$FUZZ_DIR/fuzz/$1 log=$SCRATCH/$1.log rc n
    local -a inputs
    begin "regress $t"
    if [ ! -x "$bin" ]; then
        err "no $bin (make fuzz)"
        end_test
        return
    fi
    mapfile -t inputs < <(find fuzz/corpus/"$t" fuzz/crashes/"$t" -type f 2>/dev/null | sort)
    n=${#inputs[@]}
    expect_ge "inputs for $t" "$n" 1
    if [ "$n" -gt 0 ]; then
        "$bin" -timeout=20 -rss_limit_mb=2048 "${inputs[@]}" </dev/null >"$log" 2>&1
        rc=$?
        printf '  %-14s %4s inputs (%s from fuzz/crashes)\n' "$t" "$n" \
            "$(files_in "fuzz/crashes/$t")"
        expect_eq "exit status" "$rc" 0
        expect_nogrep "sanitizer or check report" "$BAD" "$log"
        if [ ${#ERRS[@]} -gt 0 ]; then
            grep -E -- '^Running: ' "$log" | tail -n 1 | sed 's/^/    | /'
            grep -Em1 -A25 -- "$BAD" "$log" | sed 's/^/    | /'
        fi
    fi
    end_test
}

case $MODE in
check) run=check_target ;;
regress) run=regress_target ;;
*)
    echo "usage: $0 check|regress TARGET..." >&2
    exit 2
    ;;
esac
if [ $# -eq 0 ]; then
    echo "$0: no targets" >&2
    exit 2
fi
for t in "$@"; do
    $run "$t"
done
summary
[ "$NFAIL" -eq 0 ]
