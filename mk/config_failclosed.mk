# SPDX-License-Identifier: Apache-2.0
# An emsguard provider in openssl.cnf that OpenSSL does not activate never
# leaves EMSGUARD_enable(), EMSGUARD_POLICY_from_config(), the preload or
# `emsguard policy` on the built-in defaults; its section is found the way
# OpenSSL finds it, whatever the names (issue 15, F12).  The guard-only
# route's documented limit (F6) is shown in config_failclosed.sh.
UNIT_SUITES += check_config_failclosed
INTEGRATION_SCRIPTS += config_failclosed.sh

tests: $(BUILD)/test/check_config_failclosed

$(BUILD)/test/check_config_failclosed: $(BUILD)/test/check_config_failclosed.o $(BUILD)/test/conf_util.o $(TEST_DEPS)
	$(CC) -o $@ $(BUILD)/test/check_config_failclosed.o $(BUILD)/test/conf_util.o $(TEST_LDFLAGS) $(CHECK_LIBS)
