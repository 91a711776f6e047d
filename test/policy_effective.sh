#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `emsguard policy` reports what is in effect, not only what emsguard
# configures (issue 15, F3): OpenSSL applies its own openssl.cnf
# `[system_default] Options = -ExtendedMasterSecret` to every SSL_CTX_new(),
# and emsguard never switches EMS back on.  With RequireExtendedMasterSecret=1
# that combination makes EMSGUARD_enable() refuse server SSL_CTXs; the report
# must say so instead of printing "Options ExtendedMasterSecret".
#
#   BUILD=build bash test/policy_effective.sh
#
# Every case prints PASS/FAIL; the summary is `N passed, M failed, K skipped`.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
TO=10
OPENSSL=${OPENSSL:-openssl}
SERVER_PIDS=()
. "$HERE/lib.sh"
script_start effective 'rm -rf "$TMP"'
TOOL=$BDIR/tools/emsguard
EG=$BDIR/test/eg_peer
SCHEMA=$ROOT/docs/policy.schema.json

for f in "$TOOL" "$EG"; do
    [ -x "$f" ] || prereq_fail "$f not built (make $BUILD/tools/emsguard $BUILD/test/eg_peer)"
done
require_jsonschema

# cnf FILE REQUIRE EMS-OPTION: the emsguard provider with
# RequireExtendedMasterSecret=REQUIRE and, unless EMS-OPTION is empty, an
# ssl_conf system_default with `Options = EMS-OPTION`.
cnf() {
    {
        cat <<EOF
openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
EOF
        [ -n "$3" ] && echo "ssl_conf = ssl_sect"
        cat <<EOF
[provider_sect]
default = default_sect
emsguard = emsguard_sect
[default_sect]
activate = 1
[emsguard_sect]
module = $BDIR/emsguard.so
activate = 1
EventLogging = 0
RequireExtendedMasterSecret = $2
EOF
        if [ -n "$3" ]; then
            cat <<EOF
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
Options = $3
EOF
        fi
    } >"$1"
}

# run NAME ARGS...: `emsguard policy ARGS` into $TMP/NAME.{out,err,rc}
run() {
    local name=$1
    shift
    "$TOOL" policy "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
    echo $? >"$TMP/$name.rc"
    artifact "$TMP/$name.out" "$TMP/$name.err"
}

rc() { cat "$TMP/$1.rc"; }

# server_section NAME: the text report's "server role" settings block
server_section() {
    sed -n '/^OpenSSL settings, server role:/,/^OpenSSL settings, client role:/p' "$TMP/$1.out"
}

cnf "$TMP/off-require.cnf" 1 -ExtendedMasterSecret
cnf "$TMP/off.cnf" 0 -ExtendedMasterSecret
cnf "$TMP/on.cnf" 1 ExtendedMasterSecret
cnf "$TMP/plain.cnf" 1 ""

begin 01-ems-off-in-openssl-cnf-require
OPENSSL_CONF=$TMP/off-require.cnf run offreq
server_section offreq >"$TMP/offreq.server"
expect_eq "exit status" "$(rc offreq)" 2
expect_grep "server Options" "^    Options           -ExtendedMasterSecret" "$TMP/offreq.server"
expect_nogrep "no claim that EMS is on" "^    Options           ExtendedMasterSecret" "$TMP/offreq.out"
expect_grep "server EMS line" "^    ExtendedMasterSecret off: .*system_default.*EMSGUARD_enable\(\) refuses" "$TMP/offreq.server"
expect_grep "warning" "^  OpenSSL's configuration \(openssl.cnf ssl_conf system_default\) sets Options -ExtendedMasterSecret" "$TMP/offreq.out"
expect_grep "stderr names the conflict" "RequireExtendedMasterSecret=1.*-ExtendedMasterSecret" "$TMP/offreq.err"
end_test

begin 02-same-with-config-option
# --config names the file; the process's OPENSSL_CONF says nothing of EMS.
OPENSSL_CONF=$TMP/plain.cnf run offreqc --config "$TMP/off-require.cnf"
expect_eq "exit status" "$(rc offreqc)" 2
expect_grep "server Options" "^    Options           -ExtendedMasterSecret" "$TMP/offreqc.out"
expect_nogrep "no claim that EMS is on" "^    Options           ExtendedMasterSecret" "$TMP/offreqc.out"
end_test

begin 03-json-reports-it
OPENSSL_CONF=$TMP/off-require.cnf run offjson --json
expect_eq "exit status" "$(rc offjson)" 2
"$PYTHON" - "$SCHEMA" "$TMP/offjson.out" >"$TMP/json-check.txt" 2>&1 <<'EOF'
import json, sys, jsonschema
schema, doc = (json.load(open(p)) for p in sys.argv[1:3])
jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
server = doc["policy"]["openssl"]["server"]
client = doc["policy"]["openssl"]["client"]
assert server["Options"].startswith("-ExtendedMasterSecret"), server["Options"]
assert client["Options"].startswith("-ExtendedMasterSecret"), client["Options"]
assert server["ExtendedMasterSecret"].startswith("off:"), server
assert any("-ExtendedMasterSecret" in w for w in doc["policy"]["warnings"])
print("json ok")
EOF
expect_grep "schema and values" "^json ok$" "$TMP/json-check.txt"
artifact "$TMP/json-check.txt"
end_test

begin 04-ems-off-without-require
OPENSSL_CONF=$TMP/off.cnf run off
expect_eq "exit status" "$(rc off)" 0
expect_grep "server Options" "^    Options           -ExtendedMasterSecret" "$TMP/off.out"
expect_nogrep "no claim that EMS is on" "^    Options           ExtendedMasterSecret" "$TMP/off.out"
expect_grep "warning" "^  OpenSSL's configuration \(openssl.cnf ssl_conf system_default\) sets Options -ExtendedMasterSecret" "$TMP/off.out"
end_test

begin 05-controls-ems-on
OPENSSL_CONF=$TMP/on.cnf run on
expect_eq "exit status (explicit ExtendedMasterSecret)" "$(rc on)" 0
expect_grep "server Options" "^    Options           ExtendedMasterSecret" "$TMP/on.out"
expect_nogrep "no EMS line" "^    ExtendedMasterSecret off" "$TMP/on.out"
OPENSSL_CONF=$TMP/plain.cnf run plain
expect_eq "exit status (no ssl_conf)" "$(rc plain)" 0
expect_grep "server Options" "^    Options           ExtendedMasterSecret" "$TMP/plain.out"
expect_nogrep "no warning" "sets Options -ExtendedMasterSecret" "$TMP/plain.out"
end_test

begin 06-an-application-fails-closed
# eg_peer's server calls EMSGUARD_enable() on an SSL_CTX that the same
# openssl.cnf gave -ExtendedMasterSecret: it must not start serving.
make_fixtures || fail_now 06-an-application-fails-closed "no certificate"
OPENSSL_CONF=$TMP/off-require.cnf timeout $TO "$EG" server --port 0 --cert "$CERT" --key "$KEY" \
    --max-conns 1 >"$TMP/eg.out" 2>"$TMP/eg.err" </dev/null
egrc=$?
artifact "$TMP/eg.out" "$TMP/eg.err"
expect_ne "eg_peer server started (timeout)" "$egrc" 124
expect_ne "eg_peer server exit status" "$egrc" 0
expect_nogrep "never listened" "^listening " "$TMP/eg.out"
# eg_peer prints the reason string (the message with the option's name is
# the error's data; check_hello_paths checks that text).
expect_grep "emsguard's reason" "Extended Master Secret required" "$TMP/eg.err"
end_test

summary
[ "$NFAIL" -eq 0 ] && [ "$NSKIP" -eq 0 ]
