# SPDX-License-Identifier: Apache-2.0
# Issue 15, attack round 2, R4.
#
# check_setters2: EMSGUARD_CTX_set_verify(), EMSGUARD_set_verify(),
# EMSGUARD_CTX_set_security_callback() and EMSGUARD_set_security_callback()
# chain the application's callback behind emsguard's verify and security
# callbacks (PKCS and Diffie-Hellman ClientMinKeyBitLength, a
# RequireExtendedMasterSecret=1 client's ServerHello check), and the
# matching getters read it back, in memory.
UNIT_SUITES += check_setters2

tests: $(BUILD)/test/check_setters2

$(BUILD)/test/check_setters2: $(BUILD)/test/check_setters2.o $(BUILD)/test/harness.o $(TEST_DEPS)
	$(CC) -o $@ $(BUILD)/test/check_setters2.o $(BUILD)/test/harness.o $(TEST_LDFLAGS) $(CHECK_LIBS)
