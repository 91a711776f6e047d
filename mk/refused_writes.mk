# SPDX-License-Identifier: Apache-2.0
# A connection refused at the end of its handshake sends no application
# data, whichever call drove the handshake (issue 15, round 2: R1).
UNIT_SUITES += check_refused_writes

tests: $(BUILD)/test/check_refused_writes

$(BUILD)/test/check_refused_writes: $(BUILD)/test/check_refused_writes.o $(BUILD)/test/harness.o $(BUILD)/test/harness_check.o $(TEST_DEPS)
	$(CC) -o $@ $(BUILD)/test/check_refused_writes.o $(BUILD)/test/harness.o $(BUILD)/test/harness_check.o $(TEST_LDFLAGS) $(CHECK_LIBS)
