# SPDX-License-Identifier: Apache-2.0
# Client-side paths into a TLS <= 1.2 handshake (issue 15, F1 and F9):
# renegotiation (HelloRequest, SSL_renegotiate_abbreviated, DTLS) and one
# SSL_CTX in both roles sharing its internal cache, in memory.
UNIT_SUITES += check_client_paths

tests: $(BUILD)/test/check_client_paths

$(BUILD)/test/check_client_paths: $(BUILD)/test/check_client_paths.o $(BUILD)/test/harness.o $(BUILD)/test/harness_check.o $(TEST_DEPS)
	$(CC) -o $@ $(BUILD)/test/check_client_paths.o $(BUILD)/test/harness.o $(BUILD)/test/harness_check.o $(TEST_LDFLAGS) $(CHECK_LIBS)
