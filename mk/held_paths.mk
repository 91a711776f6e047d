# SPDX-License-Identifier: Apache-2.0
# Paths into a TLS <= 1.2 handshake that held in the issue 15 review, kept
# held: DTLS 1.2/1.0 and TLS 1.0/1.1 server refusal and client non-offer,
# client sessions by SSL_copy_session_id, SSL_SESSION_dup, a stored (d2i)
# session and SSL_clear reuse; each with a stock control that resumes.
UNIT_SUITES += check_held_paths

tests: $(BUILD)/test/check_held_paths

$(BUILD)/test/check_held_paths: $(BUILD)/test/check_held_paths.o $(BUILD)/test/harness.o $(BUILD)/test/harness_check.o $(TEST_DEPS)
	$(CC) -o $@ $(BUILD)/test/check_held_paths.o $(BUILD)/test/harness.o $(BUILD)/test/harness_check.o $(TEST_LDFLAGS) $(CHECK_LIBS)
