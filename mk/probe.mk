# `emsguard probe` (tools/probe*.c, built by mk/tools.mk): its integration
# test and the test-only peers it probes (test/probe_peer.c: non-TLS,
# garbage, truncated and hanging listeners, and the DHE leading-zero peer of
# test/dhe_buggy.[ch], which needs EVP_PKEY_derive exported, see mk/dhe.mk).

INTEGRATION_SCRIPTS += probe.sh
PROBE_PEER := $(BUILD)/test/probe_peer

all: $(PROBE_PEER)

$(PROBE_PEER): $(BUILD)/test/probe_peer.o $(BUILD)/test/dhe_buggy.o $(TEST_DEPS)
	$(CC) -o $@ $(BUILD)/test/probe_peer.o $(BUILD)/test/dhe_buggy.o \
	    -Wl,--export-dynamic-symbol=EVP_PKEY_derive $(TEST_LDFLAGS) -ldl
