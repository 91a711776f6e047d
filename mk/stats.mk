# SPDX-License-Identifier: Apache-2.0
# `emsguard stats` and the live counters behind it (issue 20): publishing
# (provider/stats_publish.c: the file, fork, exit, dead processes, an
# unusable directory) and a preloaded Apache httpd with several children.
UNIT_SUITES += check_stats
INTEGRATION_SCRIPTS += stats_apache.sh

tests: $(BUILD)/test/check_stats

$(BUILD)/test/check_stats: $(BUILD)/test/check_stats.o $(BUILD)/test/harness.o $(TEST_DEPS) $(TOOL_BIN)
	$(CC) -o $@ $(BUILD)/test/check_stats.o $(BUILD)/test/harness.o $(TEST_LDFLAGS) $(CHECK_LIBS)
