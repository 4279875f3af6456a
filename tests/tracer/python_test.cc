// End-to-end: Debian's /usr/bin/python3.11 as a member. It is ET_EXEC at
// 0x400000, so one copy fits in an address space. The path is explicit: a
// pyenv python may come first on PATH and is not what we test.
#include <doctest/doctest.h>
#include <signal.h>

#include "tests/tracer/test_host.h"
#include "base/pidfd.h"

using namespace pat::tracer;
using namespace pat::tracer::testing;

namespace {
constexpr const char* kPython = "/usr/bin/python3.11";
}

TEST_CASE("python3.11 runs json, ssl, threads, subprocess, fork pools and a busy heap") {
  LaunchSpec spec = spec_for(kPython, {"python3.11", std::string(TRACER_SOURCE_PROGRAMS_DIR) + "/python_workout.py"});
  spec.env = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"};
  RunResult r = run_member(spec, std::chrono::seconds(120));
  CHECK(r.err == "");
  CHECK(r.exit_code == 0);
  CHECK(r.out == "python ok True\n");
}

TEST_CASE("python3.11 sees itself as its executable, with readlink(2)'s exact semantics") {
  // readlink(2) writes no NUL and truncates to bufsiz; bufsiz 0 is EINVAL.
  const char* script = R"(
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(b"#" * 16)
n = libc.readlink(b"/proc/self/exe", buf, 5)
zero = libc.readlink(b"/proc/self/exe", buf, 0)
print(os.readlink("/proc/self/exe"), sys.executable, n, buf.raw[:7], zero, ctypes.get_errno())
)";
  LaunchSpec spec = spec_for(kPython, {"python3.11", "-c", script});
  spec.env = {"PATH=/usr/bin:/bin"};
  RunResult r = run_member(spec);
  CHECK(r.err == "");
  CHECK(r.exit_code == 0);
  CHECK(r.out == "/usr/bin/python3.11 /usr/bin/python3.11 5 b'/usr/##' -1 22\n");
}

TEST_CASE("a second python3.11 while one runs is an AddressConflict naming the fixed range") {
  TestHost host;
  LaunchSpec spec = spec_for(kPython, {"python3.11", "-c", "import time; time.sleep(30)"});
  auto first = host.launch(spec);
  REQUIRE(std::holds_alternative<HostedMember*>(first));
  HostedMember* m = std::get<HostedMember*>(first);
  Range image = m->launched().layout->range_of(MemberLayout::Kind::ProgramImage);
  CHECK(image.start == 0x400000);

  auto second = host.launch(spec);
  REQUIRE(std::holds_alternative<LaunchError>(second));
  const LaunchError& e = std::get<LaunchError>(second);
  CHECK(e.kind == LaunchError::Kind::AddressConflict);
  CHECK(e.conflict_start == image.start);
  CHECK(e.conflict_end == image.end);
  CHECK(e.message.find("0x400000-") != std::string::npos);

  REQUIRE(host.supervisor().signal(*m->process, SIGKILL).ok());
  REQUIRE(host.run_until_all_done());
  // Once the first is gone and released, the range is free again.
  RunResult again = run_member(spec_for(kPython, {"python3.11", "-c", "print(1)"}));
  CHECK(again.exit_code == 0);
  CHECK(again.out == "1\n");
}

TEST_CASE("a fork child of a member that has not exec'd also sees the member's program") {
  const char* script = R"(
import os
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(w, os.readlink("/proc/self/exe").encode())
    os._exit(0)
os.waitpid(pid, 0)
print(os.read(r, 4096).decode())
)";
  LaunchSpec spec = spec_for(kPython, {"python3.11", "-c", script});
  spec.env = {"PATH=/usr/bin:/bin"};
  RunResult r = run_member(spec);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "/usr/bin/python3.11\n");
}
