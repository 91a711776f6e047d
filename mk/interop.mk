# SPDX-License-Identifier: Apache-2.0
# check_interop: ticket renewal inside abbreviated handshakes and server
# renegotiation for a client certificate after resumption (issue 4, parts 3
# and 5), in memory through the harness.
UNIT_SUITES += check_interop

INTEROP_OBJS := $(BUILD)/test/check_interop.o $(BUILD)/test/interop_util.o \
                $(BUILD)/test/harness.o

tests: $(BUILD)/test/check_interop

$(BUILD)/test/check_interop: $(INTEROP_OBJS) $(TEST_DEPS)
	$(CC) -o $@ $(INTEROP_OBJS) $(TEST_LDFLAGS) $(CHECK_LIBS)
