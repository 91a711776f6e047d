# SPDX-License-Identifier: Apache-2.0
# emsguard's errors the OpenSSL way (issue 17): the library name registered
# ("emsguard", not "lib(128)"), a reason string per EMSGUARD_R_* code, and
# the raising call site recorded, through the API and inside the module.
UNIT_SUITES += check_errors

tests: $(BUILD)/test/check_errors

$(BUILD)/test/check_errors: $(BUILD)/test/check_errors.o $(BUILD)/test/conf_util.o $(TEST_DEPS)
	$(CC) -o $@ $(BUILD)/test/check_errors.o $(BUILD)/test/conf_util.o $(TEST_LDFLAGS) $(CHECK_LIBS)
