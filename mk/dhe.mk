# SPDX-License-Identifier: Apache-2.0
# check_dhe: DHE with peers that lack EMS, against a test-only peer that
# keeps the leading zeros of the DH secret (test/dhe_buggy.[ch]).
#
# dhe_buggy.c defines EVP_PKEY_derive; exporting it from the executable is
# what makes libssl's call bind to it (dhe_buggy_init() checks that).  ld
# would export it anyway, since libssl references it; the flag says so.

UNIT_SUITES += check_dhe
DHE_BIN := $(BUILD)/test/check_dhe

tests: $(DHE_BIN)

$(DHE_BIN): $(BUILD)/test/check_dhe.o $(BUILD)/test/dhe_buggy.o $(TEST_DEPS)
	$(CC) -o $@ $(BUILD)/test/check_dhe.o $(BUILD)/test/dhe_buggy.o \
	    -Wl,--export-dynamic-symbol=EVP_PKEY_derive \
	    $(TEST_LDFLAGS) $(CHECK_LIBS) -ldl
