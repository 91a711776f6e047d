# In-process handshake benchmark (bench/): ratios to stock, CSV, SVG chart,
# capacity table, cache scaling and memory.  Not part of `all` or `check`.
BENCH_BIN  := $(BUILD)/bench/emsguard-bench
BENCH_OBJS := $(BUILD)/bench/bench.o $(BUILD)/bench/child.o $(BUILD)/bench/capacity.o \
              $(BUILD)/bench/cache.o $(BUILD)/bench/report.o

$(BUILD)/bench/%.o: bench/%.c bench/bench.h test/harness.h include/emsguard.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itest -c -o $@ $<

$(BENCH_BIN): $(BENCH_OBJS) $(BUILD)/test/harness.o $(TEST_DEPS)
	$(CC) -o $@ $(BENCH_OBJS) $(BUILD)/test/harness.o $(TEST_LDFLAGS) -lm

# Exit status 1 when a gating ratio target fails.  BENCH_ARGS=--quick: ~15 s.
# The preload variants run in child processes with LD_PRELOAD=$(PRELOAD).
bench: $(BENCH_BIN) $(BUILD)/emsguard.so $(PRELOAD)
	BUILD=$(BUILD) $(BENCH_BIN) --csv $(BUILD)/bench/results.csv \
	    --svg $(BUILD)/bench/results.svg $(BENCH_ARGS)
