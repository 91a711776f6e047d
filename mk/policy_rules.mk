# SPDX-License-Identifier: Apache-2.0
# The policy's rules, one function each (provider/policy_rules.c): the
# Require-EMS rule, the DHE rule and the resumption verdict as tables.  The
# rules are internal, so the suite links their object besides the library.
UNIT_SUITES += check_policy_rules

tests: $(BUILD)/test/check_policy_rules

$(BUILD)/test/check_policy_rules: $(BUILD)/test/check_policy_rules.o \
                                  $(BUILD)/provider/policy_rules.o $(TEST_DEPS)
	$(CC) -o $@ $(BUILD)/test/check_policy_rules.o $(BUILD)/provider/policy_rules.o \
	    $(TEST_LDFLAGS) $(CHECK_LIBS)
