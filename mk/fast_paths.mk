# SPDX-License-Identifier: Apache-2.0
# Regression tests of the per-handshake fast paths (issue 21): a client's EMS
# bit at the connect exit, and emsguard's plain security callbacks copied onto
# a ctx with a Schannel filter.
UNIT_SUITES += check_fast_paths

tests: $(BUILD)/test/check_fast_paths

$(BUILD)/test/check_fast_paths: $(BUILD)/test/check_fast_paths.o $(BUILD)/test/harness.o $(BUILD)/test/harness_check.o $(TEST_DEPS)
	$(CC) -o $@ $(BUILD)/test/check_fast_paths.o $(BUILD)/test/harness.o $(BUILD)/test/harness_check.o $(TEST_LDFLAGS) $(CHECK_LIBS)
