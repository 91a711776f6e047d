# SPDX-License-Identifier: Apache-2.0
# Registry exports shaped as administrators have them (issue 22): the
# settings and the exact warnings each export in test/reg/ gives, both
# cipher-suite lists, and the log level of each stored line.
UNIT_SUITES += check_reg_corpus

tests: $(BUILD)/test/check_reg_corpus

$(BUILD)/test/check_reg_corpus.o: test/reg_corpus_cases.h

$(BUILD)/test/check_reg_corpus: $(BUILD)/test/check_reg_corpus.o $(BUILD)/test/harness.o $(BUILD)/test/harness_check.o $(TEST_DEPS)
	$(CC) -o $@ $(BUILD)/test/check_reg_corpus.o $(BUILD)/test/harness.o $(BUILD)/test/harness_check.o $(TEST_LDFLAGS) $(CHECK_LIBS)

INTEGRATION_SCRIPTS += policy_reg_lists.sh
