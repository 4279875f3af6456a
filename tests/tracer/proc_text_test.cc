// /proc text parsers: the kernel's own files, and text they must survive.
#include "tracer/proc_text.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

using namespace pat::tracer;

namespace {
std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}
}  // namespace

TEST_CASE("/proc/self/stat and status of this very process") {
  auto stat = parse_proc_stat(slurp("/proc/self/stat"));
  REQUIRE(stat);
  CHECK(stat->num_threads >= 1);
  auto status = slurp("/proc/self/status");
  CHECK(parse_status_number(status, "Tgid") == static_cast<std::uint64_t>(::getpid()));
  CHECK(parse_status_number(status, "VmRSS").value_or(0) > 0);
  CHECK_FALSE(parse_status_number(status, "NoSuchField"));
}

TEST_CASE("comm with blanks and parentheses; fields counted from the last ')'") {
  std::string stat = "42 (a) (b c)) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 5 0 1000 0 0";
  auto parsed = parse_proc_stat(stat);
  REQUIRE(parsed);
  CHECK(parsed->utime_ticks == 7);
  CHECK(parsed->stime_ticks == 3);
  CHECK(parsed->num_threads == 5);
}

TEST_CASE("text the parsers must refuse without throwing") {
  // Each of these made the old istringstream/stoull code throw or misread.
  for (const char* text : {"", ")", "1 (x)", "1 (x) S", "1 (x)\n", "1 (x) S 1 2 3 4 5 6 7 8 9 10 x 3 0 0 20 0 5",
                           "1 (x) S 1 2 3 4 5 6 7 8 9 10 99999999999999999999999 3 0 0 20 0 5",
                           "1 (x) S 1 2 3 4 5 6 7 8 9 10 7 3 0 0 20 0 -5"}) {
    CAPTURE(text);
    CHECK_FALSE(parse_proc_stat(text));
  }
  CHECK_FALSE(parse_status_number("VmRSS:", "VmRSS"));
  CHECK_FALSE(parse_status_number("VmRSS:\tkB", "VmRSS"));
  CHECK_FALSE(parse_status_number("VmRSS: 99999999999999999999999 kB", "VmRSS"));
  CHECK_FALSE(parse_status_number("VmRSSX: 5 kB", "VmRSS"));
  CHECK(parse_status_number("Name:\tx\nVmRSS:\t  12 kB\n", "VmRSS") == 12);
}
