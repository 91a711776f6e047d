# SPDX-License-Identifier: Apache-2.0
# Schannel-mapped values against an application that configures its
# SSL_CTX after EMSGUARD_enable() (issue 15, "no silent weakening"):
# in-memory handshakes (protocols, suites, groups, DH, options, session
# cache, SNI switch, the application's callbacks), and nginx with
# `ssl_protocols` / `ssl_ciphers` under the preload.
UNIT_SUITES += check_schannel_override
INTEGRATION_SCRIPTS += preload_schannel.sh

tests: $(BUILD)/test/check_schannel_override

$(BUILD)/test/check_schannel_override: $(BUILD)/test/check_schannel_override.o $(BUILD)/test/harness.o $(BUILD)/test/harness_check.o $(TEST_DEPS)
	$(CC) -o $@ $(BUILD)/test/check_schannel_override.o $(BUILD)/test/harness.o $(BUILD)/test/harness_check.o $(TEST_LDFLAGS) $(CHECK_LIBS)
