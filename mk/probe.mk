# SPDX-License-Identifier: Apache-2.0
# `emsguard probe` (tools/probe*.c, built by mk/tools.mk): its integration
# test and the test-only peers it probes (test/probe_peer.c: non-TLS,
# garbage, truncated and hanging listeners, and the DHE leading-zero peer of
# test/dhe_buggy.[ch], which needs EVP_PKEY_derive exported, see mk/dhe.mk).

INTEGRATION_SCRIPTS += probe.sh
# --starttls smtp/imap/pop3 against Postfix and Dovecot (legacy and preloaded),
# and the --targets estate scan.
INTEGRATION_SCRIPTS += probe_mail.sh probe_targets.sh
PROBE_PEER := $(BUILD)/test/probe_peer

tests: $(PROBE_PEER)

$(PROBE_PEER): $(BUILD)/test/probe_peer.o $(BUILD)/test/dhe_buggy.o $(TEST_DEPS)
	$(CC) -o $@ $(BUILD)/test/probe_peer.o $(BUILD)/test/dhe_buggy.o \
	    -Wl,--export-dynamic-symbol=EVP_PKEY_derive $(TEST_LDFLAGS) -ldl

# vsftpd limits its own address space, so under ASan probe.sh runs its
# preloaded vsftpd with the normal tree's (unsanitized) preload library.
ifeq ($(SANITIZE),1)
.PHONY: probe-plain-preload
probe-plain-preload:
	$(MAKE) SANITIZE= BUILD_DIR=$(BUILD_DIR) $(BUILD_DIR)/libemsguard-preload.so \
	    $(BUILD_DIR)/$(SONAME) $(BUILD_DIR)/$(LIBNAME)
integration-check: probe-plain-preload
endif
