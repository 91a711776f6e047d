# SPDX-License-Identifier: Apache-2.0
# test/preload_config.sh (issue 15, attack round 2: R2 and R4), under
# libemsguard-preload.so against stock s_server/s_client:
#  - a program that loads its own OpenSSL configuration (filename or
#    appname, as Postfix's tls_config_file/tls_config_name) gets the policy
#    of the emsguard provider its OpenSSL activated; a bad value there fails
#    SSL_CTX_new; the default file's behaviour is unchanged;
#  - SSL_CTX_set_verify/SSL_set_verify and the security callback setters
#    after SSL_CTX_new are chained behind emsguard's callbacks.
# The helpers link libssl (libcrypto), never libemsguard.
INTEGRATION_SCRIPTS += preload_config.sh

PRELOAD_CONFIG_BINS := $(BUILD)/test/preload/own_config_server $(BUILD)/test/preload/set_cb_client

tests: $(PRELOAD_CONFIG_BINS)

$(BUILD)/test/preload/own_config_server: $(BUILD)/test/preload/own_config_server.o
	$(CC) $(SANFLAGS) -o $@ $< $(SSL_LIBS) -ldl

$(BUILD)/test/preload/set_cb_client: $(BUILD)/test/preload/set_cb_client.o
	$(CC) $(SANFLAGS) -o $@ $< $(SSL_LIBS)
