# SPDX-License-Identifier: Apache-2.0
# Thread stress of the SSL_CTX policy (test/stress.c): 8 threads share the
# server ctxs; the policy counters must match what the threads did.
#
#   make stress-check   builds it in the ThreadSanitizer tree ($(BUILD_DIR)-tsan)
#                       and runs it there; any TSan report fails the run
#   make stress-quick   a short pass in the current tree (normal, or
#                       SANITIZE=1 for ASan+UBSan)
# EMSGUARD_STRESS_THREADS and EMSGUARD_STRESS_HANDSHAKES (per thread) size it.

STRESS_BIN := $(BUILD)/test/stress
STRESS_TSAN_BIN := $(BUILD_DIR)-tsan/test/stress
STRESS_QUICK_HANDSHAKES ?= 200
EXTRA_CHECKS += stress-check

tests: $(STRESS_BIN)

$(STRESS_BIN): $(BUILD)/test/stress.o $(BUILD)/test/harness.o $(TEST_DEPS)
	$(CC) -o $@ $(BUILD)/test/stress.o $(BUILD)/test/harness.o $(TEST_LDFLAGS)

# halt_on_error + exitcode: the first race ends the run with status 66.
STRESS_TSAN_ENV := TSAN_OPTIONS=halt_on_error=1:exitcode=66:second_deadlock_stack=1

.PHONY: stress-check stress-quick
# The canary runs a deliberate race first: unless TSan stops it with 66, the
# tree is not instrumented and a clean stress run would prove nothing.
stress-check:
	$(MAKE) SANITIZE=thread BUILD_DIR=$(BUILD_DIR) $(STRESS_TSAN_BIN)
	@echo "== stress canary (a deliberate race must be reported)"
	@rc=0; $(STRESS_TSAN_ENV) EMSGUARD_STRESS_CANARY=1 $(STRESS_TSAN_BIN) \
	    > $(STRESS_TSAN_BIN)-canary.log 2>&1 || rc=$$?; \
	if [ $$rc -ne 66 ] || ! grep -q 'ThreadSanitizer: data race' $(STRESS_TSAN_BIN)-canary.log; then \
	    cat $(STRESS_TSAN_BIN)-canary.log; \
	    echo "FAIL: canary exited $$rc without a TSan report: $(STRESS_TSAN_BIN) is not instrumented"; \
	    exit 1; \
	fi; echo "canary: TSan reported the race, exit $$rc"
	@echo "== stress (ThreadSanitizer)"
	$(STRESS_TSAN_ENV) $(STRESS_TSAN_BIN)

stress-quick: $(STRESS_BIN)
	@echo "== stress (quick, $(BUILD))"
	$(SAN_ENV) EMSGUARD_STRESS_HANDSHAKES=$(STRESS_QUICK_HANDSHAKES) $(STRESS_BIN)
