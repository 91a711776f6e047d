#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `emsguard policy`: the effective policy with sources, exit statuses and the
# exact messages for invalid configurations, and its JSON against
# docs/policy.schema.json (python3-jsonschema, installed by .ci/install-deps).
#
#   BUILD=build bash test/policy_cmd.sh
#
# Every case prints PASS/FAIL; the summary is `N passed, M failed, K skipped`.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
SERVER_PIDS=()
. "$HERE/lib.sh"
script_start policy 'rm -rf "$TMP"'
TOOL=$BDIR/tools/emsguard
SCHEMA=$ROOT/docs/policy.schema.json
REG=$ROOT/test/reg/pci.reg

[ -x "$TOOL" ] || prereq_fail "$TOOL not built (make $BUILD/tools/emsguard)"
require_jsonschema

# cnf FILE [EXTRA-LINES]: the provider section of a test configuration.
cnf() {
    {
        eg_provider_cnf "${MODULE:-$BDIR/emsguard.so}"
        cat <<EOF
EventLogging = 0
PolicyFile = $REG
AllowLegacyResumption = 0
Protocols = eg_protocols
${2:-}
[eg_protocols]
TLS_1.1 = eg_tls11
[eg_tls11]
Server = eg_off
[eg_off]
Enabled = 0
EOF
    } >"$1"
}

# run NAME ARGS...: stdout, stderr and exit status into $TMP/NAME.*
run() {
    local name=$1
    shift
    "$TOOL" policy "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
    echo $? >"$TMP/$name.rc"
    artifact "$TMP/$name.out" "$TMP/$name.err"
}

rc() { cat "$TMP/$1.rc"; }

begin 01-valid-config-text
cnf "$TMP/good.cnf"
run good --config "$TMP/good.cnf"
expect_eq "exit status" "$(rc good)" 0
expect_grep "header" "^emsguard policy from $TMP/good.cnf \(the emsguard provider loads and is active\)" "$TMP/good.out"
expect_grep "conf source with section and key" "^      \[$TMP/good.cnf \[emsguard_sect\] AllowLegacyResumption\]" "$TMP/good.out"
expect_grep "nested conf source" "\[$TMP/good.cnf \[eg_off\] Protocols.TLS_1.1.Server.Enabled\]" "$TMP/good.out"
expect_grep ".reg source with line" "^  MaximumCacheSize = 1024$" "$TMP/good.out"
expect_grep ".reg file:line" "^      \[$REG:9\]$" "$TMP/good.out"
expect_grep "built-in default" "^      \[built-in default\]$" "$TMP/good.out"
expect_grep "effect of AllowLegacyResumption" "-> sessions without EMS: not offered, not cached, no ticket, never resumed" "$TMP/good.out"
expect_grep "server range from .reg and cnf" "^    MaxProtocol       TLSv1.2$" "$TMP/good.out"
expect_grep "server options" "^    Options           ExtendedMasterSecret,ServerPreference,-UnsafeLegacyRenegotiation$" "$TMP/good.out"
expect_grep "cache size" "^    SessionCacheSize  1024$" "$TMP/good.out"
expect_grep "warning with file:line" "^  $REG:35: warning: Functions: cipher suite 'TLS_FAKE_WITH_NOTHING' is not implemented by OpenSSL; ignored$" "$TMP/good.out"
end_test

begin 02-valid-config-json-schema
run goodjson --config "$TMP/good.cnf" --json
expect_eq "exit status" "$(rc goodjson)" 0
"$PYTHON" - "$SCHEMA" "$TMP/goodjson.out" "$TMP/good.cnf" "$REG" >"$TMP/json-check.txt" 2>&1 <<'EOF'
import json, sys, jsonschema
schema, doc = (json.load(open(p)) for p in sys.argv[1:3])
cnf, reg = sys.argv[3:5]
jsonschema.Draft202012Validator.check_schema(schema)
jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
v = {x["key"]: x for x in doc["policy"]["values"]}
assert doc["config"] == cnf and doc["provider_configured"] is True
assert v["AllowLegacyResumption"]["source"] == {"kind": "conf", "file": cnf, "section": "emsguard_sect"}, v["AllowLegacyResumption"]
assert v["MaximumCacheSize"]["source"] == {"kind": "reg", "file": reg, "line": 9}, v["MaximumCacheSize"]
assert v["MaximumCacheSize"]["value"] == "1024"
assert v["RequireExtendedMasterSecret"]["source"] == {"kind": "default"}
assert v["Protocols\\SSL 3.0\\Server\\Enabled"]["value"] is None
assert doc["policy"]["openssl"]["server"]["MaxProtocol"] == "TLSv1.2"
assert any("TLS_FAKE_WITH_NOTHING" in w for w in doc["policy"]["warnings"])
print("json ok")
EOF
expect_grep "schema and values" "^json ok$" "$TMP/json-check.txt"
artifact "$TMP/json-check.txt"
end_test

begin 03-schema-rejects-a-broken-document
# The validation above must be able to fail: a source without its file.
"$PYTHON" - "$SCHEMA" "$TMP/goodjson.out" >"$TMP/neg.txt" 2>&1 <<'EOF'
import json, sys, jsonschema
schema, doc = (json.load(open(p)) for p in sys.argv[1:3])
for x in doc["policy"]["values"]:
    if x["source"]["kind"] == "reg":
        del x["source"]["line"]
        break
try:
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
    print("accepted")
except jsonschema.ValidationError:
    print("rejected")
EOF
expect_grep "broken document" "^rejected$" "$TMP/neg.txt"
end_test

begin 04-unknown-key-fails-with-suggestion
cnf "$TMP/typo.cnf" "AllowLegacyResumptoin = 1"
run typo --config "$TMP/typo.cnf"
expect_eq "exit status" "$(rc typo)" 2
expect_grep "first line" "^emsguard policy: invalid configuration; the emsguard provider would refuse to load:$" "$TMP/typo.err"
expect_grep "message" "^  $TMP/typo.cnf, section \[emsguard_sect\]: unknown key 'AllowLegacyResumptoin' \(did you mean 'AllowLegacyResumption'\?\)" "$TMP/typo.err"
expect_empty "stdout" "$TMP/typo.out"
end_test

begin 05-bad-value-fails-with-accepted-values
cnf "$TMP/value.cnf" "RequireExtendedMasterSecret = yes"
run value --config "$TMP/value.cnf"
expect_eq "exit status" "$(rc value)" 2
expect_grep "message" "^  $TMP/value.cnf, section \[emsguard_sect\]: key 'RequireExtendedMasterSecret': value 'yes' is not a number; accepted: 0 or 1" "$TMP/value.err"
end_test

begin 06-bad-reg-file-fails-with-file-line
printf 'Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL]\r\n"ClientCacheTime"=dword:zz\r\n' >"$TMP/bad.reg"
REG=$TMP/bad.reg cnf "$TMP/reg.cnf"
sed -i "s|^PolicyFile = .*|PolicyFile = $TMP/bad.reg|" "$TMP/reg.cnf"
run reg --config "$TMP/reg.cnf"
expect_eq "exit status" "$(rc reg)" 2
expect_grep "file:line" "^  .*$TMP/bad.reg:4: " "$TMP/reg.err"
end_test

begin 07-missing-file
run missing --config "$TMP/none.cnf"
expect_eq "exit status" "$(rc missing)" 2
expect_grep "message" "^  $TMP/none.cnf: cannot read \(no such file\)$" "$TMP/missing.err"
end_test

begin 08-module-that-cannot-load
MODULE=$TMP/nowhere/emsguard.so cnf "$TMP/module.cnf"
run module --config "$TMP/module.cnf"
expect_eq "exit status" "$(rc module)" 2
expect_grep "message" "^emsguard policy: $TMP/module.cnf configures the emsguard provider, but it is not active after OpenSSL loaded the file" "$TMP/module.err"
end_test

begin 09-no-provider-shows-defaults
printf 'openssl_conf = openssl_init\n[openssl_init]\n' >"$TMP/plain.cnf"
run plain --config "$TMP/plain.cnf"
expect_eq "exit status" "$(rc plain)" 0
expect_grep "header" "^$TMP/plain.cnf configures no emsguard provider: EMSGUARD_enable\(\) and the preload$" "$TMP/plain.out"
expect_grep "default source" "^  AllowLegacyResumption = 0$" "$TMP/plain.out"
expect_eq "every value from the defaults" "$(grep -c '^      \[' "$TMP/plain.out")" "$(grep -c '^      \[built-in default\]$' "$TMP/plain.out")"
end_test

begin 10-openssl-conf-environment
OPENSSL_CONF=$TMP/good.cnf "$TOOL" policy --json >"$TMP/env.out" 2>"$TMP/env.err"
expect_eq "exit status" "$?" 0
expect_grep "file from OPENSSL_CONF" "^\{\"config\": \"$TMP/good.cnf\", \"provider_configured\": true" "$TMP/env.out"
artifact "$TMP/env.err"
# A file name that needs escaping still gives valid JSON naming it.
cp "$TMP/good.cnf" "$TMP/q\"uote.cnf"
"$TOOL" policy --json --config "$TMP/q\"uote.cnf" >"$TMP/quote.out" 2>/dev/null
expect_eq "quoted name status" "$?" 0
expect_eq "quoted name in JSON" "$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["config"])' "$TMP/quote.out" 2>&1)" "$TMP/q\"uote.cnf"
end_test

begin 11-usage-errors
run usage --bogus
expect_eq "exit status" "$(rc usage)" 2
expect_grep "message" "^emsguard policy: unknown or incomplete option '--bogus'$" "$TMP/usage.err"
"$TOOL" frobnicate >/dev/null 2>"$TMP/cmd.err"
expect_eq "unknown command status" "$?" 2
expect_grep "unknown command" "^emsguard: unknown command 'frobnicate'$" "$TMP/cmd.err"
end_test

# OPENSSL_CONF=A with --config B: everything reads B, nothing reads A (issue
# 17).  A's emsguard section sets a key B's does not, and has a typo of its
# own; B is valid.
{
    eg_provider_cnf "$BDIR/emsguard.so"
    echo "DisableDHEWithoutExtendedMasterSecret = 1"
    echo "EventLoging = 1"
} >"$TMP/envA.cnf"
grep -v '^EventLoging' "$TMP/envA.cnf" >"$TMP/envA-keys.cnf"
printf 'openssl_conf = openssl_init\n[openssl_init]\n' >"$TMP/envA-plain.cnf"

begin 12-openssl-conf-a-config-b-valid
OPENSSL_CONF=$TMP/envA.cnf run envab --config "$TMP/good.cnf"
expect_eq "exit status" "$(rc envab)" 0
expect_grep "header names B" "^emsguard policy from $TMP/good.cnf \(the emsguard provider loads and is active\)" "$TMP/envab.out"
expect_nogrep "A's keys are not B's" "DisableDHEWithoutExtendedMasterSecret|did not pass it on" "$TMP/envab.err"
expect_nogrep "A is not read" "envA.cnf|EventLoging" "$TMP/envab.err"
# The issue's report: A only sets a key B does not.
OPENSSL_CONF=$TMP/envA-keys.cnf run envab2 --config "$TMP/good.cnf"
expect_eq "exit status (A without typo)" "$(rc envab2)" 0
expect_nogrep "no key of A expected from B" "did not pass it on" "$TMP/envab2.err"
end_test

begin 13-openssl-conf-a-config-b-typo
# A configures no emsguard provider: B's typo is still refused, by the
# provider OpenSSL loads from B too (it checks B's section, not A's).
OPENSSL_CONF=$TMP/envA-plain.cnf run envtypo --config "$TMP/typo.cnf"
expect_eq "exit status" "$(rc envtypo)" 2
expect_grep "message names B and the key" "^  $TMP/typo.cnf, section \[emsguard_sect\]: unknown key 'AllowLegacyResumptoin'" "$TMP/envtypo.err"
expect_grep "the provider itself refused B's typo" "provider not activated: $TMP/typo.cnf, section \[emsguard_sect\]: unknown key 'AllowLegacyResumptoin'" "$TMP/envtypo.err"
expect_empty "stdout" "$TMP/envtypo.out"
end_test

summary
[ "$NFAIL" -eq 0 ] && [ "$NSKIP" -eq 0 ]
