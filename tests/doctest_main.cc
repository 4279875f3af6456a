// The main of every doctest executable: doctest's, plus a skip that CTest
// can see (tests/support/skip.h), and a failure when a filter that names
// test cases selects none (a misspelt or split filter would otherwise run
// nothing and pass).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "tests/support/skip.h"

#include <atomic>
#include <cstdio>
#include <string_view>

namespace pat::testing {

namespace {
std::atomic<bool> skipped{false};
std::atomic<unsigned> cases_selected{0};

// Hears the run's totals; says nothing itself.
struct SelectionListener : doctest::IReporter {
  explicit SelectionListener(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats& stats) override {
    cases_selected = stats.numTestCasesPassingFilters;
  }
  void test_case_start(const doctest::TestCaseData&) override {}
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};
REGISTER_LISTENER("pat_selection", 1, SelectionListener);

// doctest's options that choose which cases run (--test-case=, -tc=,
// --test-suite=, -ts=, --source-file=, -sf=, each also with doctest's
// "dt-" prefix). Excludes are not: excluding everything is no mistake.
bool selects_cases(std::string_view arg) {
  for (std::string_view dash : {"--", "-"}) {
    if (!arg.starts_with(dash)) continue;
    std::string_view name = arg.substr(dash.size());
    if (name.starts_with("dt-")) name.remove_prefix(3);
    for (std::string_view option : {"test-case=", "tc=", "test-suite=", "ts=", "source-file=", "sf="}) {
      if (name.starts_with(option)) return true;
    }
  }
  return false;
}
}  // namespace

void record_skip(const std::string& reason) {
  skipped = true;
  MESSAGE("SKIPPED: " << reason);
  std::fprintf(stderr, "SKIPPED: %s\n", reason.c_str());
}

bool any_skipped() { return skipped; }

}  // namespace pat::testing

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  int failed = context.run();
  if (context.shouldExit() || failed != 0) return failed;
  bool selecting = false;
  for (int i = 1; i < argc; ++i) selecting = selecting || pat::testing::selects_cases(argv[i]);
  if (selecting && pat::testing::cases_selected == 0) {
    // doctest splits filters at ',': a case name with one never matches.
    std::fprintf(stderr, "FAILED: the test-case filter matches no test case (a ',' in a filter splits it)\n");
    return 1;
  }
  return pat::testing::any_skipped() ? pat::testing::kSkipExitCode : 0;
}
