// Skipping a test case the machine cannot run (a kernel feature missing, no
// IPv4 loopback), so that CTest reports a skip, not a pass. Such a case
// runs as a CTest test of its own (pat_add_test's SKIPPABLE_CASES in
// tests/CMakeLists.txt), and tests/doctest_main.cc exits with
// kSkipExitCode, which that test's SKIP_RETURN_CODE names, when the case
// skipped and nothing failed.
#pragma once

#include <doctest/doctest.h>

#include <string>

namespace pat::testing {

inline constexpr int kSkipExitCode = 77;

// Records that the running case skipped, and says why.
void record_skip(const std::string& reason);
bool any_skipped();

}  // namespace pat::testing

// Ends the running test case as skipped.
#define PAT_SKIP(reason)                   \
  do {                                     \
    ::pat::testing::record_skip(reason);   \
    return;                                \
  } while (false)
