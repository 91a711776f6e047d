# SPDX-License-Identifier: Apache-2.0
# Schannel values held on every connection, round 2 (issue 15): sessions
# from a fleet member or from before a policy change (cipher, protocol,
# ServerCacheTime), an SNI switch into a ctx with Schannel values, a
# both-roles ctx keeping the application's renegotiation option, and the
# server's DH group never lowered below the application's.
UNIT_SUITES += check_schannel_hold2

tests: $(BUILD)/test/check_schannel_hold2

$(BUILD)/test/check_schannel_hold2: $(BUILD)/test/check_schannel_hold2.o $(BUILD)/test/harness.o $(BUILD)/test/harness_check.o $(TEST_DEPS)
	$(CC) -o $@ $(BUILD)/test/check_schannel_hold2.o $(BUILD)/test/harness.o $(BUILD)/test/harness_check.o $(TEST_LDFLAGS) $(CHECK_LIBS)
