# SPDX-License-Identifier: Apache-2.0
# libFuzzer targets for every parser of the library (issue 6).  They need
# clang: the library objects are rebuilt with -fsanitize=fuzzer-no-link plus
# ASan+UBSan in their own tree, $(FUZZ_DIR), because the internal functions
# the targets call are not exported from libemsguard.so.
#
#   make fuzz                        build the targets ($(FUZZ_DIR)/fuzz/*)
#   make fuzz-check [FUZZ_SECONDS=60] [FUZZ_TARGETS="reg value"]
#                                    fuzz each target on a scratch copy of
#                                    its corpus; fails on any crash, leak,
#                                    UBSan report or timeout
#   make fuzz-regress                every committed corpus file and
#                                    fuzz/crashes/<target>/* input, once
#   make fuzz-seeds                  regenerate the DER session and
#                                    ClientHello seeds (fuzz/seedgen.c)
FUZZ_CC      ?= clang
# Its own tree, named after BUILD_DIR so that it never meets the gcc trees'
# pattern rules: build-fuzz by default.
FUZZ_DIR     ?= $(BUILD_DIR)-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= value reg reg_utf16 session_flags config client_hello

FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
               -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -Iinclude -Iprovider $(SSL_CFLAGS) \
               $(WARN) -O1 -g $(FUZZ_SAN)
FUZZ_OBJS   := $(LIB_SRCS:%.c=$(FUZZ_DIR)/%.o)
FUZZ_BINS   := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz/%)

.PHONY: fuzz fuzz-check fuzz-regress fuzz-seeds

fuzz: $(FUZZ_BINS)

$(FUZZ_DIR)/provider/%.o: provider/%.c $(wildcard provider/*.h) include/emsguard.h \
                          fuzz/coverage-ignore.txt
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link \
	    -fsanitize-coverage-ignorelist=fuzz/coverage-ignore.txt -c -o $@ $<

# The harness (server credentials, fixed ticket keys) for client_hello and
# the seed generator.
$(FUZZ_DIR)/test/harness.o: test/harness.c test/harness.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -Itest -c -o $@ $<

$(FUZZ_DIR)/fuzz/%.o: fuzz/%.c fuzz/oracles.h $(wildcard provider/*.h) include/emsguard.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -Itest -c -o $@ $<

# config redirects the .reg file that PolicyFile names to its own scratch
# file: its copy of reg_file.o calls fuzz_fopen() instead of fopen().
$(FUZZ_DIR)/fuzz/config-objs/reg_file.o: $(FUZZ_DIR)/provider/reg_file.o
	@mkdir -p $(dir $@)
	objcopy --redefine-sym fopen=fuzz_fopen $< $@

FUZZ_CONFIG_OBJS := $(filter-out $(FUZZ_DIR)/provider/reg_file.o,$(FUZZ_OBJS)) \
                    $(FUZZ_DIR)/fuzz/config-objs/reg_file.o

FUZZ_ORACLES := $(FUZZ_DIR)/fuzz/oracles.o

$(FUZZ_DIR)/fuzz/config: $(FUZZ_DIR)/fuzz/config.o $(FUZZ_ORACLES) $(FUZZ_CONFIG_OBJS)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(SSL_LIBS) -lpthread

$(FUZZ_DIR)/fuzz/client_hello: $(FUZZ_DIR)/fuzz/client_hello.o $(FUZZ_DIR)/test/harness.o \
                               $(FUZZ_ORACLES) $(FUZZ_OBJS)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(SSL_LIBS) -lpthread

FUZZ_PLAIN := $(filter-out $(FUZZ_DIR)/fuzz/config $(FUZZ_DIR)/fuzz/client_hello,$(FUZZ_BINS))
$(FUZZ_PLAIN): $(FUZZ_DIR)/fuzz/%: $(FUZZ_DIR)/fuzz/%.o $(FUZZ_ORACLES) $(FUZZ_OBJS)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(SSL_LIBS) -lpthread

# A plain program (no libFuzzer main), linked against the same objects.
$(FUZZ_DIR)/fuzz/seedgen: $(FUZZ_DIR)/fuzz/seedgen.o $(FUZZ_DIR)/test/harness.o $(FUZZ_OBJS)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -o $@ $^ $(SSL_LIBS) -lpthread

fuzz-check: $(FUZZ_BINS)
	FUZZ_DIR=$(FUZZ_DIR) FUZZ_SECONDS=$(FUZZ_SECONDS) bash fuzz/run.sh check $(FUZZ_TARGETS)

fuzz-regress: $(FUZZ_BINS)
	FUZZ_DIR=$(FUZZ_DIR) bash fuzz/run.sh regress $(FUZZ_TARGETS)

fuzz-seeds: $(FUZZ_DIR)/fuzz/seedgen
	$(FUZZ_DIR)/fuzz/seedgen fuzz/corpus

.PHONY: fuzz-clean
clean: fuzz-clean
fuzz-clean:
	rm -rf $(FUZZ_DIR)
EXTRA_CHECKS += fuzz-regress
