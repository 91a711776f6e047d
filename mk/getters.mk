# SPDX-License-Identifier: Apache-2.0
# Issue 15, attack findings N3 and N5.
#
# check_getters: EMSGUARD_CTX_sess_get_new_cb(), EMSGUARD_CTX_sess_get_get_cb(),
# EMSGUARD_CTX_get_info_callback() and EMSGUARD_get_info_callback() return the
# application's callbacks, and chaining through them ("prev = get(); set(mine);
# mine calls prev", twice) reaches every callback once per event, in memory.
UNIT_SUITES += check_getters

tests: $(BUILD)/test/check_getters

$(BUILD)/test/check_getters: $(BUILD)/test/check_getters.o $(BUILD)/test/harness.o $(BUILD)/test/harness_check.o $(TEST_DEPS)
	$(CC) -o $@ $(BUILD)/test/check_getters.o $(BUILD)/test/harness.o $(BUILD)/test/harness_check.o $(TEST_LDFLAGS) $(CHECK_LIBS)

# test/preload_static.sh: programs that carry their own OpenSSL (the preload
# must say so at start-up), and the getters under the preload.  The helpers
# link libssl or nothing, never libemsguard.
INTEGRATION_SCRIPTS += preload_static.sh

PRELOAD_STATIC_BINS := $(BUILD)/test/preload/chain_getters $(BUILD)/test/preload/own_openssl \
                       $(BUILD)/test/preload/no_openssl $(BUILD)/test/preload/libegownssl.so

tests: $(PRELOAD_STATIC_BINS)

$(BUILD)/test/preload/chain_getters: $(BUILD)/test/preload/chain_getters.o
	$(CC) $(SANFLAGS) -o $@ $< $(SSL_LIBS) -ldl

# -rdynamic: its SSL_CTX_new, SSL_CTX_new_ex and syslog() are exported, as an
# executable with OpenSSL linked in exports OpenSSL's functions.
$(BUILD)/test/preload/own_openssl: $(BUILD)/test/preload/own_openssl.o
	$(CC) $(SANFLAGS) -rdynamic -o $@ $< -ldl

$(BUILD)/test/preload/no_openssl.o: test/preload/own_openssl.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DWITHOUT_OWN_OPENSSL -c -o $@ $<

$(BUILD)/test/preload/no_openssl: $(BUILD)/test/preload/no_openssl.o
	$(CC) $(SANFLAGS) -rdynamic -o $@ $< -ldl

# SSL_CTX_new in a library preloaded in front of libemsguard-preload.so.
$(BUILD)/test/preload/libegownssl.so: $(BUILD)/test/preload/fake_libssl.o
	$(CC) -shared $(SANFLAGS) -o $@ $<
