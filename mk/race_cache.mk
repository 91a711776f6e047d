# SPDX-License-Identifier: Apache-2.0
# Race in the internal session cache (issue 15, F10): victim threads run
# legacy full handshakes while attacker threads offer each new session to
# the same SSL_CTX as libssl caches it; none may resume (test/race_cache.c).
#
#   make race-cache-check   the normal build, 100,000 racing attempts on
#                           8 threads (about a minute on 2 cores)
# EMSGUARD_RACE_THREADS, EMSGUARD_RACE_ATTEMPTS and EMSGUARD_RACE_SECONDS
# size it.

RACE_CACHE_BIN := $(BUILD)/test/race_cache
EXTRA_CHECKS += race-cache-check

tests: $(RACE_CACHE_BIN)

$(RACE_CACHE_BIN): $(BUILD)/test/race_cache.o $(BUILD)/test/harness.o $(TEST_DEPS)
	$(CC) -o $@ $(BUILD)/test/race_cache.o $(BUILD)/test/harness.o $(TEST_LDFLAGS)

.PHONY: race-cache-check
race-cache-check: $(RACE_CACHE_BIN)
	@echo "== race_cache ($(BUILD))"
	$(SAN_ENV) $(RACE_CACHE_BIN)
