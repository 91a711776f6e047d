# SPDX-License-Identifier: Apache-2.0
# Fault injection (issue 6): test/faults.c fails every allocation of the
# provider load, EMSGUARD_enable* and TLS 1.2 handshakes in turn.  It is a
# plain C program that forks one process per fault point, not a Check suite,
# so it has its own target instead of a place in UNIT_SUITES.  `make check`
# runs it on the normal build (about 70 s, most of it the one scenario that
# tries every allocation of a guarded SSL_CTX_new()) and under ASan+UBSan
# (faults-check-san, about 2.5 min):
#
#   make BUILD_DIR=... faults-check             sampled OpenSSL-only points
#   make BUILD_DIR=... faults-check FAULTS_FULL=1   every allocation (slow)
#   make BUILD_DIR=... SANITIZE=1 faults-check
#
# SAN_ENV's detect_leaks=1 stays: the forked runs leave with _exit() after
# their own per-site leak accounting, so LeakSanitizer checks only the top
# process (and, on request, each scenario's clean run).
FAULTS_BIN := $(BUILD)/test/faults

tests: $(FAULTS_BIN)
EXTRA_CHECKS += faults-check faults-check-san

$(FAULTS_BIN): $(BUILD)/test/faults.o $(BUILD)/test/harness.o $(TEST_DEPS)
	$(CC) -o $@ $(BUILD)/test/faults.o $(BUILD)/test/harness.o $(TEST_LDFLAGS)

.PHONY: faults-check
faults-check: $(FAULTS_BIN) $(BUILD)/emsguard.so
	$(SAN_ENV) BUILD=$(BUILD) SANITIZE=$(SANITIZE) $(if $(FAULTS_FULL),FAULTS_FULL=1) \
	    $(FAULTS_BIN) $(FAULTS_ARGS)

# `make check` runs EXTRA_CHECKS on the normal build only.
.PHONY: faults-check-san
faults-check-san:
	$(MAKE) SANITIZE=1 faults-check
