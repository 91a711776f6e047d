# SPDX-License-Identifier: Apache-2.0
# The TLS 1.3 pin of a RequireExtendedMasterSecret=1 server is undone when
# its handshake ends and never lowers a minimum version the application
# set (issue 15, round 2: R5).
UNIT_SUITES += check_pin

tests: $(BUILD)/test/check_pin

$(BUILD)/test/check_pin: $(BUILD)/test/check_pin.o $(BUILD)/test/harness.o $(BUILD)/test/harness_check.o $(TEST_DEPS)
	$(CC) -o $@ $(BUILD)/test/check_pin.o $(BUILD)/test/harness.o $(BUILD)/test/harness_check.o $(TEST_LDFLAGS) $(CHECK_LIBS)
