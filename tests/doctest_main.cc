// The main of every doctest executable: doctest's, plus a skip that CTest
// can see (tests/support/skip.h).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "tests/support/skip.h"

#include <atomic>
#include <cstdio>

namespace pat::testing {

namespace {
std::atomic<bool> skipped{false};
}

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
  return pat::testing::any_skipped() ? pat::testing::kSkipExitCode : 0;
}
