# SPDX-License-Identifier: Apache-2.0
# Hostile peers (issue 6): crafted ClientHellos, broken records and EMS
# changed across a renegotiation, fed to an emsguard server in memory.
UNIT_SUITES += check_hostile

tests: $(BUILD)/test/check_hostile

$(BUILD)/test/check_hostile: $(BUILD)/test/check_hostile.o $(BUILD)/test/harness.o $(BUILD)/test/harness_check.o $(TEST_DEPS)
	$(CC) -o $@ $(BUILD)/test/check_hostile.o $(BUILD)/test/harness.o $(BUILD)/test/harness_check.o $(TEST_LDFLAGS) $(CHECK_LIBS)
