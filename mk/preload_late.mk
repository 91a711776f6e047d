# SPDX-License-Identifier: Apache-2.0
# test/preload_late.sh (issue 15, attack round 3: S2), under
# libemsguard-preload.so against stock s_client: a program that makes an
# SSL_CTX before it loads its configuration (CONF_modules_load_file) gets,
# on the SSL_CTXs it makes afterwards, the policy of the emsguard provider
# that configuration activated, and is told loudly that its earlier SSL_CTX
# kept the earlier policy.  The helper links libssl (libcrypto), never
# libemsguard.
INTEGRATION_SCRIPTS += preload_late.sh

PRELOAD_LATE_BINS := $(BUILD)/test/preload/late_config_server

tests: $(PRELOAD_LATE_BINS)

$(BUILD)/test/preload/late_config_server: $(BUILD)/test/preload/late_config_server.o
	$(CC) $(SANFLAGS) -o $@ $< $(SSL_LIBS)
