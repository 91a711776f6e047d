# SPDX-License-Identifier: Apache-2.0
# The server-side session cache and the policy state's lifetime (issue 15:
# F7 SNI switch freeing the recorded ctx, F8 SNI switch into an enabled ctx,
# F10 the refused new session's isolation, F11 sessions from before enable).
# Its own binary: it installs allocation hooks (freed memory is poisoned)
# before OpenSSL allocates anything.
UNIT_SUITES += check_cache_paths

tests: $(BUILD)/test/check_cache_paths

$(BUILD)/test/check_cache_paths: $(BUILD)/test/check_cache_paths.o $(BUILD)/test/harness.o $(BUILD)/test/harness_check.o $(TEST_DEPS)
	$(CC) -o $@ $(BUILD)/test/check_cache_paths.o $(BUILD)/test/harness.o $(BUILD)/test/harness_check.o $(TEST_LDFLAGS) $(CHECK_LIBS)
