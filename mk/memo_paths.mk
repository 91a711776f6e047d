# SPDX-License-Identifier: Apache-2.0
# The EMS memo and callback chaining (issue 15, attack round N2 and N3):
# sessions whose own EMS flag disagrees with what their master secret is
# remembered as (a forged external cache entry, a fleet member's ticket, an
# application's session store), and applications that chain to emsguard's
# own callbacks through the getters, in memory.
UNIT_SUITES += check_memo_paths

tests: $(BUILD)/test/check_memo_paths

$(BUILD)/test/check_memo_paths: $(BUILD)/test/check_memo_paths.o $(BUILD)/test/harness.o $(BUILD)/test/harness_check.o $(TEST_DEPS)
	$(CC) -o $@ $(BUILD)/test/check_memo_paths.o $(BUILD)/test/harness.o $(BUILD)/test/harness_check.o $(TEST_LDFLAGS) $(CHECK_LIBS)
