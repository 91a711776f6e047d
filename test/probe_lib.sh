# SPDX-License-Identifier: Apache-2.0
# Shared by the `emsguard probe` tests (probe.sh, probe_mail.sh): the JSON
# checker pcheck.py, running the probe twice (text and --json) and
# comparing both, and the rows each kind of server is expected to show.
# Sourced after test/lib.sh; the caller sets TMP, EMSG, SCHEMA, PTO, PYTHON
# and has written $TMP/pcheck.py with write_pcheck.

# pcheck.py SCHEMA JSON [text=FILE] [id=observed/status ...] [exit=N]
#           [remedy=TEXT ...] [kind=ERRKIND] [dhenum.KEY=VALUE ...]
# (write_pcheck FILE writes it.)  Validates JSON against the schema;
# asserts the listed rows (and that no other row exists, when rows are
# given); checks that TEXT, the text report of the same peer, has the same
# rows with the same status.  Prints one line per mismatch; exit 0 when none.
write_pcheck() {
    cat >"$1" <<'PY'
import json, sys
import jsonschema

schema = json.load(open(sys.argv[1]))
try:
    doc = json.load(open(sys.argv[2]))
except Exception as e:
    print("not JSON: %s" % e)
    sys.exit(1)
bad = []
v = jsonschema.Draft202012Validator(schema)
for err in v.iter_errors(doc):
    bad.append("schema: %s at /%s" % (err.message, "/".join(str(p) for p in err.path)))
text = None
want_rows = {}
remedies = []
ignored = []  # row id prefixes a run does not judge (e.g. "session_id")
for a in sys.argv[3:]:
    if a.startswith("text="):
        text = open(a[5:]).read().splitlines()
    elif a.startswith("exit="):
        if doc.get("exit_code") != int(a[5:]):
            bad.append("exit_code %r, want %s" % (doc.get("exit_code"), a[5:]))
    elif a.startswith("ignore="):
        ignored.append(a[7:])
    elif a.startswith("remedy="):
        remedies.append(a[7:])
    elif a.startswith("kind="):
        k = (doc.get("error") or {}).get("kind")
        if k != a[5:]:
            bad.append("error.kind %r, want %s" % (k, a[5:]))
    elif a.startswith("dhenum."):
        key, val = a[7:].split("=")
        got = doc.get("dhe", {}).get(key)
        if str(got).lower() != val:
            bad.append("dhe.%s %r, want %s" % (key, got, val))
    else:
        rid, exp = a.split("=")
        want_rows[rid] = exp
def judged(rid):
    return not any(rid == p or rid.startswith(p + ".") or rid == "resumption." + p
                   for p in ignored)
rows = {c["id"]: c for c in doc.get("checks", []) if judged(c["id"])}
want_rows = {r: e for r, e in want_rows.items() if judged(r)}
if want_rows:
    for rid, exp in want_rows.items():
        obs, st = exp.split("/")
        c = rows.get(rid)
        if c is None:
            bad.append("row %s missing" % rid)
        elif (c["observed"], c["status"]) != (obs, st):
            bad.append("row %s: %s/%s (%s), want %s" % (rid, c["observed"], c["status"], c["detail"], exp))
    for rid in rows:
        if rid not in want_rows:
            bad.append("unexpected row %s" % rid)
if remedies and doc.get("remediation") != remedies:
    bad.append("remediation %r, want %r" % (doc.get("remediation"), remedies))
if text is not None:
    cell = {"finding": "FINDING", "not_applicable": "n/a", "ok": "ok", "info": "info"}
    for c in doc.get("checks", []):
        if not judged(c["id"]):
            continue
        hits = [l for l in text if l.startswith(c["check"] + " ")]
        if len(hits) != 1:
            bad.append("text: %d lines for row '%s'" % (len(hits), c["check"]))
        elif hits[0].split()[-1] != cell[c["status"]]:
            bad.append("text: row '%s' status '%s', JSON says %s" % (c["check"], hits[0].split()[-1], c["status"]))
    verdict = " ".join(l.strip() for l in text if l.startswith("verdict:") or l.startswith("         "))
    if doc.get("verdict") and doc["verdict"] not in verdict.replace("verdict: ", ""):
        bad.append("text: verdict differs from JSON")
for b in bad:
    print(b)
sys.exit(1 if bad else 0)
PY
}

# probe NAME ARGS...: the text report ($TMP/NAME.txt) and the JSON one
# ($TMP/NAME.json) of the same peer; sets TRC and JRC (exit statuses).
probe() {
    local name=$1
    shift
    timeout $PTO "$EMSG" probe "$@" >"$TMP/$name.txt" 2>"$TMP/$name.txt.err"
    TRC=$?
    timeout $PTO "$EMSG" probe --json "$@" >"$TMP/$name.json" 2>"$TMP/$name.json.err"
    JRC=$?
    artifact "$TMP/$name.txt" "$TMP/$name.txt.err" "$TMP/$name.json" "$TMP/$name.json.err"
    san_clean "$TMP/$name.txt.err"
    san_clean "$TMP/$name.json.err"
}

# verify NAME EXIT ARGS...: both exit statuses, then pcheck.py.
verify() {
    local name=$1 want=$2 out
    shift 2
    expect_eq "text exit status" "$TRC" "$want"
    expect_eq "json exit status" "$JRC" "$want"
    if ! out=$("$PYTHON" "$TMP/pcheck.py" "$SCHEMA" "$TMP/$name.json" "text=$TMP/$name.txt" \
            "exit=$want" "$@" 2>&1); then
        while IFS= read -r l; do err "$l"; done <<<"$out"
    fi
    expect_empty "text run stderr" "$TMP/$name.txt.err"
}

# the rows every TLS 1.2 peer has, by kind
rows_common() {
    echo "ticket_renewal=${RENEW:-not_renewed/ok}"
    echo "dhe.without_ems=${DHE_NEG:-refused/ok}"
    echo "dhe.leading_zero=${DHE_LZ:-not_applicable/not_applicable}"
}
rows_legacy() {
    local m
    echo "ems=no/finding"
    echo "resumption.session_id=resumed/info"
    echo "resumption.ticket=resumed/info"
    for m in session_id ticket; do
        echo "$m.nonems_session.ems_hello=resumed/finding"
        echo "$m.nonems_session.nonems_hello=resumed/finding"
        echo "$m.ems_session.nonems_hello=not_applicable/not_applicable"
        echo "$m.ems_session.ems_hello=not_applicable/not_applicable"
    done
    rows_common
}
# stock OpenSSL with EMS: resumes a non-EMS session for a non-EMS hello
rows_stock_ems() {
    local m
    echo "ems=yes/ok"
    echo "resumption.session_id=resumed/ok"
    echo "resumption.ticket=resumed/ok"
    for m in session_id ticket; do
        echo "$m.nonems_session.ems_hello=full_handshake/ok"
        echo "$m.nonems_session.nonems_hello=resumed/finding"
        echo "$m.ems_session.nonems_hello=${EMS_NONEMS:-aborted/ok}"
        echo "$m.ems_session.ems_hello=resumed/ok"
    done
    rows_common
}
# emsguard: non-EMS sessions are not cached and get no ticket
rows_policy() {
    echo "ems=yes/ok"
    echo "resumption.session_id=resumed/ok"
    echo "resumption.ticket=resumed/ok"
    echo "session_id.nonems_session.ems_hello=full_handshake/ok"
    echo "session_id.nonems_session.nonems_hello=full_handshake/ok"
    echo "session_id.ems_session.nonems_hello=aborted/ok"
    echo "session_id.ems_session.ems_hello=resumed/ok"
    echo "ticket.nonems_session.ems_hello=not_applicable/not_applicable"
    echo "ticket.nonems_session.nonems_hello=not_applicable/not_applicable"
    echo "ticket.ems_session.nonems_hello=aborted/ok"
    echo "ticket.ems_session.ems_hello=resumed/ok"
    rows_common
}

# alert40 NAME: the EMS session offered without EMS was aborted with alert 40
alert40() {
    local n
    n=$("$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(1 for c in d.get("checks",[]) if c["id"].endswith("ems_session.nonems_hello") and "alert 40 (handshake_failure)" in c["detail"]))' "$TMP/$1.json")
    expect_eq "ems_session.nonems_hello rows with alert 40 (handshake_failure)" "$n" 2
}

REMEDY_EMS="remedy=enable Extended Master Secret"
REMEDY_UPDATE="remedy=apply the vendor update (or emsguard)"
REMEDY_DHE="remedy=drop TLS_DHE_* cipher suites"

# perr NAME EXPECTED-STDERR-LINE KIND ARGS...: exit 2, the exact one-line
# message, and the JSON error document.
perr() {
    local name=$1 msg=$2 kind=$3 out
    shift 3
    probe "$name" "$@"
    expect_eq "text exit status" "$TRC" 2
    expect_eq "json exit status" "$JRC" 2
    expect_eq "stderr (text)" "$(cat "$TMP/$name.txt.err")" "$msg"
    expect_eq "stderr (json)" "$(cat "$TMP/$name.json.err")" "$msg"
    expect_empty "stdout (text)" "$TMP/$name.txt"
    if ! out=$("$PYTHON" "$TMP/pcheck.py" "$SCHEMA" "$TMP/$name.json" exit=2 "kind=$kind" 2>&1); then
        while IFS= read -r l; do err "$l"; done <<<"$out"
    fi
}
