# SPDX-License-Identifier: Apache-2.0
# The estate-scan benchmark of `emsguard probe --targets` (bench/probe_scan.sh):
# targets/s for --parallel 1, 4, 16, 64 at a 50 ms round trip made by
# bench/scan_relay.c.  A benchmark, not part of `all` or `check`; `tests`
# builds the relay so that it keeps compiling.
SCAN_RELAY := $(BUILD)/bench/scan_relay

$(SCAN_RELAY): bench/scan_relay.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $<

tests: $(SCAN_RELAY)

.PHONY: bench-scan
bench-scan: all $(SCAN_RELAY)
	BUILD=$(BUILD) bash bench/probe_scan.sh $(BENCH_SCAN_ARGS)
