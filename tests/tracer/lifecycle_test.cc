// End-to-end: members die with their host, and launches give back what they
// mapped.
#include <doctest/doctest.h>
#include <signal.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "tests/tracer/test_host.h"
#include "tests/tracer/test_files.h"
#include "base/pidfd.h"

using namespace pat::tracer;
using namespace pat::tracer::testing;

namespace {

// Whether any mapping of the test process overlaps `r`.
bool anything_mapped_in(const Range& r) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    std::uintptr_t start = 0, end = 0;
    char dash;
    std::istringstream(line) >> std::hex >> start >> dash >> end;
    if (Range{start, end}.overlaps(r)) return true;
  }
  return false;
}

std::vector<std::string> mapping_lines() {
  std::ifstream maps("/proc/self/maps");
  std::vector<std::string> lines;
  for (std::string line; std::getline(maps, line);) lines.push_back(line);
  return lines;
}

}  // namespace

TEST_CASE("a member dies when its host dies") {
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  pid_t host_pid = ::fork();
  REQUIRE(host_pid >= 0);
  if (host_pid == 0) {
    // The forked copy of the test process acts as a host: it launches a
    // member, reports its pid, and serves it until it is killed.
    TestHost host;
    auto launched = host.launch(spec_for("/bin/sleep", {"sleep", "100"}));
    pid_t pid = std::holds_alternative<HostedMember*>(launched) ? std::get<HostedMember*>(launched)->launched().pid : -1;
    (void)!::write(pipe_fds[1], &pid, sizeof(pid));
    host.run_until_all_done(std::chrono::seconds(100));
    ::_exit(0);
  }
  ::close(pipe_fds[1]);
  pid_t member = -1;
  REQUIRE(::read(pipe_fds[0], &member, sizeof(member)) == sizeof(member));
  ::close(pipe_fds[0]);
  REQUIRE(member > 0);
  auto opened = pat::pidfd_open(member);
  REQUIRE(opened.ok());
  pat::UniqueFd member_fd = std::move(opened.value());
  pollfd alive{member_fd.get(), POLLIN, 0};
  CHECK(::poll(&alive, 1, 200) == 0);  // running while its host lives

  REQUIRE(::kill(host_pid, SIGKILL) == 0);
  int status;
  REQUIRE(::waitpid(host_pid, &status, 0) == host_pid);
  pollfd gone{member_fd.get(), POLLIN, 0};
  CHECK(::poll(&gone, 1, 5000) == 1);  // PR_SET_PDEATHSIG took it down
}

TEST_CASE("50 launches of a static program leave the mapping count where it was") {
  const int before = mapping_count();
  for (int i = 0; i < 50; ++i) {
    RunResult r = run_member(spec_for(program("hello_static"), {"hello"}));
    REQUIRE(r.exit_code == 0);
  }
  CHECK(mapping_count() == before);
}

TEST_CASE("50 launches of /bin/true give back everything, what ld.so mapped included") {
  const std::vector<std::string> before = mapping_lines();
  for (int i = 0; i < 50; ++i) {
    TestHost host;
    auto launched = host.launch(spec_for("/bin/true", {"true"}));
    REQUIRE(std::holds_alternative<HostedMember*>(launched));
    HostedMember* m = std::get<HostedMember*>(launched);
    std::vector<Range> ranges = m->launched().layout->ranges();
    CHECK(ranges.size() == 4);  // program, its brk, ld.so, stack
    REQUIRE(host.run_until_all_done());
    REQUIRE(m->exit_code == 0);
    for (const Range& r : ranges) CHECK_FALSE(anything_mapped_in(r));
    CHECK(host.space().ledger().segment_count() == 0);
  }
  // Nothing of the members is left: no libc.so.6 of theirs, no TLS blocks.
  std::vector<std::string> after = mapping_lines();
  int added = 0;
  for (const std::string& line : after) {
    if (std::find(before.begin(), before.end(), line) != before.end()) continue;
    ++added;
    CAPTURE(line);
    CHECK(line.find("libc.so.6") == std::string::npos);
  }
  // The test process's own heap may have grown by a mapping or two.
  CHECK(added <= 2);
}
