# SPDX-License-Identifier: Apache-2.0
# The `emsguard` command-line tool (tools/): policy report, remote probe and
# live counters (stats.c reads the files of provider/stats_file.h).
# Every tools/*.c is part of it; tools/emsguard.c holds main().
TOOL_BIN  := $(BUILD)/tools/emsguard
TOOL_SRCS := $(sort $(wildcard tools/*.c))
TOOL_OBJS := $(TOOL_SRCS:%.c=$(BUILD)/%.o)

$(BUILD)/tools/%.o: tools/%.c $(wildcard tools/*.h) include/emsguard.h provider/stats_file.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itools -c -o $@ $<

$(TOOL_BIN): $(TOOL_OBJS) $(TEST_DEPS)
	$(CC) -o $@ $(TOOL_OBJS) $(TEST_LDFLAGS)

all: $(TOOL_BIN)

# `emsguard policy`: sources, exit statuses, messages, JSON schema.
INTEGRATION_SCRIPTS += policy_cmd.sh

# The installed copy links the same objects but looks for libemsguard only
# in $(LIBDIR), never in this build tree.
TOOL_INSTALL_BIN := $(BUILD)/tools/emsguard.install

$(TOOL_INSTALL_BIN): $(TOOL_OBJS) $(TEST_DEPS)
	$(CC) -o $@ $(TOOL_OBJS) $(SANFLAGS) $(LDFLAGS) -L$(BUILD) -Wl,-rpath,$(LIBDIR) -lemsguard $(SSL_LIBS)
