# SPDX-License-Identifier: Apache-2.0
# The TLS1-PRF guard left out by OpenSSL (issue 6): SSL_CTX_new() with a
# defn_cache.c allocation failing, enforce and audit mode.  Its own binary:
# the allocation hooks must be installed before OpenSSL allocates anything.
UNIT_SUITES += check_guard_missing

tests: $(BUILD)/test/check_guard_missing

$(BUILD)/test/check_guard_missing: $(BUILD)/test/check_guard_missing.o $(TEST_DEPS)
	$(CC) -o $@ $(BUILD)/test/check_guard_missing.o $(TEST_LDFLAGS) $(CHECK_LIBS)
