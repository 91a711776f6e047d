# SPDX-License-Identifier: Apache-2.0
# Two emsguard providers activated with different policies: every route
# (EMSGUARD_enable, EMSGUARD_POLICY_from_provider/_from_config, so the
# preload and `emsguard policy`) refuses, naming both; equal policies under
# two names stay accepted (issue 15, round 2: R3).
UNIT_SUITES += check_two_providers

tests: $(BUILD)/test/check_two_providers

$(BUILD)/test/check_two_providers: $(BUILD)/test/check_two_providers.o $(BUILD)/test/conf_util.o $(TEST_DEPS)
	$(CC) -o $@ $(BUILD)/test/check_two_providers.o $(BUILD)/test/conf_util.o $(TEST_LDFLAGS) $(CHECK_LIBS)
