#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Per-function difference of two callgrind files (bench/profile.sh keeps them):
   bench/profile-diff.py BASE ROUTE [handshakes] [event] [rows]
BASE and ROUTE are one callgrind file each, or two joined by a comma
(LONG,SHORT: the runs with N2 and N1 handshakes) to cancel set-up and exit.
Exclusive costs per function, route minus base, largest |difference| of the
chosen event (default Ir) first; divided by handshakes if given."""
import subprocess, sys, re, collections

def load(path):
    out = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", "--auto=no",
                          "--show=Ir,I1mr,D1mr,D1mw,Bcm,Bim", path],
                         capture_output=True, text=True, check=True).stdout
    rows = collections.defaultdict(lambda: [0] * 6)
    for line in out.splitlines():
        num = r"([\d,]+|\.)\s+(?:\([^)]*\)\s+)?"
        m = re.match(r"\s*" + num * 6 + r"(\S.*)$", line)
        if not m:
            continue
        name = re.sub(r"\s*\[.*\]$", "", m.group(7)).split(":")[-1].strip()
        vals = [int(m.group(i).replace(",", "").replace(".", "0")) for i in range(1, 7)]
        r = rows[name]
        for i in range(6):
            r[i] += vals[i]
    return rows

def sub(x, y):
    return {f: [(x[f][i] if f in x else 0) - (y[f][i] if f in y else 0) for i in range(6)]
            for f in set(x) | set(y)}

# BASE ROUTE [n] [event] [rows], where BASE and ROUTE are a file or "LONG-SHORT"
# (two files: the runs with N2 and N1 handshakes, whose difference cancels set-up).
def arg(x):
    return sub(load(x.split(",")[0]), load(x.split(",")[1])) if "," in x else load(x)

a, b = arg(sys.argv[1]), arg(sys.argv[2])
n = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
ev = ["Ir", "I1mr", "D1mr", "D1mw", "Bcm", "Bim"]
k = ev.index(sys.argv[4]) if len(sys.argv) > 4 else 0
diff = {f: [(b[f][i] if f in b else 0) - (a[f][i] if f in a else 0) for i in range(6)] for f in set(a) | set(b)}
tot = [sum(d[i] for d in diff.values()) / n for i in range(6)]
print("%-48s " % "TOTAL" + " ".join("%9.1f" % t for t in tot))
print("%-48s " % "function" + " ".join("%9s" % e for e in ev))
for f, d in sorted(diff.items(), key=lambda kv: -abs(kv[1][k]))[:int(sys.argv[5]) if len(sys.argv) > 5 else 40]:
    if any(d):
        print("%-48s " % f[:48] + " ".join("%9.1f" % (x / n) for x in d))
