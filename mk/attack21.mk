# SPDX-License-Identifier: Apache-2.0
# Attack round 21: a client's EMS bit at the connect exit, and emsguard's
# plain security callbacks copied onto a ctx with a Schannel filter.
UNIT_SUITES += check_attack21

tests: $(BUILD)/test/check_attack21

$(BUILD)/test/check_attack21: $(BUILD)/test/check_attack21.o $(BUILD)/test/harness.o $(BUILD)/test/harness_check.o $(TEST_DEPS)
	$(CC) -o $@ $(BUILD)/test/check_attack21.o $(BUILD)/test/harness.o $(BUILD)/test/harness_check.o $(TEST_LDFLAGS) $(CHECK_LIBS)
