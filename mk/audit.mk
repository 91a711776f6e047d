# SPDX-License-Identifier: Apache-2.0
# The TLS1-PRF guard's audit counts under load (issue 20): 5,000 concurrent
# server handshakes driven one record at a time, a flood of abandoned ones,
# and the "(at exit)" summary written once.
UNIT_SUITES += check_audit

tests: $(BUILD)/test/check_audit

$(BUILD)/test/check_audit: $(BUILD)/test/check_audit.o $(BUILD)/test/harness.o $(BUILD)/test/harness_check.o $(TEST_DEPS)
	$(CC) -o $@ $(BUILD)/test/check_audit.o $(BUILD)/test/harness.o $(BUILD)/test/harness_check.o $(TEST_LDFLAGS) $(CHECK_LIBS)
