# SPDX-License-Identifier: Apache-2.0
# The server's ClientHello callback on every path (issue 15: F2, F3, C2):
# RequireExtendedMasterSecret=1 decided on the negotiated version (TLS 1.2
# methods, a certificate TLS 1.3 cannot use, DTLS listing 0x0304), with
# SSL_OP_NO_EXTENDED_MASTER_SECRET on the server, and renegotiation compared
# with the previous ClientHello.  Plus `emsguard policy` reporting what
# OpenSSL's own configuration switches off.
UNIT_SUITES += check_hello_paths
INTEGRATION_SCRIPTS += policy_effective.sh reneg_stock.sh

tests: $(BUILD)/test/check_hello_paths

$(BUILD)/test/check_hello_paths: $(BUILD)/test/check_hello_paths.o $(BUILD)/test/harness.o $(BUILD)/test/harness_check.o $(TEST_DEPS)
	$(CC) -o $@ $(BUILD)/test/check_hello_paths.o $(BUILD)/test/harness.o $(BUILD)/test/harness_check.o $(TEST_LDFLAGS) $(CHECK_LIBS)
