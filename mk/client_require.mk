# SPDX-License-Identifier: Apache-2.0
# RequireExtendedMasterSecret=1 in the client role (issue 15, N7): a legacy
# server's ServerHello fails the handshake, in memory, for each key exchange.
UNIT_SUITES += check_client_require

tests: $(BUILD)/test/check_client_require

$(BUILD)/test/check_client_require: $(BUILD)/test/check_client_require.o $(BUILD)/test/harness.o $(BUILD)/test/harness_check.o $(TEST_DEPS)
	$(CC) -o $@ $(BUILD)/test/check_client_require.o $(BUILD)/test/harness.o $(BUILD)/test/harness_check.o $(TEST_LDFLAGS) $(CHECK_LIBS)
