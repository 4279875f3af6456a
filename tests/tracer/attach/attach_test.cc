// Attach (tracer/attach/) end to end against real processes: an
// unprivileged host (attach_driver, as pat-host runs) attaches programs run
// by the same unprivileged user under their own parent (attach_parent),
// and the test, as root, checks from outside what the program, its parent
// and the host see.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/tracer/attach/attach_lab.h"

using namespace pat::tracer::attach_testing;
using namespace std::chrono_literals;

namespace {

std::string proc_field(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) {
      auto v = line.substr(key.size() + 1);
      return v.substr(v.find_first_not_of(" \t"));
    }
  }
  return "";
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Waits until `condition` holds (10 ms steps), up to `timeout`.
template <class F>
bool soon(F condition, std::chrono::milliseconds timeout = 5s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// Mappings of `host` at addresses where `target` has mappings: what a failed
// attach would have left behind in the group.
std::string overlapping_mappings(pid_t host, pid_t target) {
  auto ranges = [](pid_t pid) {
    std::vector<std::pair<unsigned long, unsigned long>> out;
    std::istringstream in(read_text("/proc/" + std::to_string(pid) + "/maps"));
    std::string line;
    while (std::getline(in, line)) {
      unsigned long start, end;
      if (line.find("[vsyscall]") == std::string::npos && std::sscanf(line.c_str(), "%lx-%lx", &start, &end) == 2)
        out.emplace_back(start, end);
    }
    return out;
  };
  std::string found;
  for (const auto& h : ranges(host)) {
    for (const auto& t : ranges(target)) {
      if (h.first < t.second && t.first < h.second) found += std::to_string(h.first) + " ";
    }
  }
  return found;
}

long number_after(const std::string& text, const std::string& key) {
  auto at = text.find(key + "=");
  return at == std::string::npos ? -1 : std::strtol(text.c_str() + at + key.size() + 1, nullptr, 10);
}

// The workload under its parent, ready.
struct Workload {
  std::string socket, file;
  Target target;
  Workload(const Lab& lab, const std::string& name)
      : socket(lab.work(name + ".sock")),
        file(lab.work(name + ".txt")),
        target(lab, {lab.bin("attach_workload"), socket, file}) {
    REQUIRE(target.report("pipe ready"));
  }
  std::string ask(const std::string& command) const { return pat::tracer::attach_testing::ask(socket, command); }
};

}  // namespace

TEST_CASE("a 4-thread program keeps counting, appending and answering in the group, and its parent sees no difference") {
  Lab lab;
  Driver driver(lab);
  Workload w(lab, "w");
  std::this_thread::sleep_for(100ms);
  const std::string before = w.ask("counts");
  const std::string checksum = w.ask("checksum");
  REQUIRE(number_after(before, "exchanges") > 0);

  const std::string result = driver.attach(w.target.pid());
  REQUIRE_MESSAGE(result.rfind("attached ", 0) == 0, result);
  const pid_t member = static_cast<pid_t>(field(result, "member"));
  CHECK(field(result, "threads") == 5);

  // One address space with the host; the original PID is the stub now.
  CHECK(same_address_space(member, driver.pid()));
  CHECK_FALSE(same_address_space(w.target.pid(), driver.pid()));
  CHECK(proc_field(w.target.pid(), "Name") == "attach_workload");
  CHECK(read_text("/proc/" + std::to_string(w.target.pid()) + "/cmdline").find("attach_workload") != std::string::npos);
  CHECK(proc_field(w.target.pid(), "VmRSS").find(" kB") != std::string::npos);
  CHECK(std::stol(proc_field(w.target.pid(), "VmRSS")) < 1024);  // the old address space is gone
  CHECK(std::filesystem::is_empty("/proc/" + std::to_string(w.target.pid()) + "/fd"));  // the stub holds nothing
  // The task that kept the old address space through the execve is gone,
  // reaped by the stub.
  CHECK(soon([&] { return read_text("/proc/" + std::to_string(w.target.pid()) + "/task/" + std::to_string(w.target.pid()) + "/children").empty(); }));

  // Same memory, threads still at work, TLS counters going on from where they were.
  CHECK(w.ask("checksum") == checksum);
  CHECK(w.ask("tid") == "pid=" + std::to_string(member) + " tid=" + std::to_string(member) + " self_tid=" + std::to_string(member));
  std::this_thread::sleep_for(200ms);
  const std::string after = w.ask("counts");
  CHECK(number_after(after, "exchanges") > number_after(before, "exchanges"));
  CHECK(number_after(after, "rounds") > number_after(before, "rounds"));
  CHECK(number_after(after, "appended") > number_after(before, "appended"));
  // pthread_kill goes through glibc's cached TID of the target thread.
  CHECK(w.ask("kill") == "kill rc=0 handled=yes");
  // New memory: malloc (brk, emulated by the host, and mmap) and mmap.
  CHECK(w.ask("malloc 20") == "malloc ok ok");
  CHECK(w.ask("mmap 8") == "mmap ok");

  // The appended file: every line once, in order, across the attach.
  std::istringstream lines(read_text(w.file));
  std::string line;
  long expected = 1;
  bool in_order = true;
  while (std::getline(lines, line)) in_order = in_order && line == "line " + std::to_string(expected++);
  CHECK(in_order);
  CHECK(expected > 10);

  // The parent reads EOF exactly when the member closes its end of the pipe.
  CHECK_FALSE(w.target.report("pipe_eof", 200ms));
  CHECK(w.ask("close") == "closed");
  CHECK(w.target.report("pipe_eof"));
  CHECK(w.ask("ping") == "pong");

  // Its exit status is what the parent reads.
  CHECK(w.ask("exit 7") == "bye");
  CHECK(w.target.report("exited 7"));
  CHECK(driver.event("member_end"));
  auto stub_end = driver.event("stub_end");
  REQUIRE(stub_end);
  CHECK(stub_end->find("exited 7") != std::string::npos);
}

TEST_CASE("signals sent to the original PID reach the member; stop, continue and kill act on both") {
  Lab lab;
  Driver driver(lab);
  Workload w(lab, "s");
  const std::string result = driver.attach(w.target.pid());
  REQUIRE_MESSAGE(result.rfind("attached ", 0) == 0, result);
  const pid_t member = static_cast<pid_t>(field(result, "member"));
  const pid_t original = w.target.pid();

  // One at a time: a second standard signal sent while the first is still
  // pending merges with it, attached or not.
  ::kill(original, SIGINT);
  CHECK(soon([&] { return w.ask("signals") == "int=1 term=0 usr1=0"; }));
  ::kill(original, SIGTERM);
  CHECK(soon([&] { return w.ask("signals") == "int=1 term=1 usr1=0"; }));
  ::kill(original, SIGUSR1);
  CHECK(soon([&] { return w.ask("signals") == "int=1 term=1 usr1=1"; }));
  ::kill(original, SIGUSR1);
  CHECK(soon([&] { return w.ask("signals") == "int=1 term=1 usr1=2"; }));

  ::kill(original, SIGSTOP);
  CHECK(w.target.report("stopped 19"));
  CHECK(soon([&] { return proc_field(member, "State")[0] == 'T'; }));
  ::kill(original, SIGCONT);
  CHECK(w.target.report("continued"));
  CHECK(soon([&] { return proc_field(member, "State")[0] != 'T'; }));
  CHECK(w.ask("ping") == "pong");

  // The member stopping on its own stops the stub: the job shows stopped.
  ::kill(member, SIGSTOP);
  CHECK(w.target.report("stopped"));
  ::kill(member, SIGCONT);
  CHECK(soon([&] { return w.ask("ping") == "pong"; }));

  ::kill(original, SIGKILL);
  CHECK(w.target.report("signaled 9"));
  CHECK(soon([&] { return proc_field(member, "State").empty() || proc_field(member, "State")[0] == 'Z'; }));
  CHECK(driver.event("member_end"));
}

TEST_CASE("a member killed by a signal ends its stub by the same signal") {
  Lab lab;
  Driver driver(lab);
  Workload w(lab, "a");
  REQUIRE(driver.attach(w.target.pid()).rfind("attached ", 0) == 0);
  CHECK(w.ask("abort") == "bye");
  CHECK(w.target.report("signaled 6"));
}

TEST_CASE("a host killed after the switch takes the member with it, and the parent sees SIGKILL") {
  Lab lab;
  Driver driver(lab);
  Workload w(lab, "k");
  const std::string result = driver.attach(w.target.pid());
  REQUIRE(result.rfind("attached ", 0) == 0);
  const pid_t member = static_cast<pid_t>(field(result, "member"));
  driver.process().kill_now();
  CHECK(w.target.report("signaled 9"));
  CHECK(soon([&] { return proc_field(member, "State").empty(); }));
}

TEST_CASE("refusals name their reason and leave the process exactly as it was") {
  Lab lab;
  Driver driver(lab);
  struct Case {
    const char* mode;
    const char* reason;
  };
  const Case cases[] = {
      {"child", "has_children"},       {"seccomp", "own_seccomp"},          {"io_uring", "unsupported_fd"},
      {"userfaultfd", "unsupported_fd"}, {"timer", "unsupported_state"},     {"lock", "unsupported_state"},
      {"shared_anon", "unsupported_mapping"}, {"nondumpable", "not_dumpable"},
  };
  for (const Case& c : cases) {
    const std::string mode = c.mode;
    CAPTURE(mode);
    Target target(lab, {lab.bin("attach_target"), c.mode});
    REQUIRE(target.report("ready"));
    REQUIRE(soon([&] { return proc_field(target.pid(), "State")[0] == 'S'; }));
    std::this_thread::sleep_for(50ms);
    const Snapshot before = snapshot(target.pid());
    const std::string result = driver.attach(target.pid());
    CHECK_MESSAGE(result.find(std::string("reason=") + c.reason) != std::string::npos, result);
    const Snapshot after = snapshot(target.pid());
    CHECK_MESSAGE(difference(before, after) == "", difference(before, after));
  }
}

TEST_CASE("refusals of who may be attached: owner, state, tracer, PID 1, kernel threads, members") {
  Lab lab;
  Driver driver(lab);
  CHECK(driver.attach(1).find("reason=init_process") != std::string::npos);
  CHECK(driver.attach(2).find("reason=kernel_thread") != std::string::npos);
  CHECK(driver.attach(4194303).find("reason=not_found") != std::string::npos);

  Target root_owned(lab, {lab.bin("attach_target"), "plain"}, /*as_root=*/true);
  REQUIRE(root_owned.report("ready"));
  CHECK(driver.attach(root_owned.pid()).find("reason=wrong_owner") != std::string::npos);

  Target stopped(lab, {lab.bin("attach_target"), "threads"});
  REQUIRE(stopped.report("ready"));
  ::kill(stopped.pid(), SIGSTOP);
  REQUIRE(soon([&] { return proc_field(stopped.pid(), "State")[0] == 'T'; }));
  const Snapshot stopped_before = snapshot(stopped.pid());
  const std::string stopped_result = driver.attach(stopped.pid());
  CHECK_MESSAGE(stopped_result.find("reason=not_running") != std::string::npos, stopped_result);
  CHECK(difference(stopped_before, snapshot(stopped.pid())) == "");

  Target traced(lab, {lab.bin("attach_target"), "plain"});
  REQUIRE(traced.report("ready"));
  REQUIRE(::ptrace(PTRACE_SEIZE, traced.pid(), 0, 0) == 0);
  CHECK(driver.attach(traced.pid()).find("reason=already_traced") != std::string::npos);
  ::ptrace(PTRACE_DETACH, traced.pid(), 0, 0);

  // A member of the group already: its address space is the host's.
  Workload w(lab, "m");
  const std::string result = driver.attach(w.target.pid());
  REQUIRE(result.rfind("attached ", 0) == 0);
  const std::string again = driver.attach(static_cast<pid_t>(field(result, "member")));
  CHECK_MESSAGE(again.find("reason=already_member") != std::string::npos, again);
}

TEST_CASE("a fault at any step before the switch leaves the process as it was, and it can be attached after") {
  Lab lab;
  Driver driver(lab);
  Target target(lab, {lab.bin("attach_target"), "sigaltstack"});
  REQUIRE(target.report("ready"));
  REQUIRE(soon([&] { return proc_field(target.pid(), "State")[0] == 'S'; }));
  std::this_thread::sleep_for(50ms);
  for (const char* step : {"inspect", "open_process", "map_layout", "precopy", "seize", "final_copy", "capture_threads",
                           "capture_process", "build_member", "load_registers", "switch"}) {
    const std::string step_name = step;
    CAPTURE(step_name);
    for (const char* precopy : {"precopy=never", "precopy=always"}) {
      const std::string precopy_name = precopy;
      CAPTURE(precopy_name);
      const Snapshot before = snapshot(target.pid());
      const std::string result = driver.attach(target.pid(), std::string("fail=") + step + " " + precopy);
      CHECK_MESSAGE(result.find(std::string("failed step=") + step + " message=injected fault") == 0, result);
      const Snapshot after = snapshot(target.pid());
      CHECK_MESSAGE(difference(before, after) == "", difference(before, after));
      // Nothing left behind in the host: no mapping, no half-made member.
      CHECK(overlapping_mappings(driver.pid(), target.pid()) == "");
      CHECK(read_text("/proc/" + std::to_string(driver.pid()) + "/task/" + std::to_string(driver.pid()) + "/children") == "");
    }
  }
  const std::string result = driver.attach(target.pid());
  CHECK_MESSAGE(result.rfind("attached ", 0) == 0, result);
  CHECK(field(result, "threads") == 4);
}

TEST_CASE("a stub that cannot be executed fails the switch and leaves the process as it was") {
  Lab lab;
  Driver driver(lab, lab.work("no-such-stub"));
  Target target(lab, {lab.bin("attach_target"), "threads"});
  REQUIRE(target.report("ready"));
  REQUIRE(soon([&] { return proc_field(target.pid(), "State")[0] == 'S'; }));
  const Snapshot before = snapshot(target.pid());
  const std::string result = driver.attach(target.pid());
  CHECK_MESSAGE(result.rfind("failed step=switch", 0) == 0, result);
  CHECK(result.find("No such file or directory") != std::string::npos);
  CHECK_MESSAGE(difference(before, snapshot(target.pid())) == "", difference(before, snapshot(target.pid())));
}

TEST_CASE("the host killed at any step before the switch leaves the process running as it was") {
  Lab lab;
  Target target(lab, {lab.bin("attach_target"), "threads"});
  REQUIRE(target.report("ready"));
  REQUIRE(soon([&] { return proc_field(target.pid(), "State")[0] == 'S'; }));
  for (const char* step : {"inspect", "open_process", "map_layout", "precopy", "seize", "final_copy", "capture_threads",
                           "capture_process", "build_member", "load_registers", "switch"}) {
    const std::string step_name = step;
    CAPTURE(step_name);
    const Snapshot before = snapshot(target.pid());
    Driver driver(lab);
    const std::string result = driver.attach(target.pid(), std::string("hold=") + step + " precopy=always");
    CHECK_MESSAGE(result == std::string("holding step=") + step, result);
    driver.process().kill_now();
    CHECK(soon([&] { return proc_field(target.pid(), "TracerPid") == "0"; }));
    const Snapshot after = snapshot(target.pid());
    CHECK_MESSAGE(difference(before, after) == "", difference(before, after));
  }
  CHECK_FALSE(target.report("exited", 100ms));
}

TEST_CASE("signals pending in the process move to the member") {
  Lab lab;
  Driver driver(lab);
  Target target(lab, {lab.bin("attach_target"), "pending"});
  REQUIRE(target.report("ready"));
  REQUIRE(soon([&] { return proc_field(target.pid(), "State")[0] == 'S'; }));
  REQUIRE(proc_field(target.pid(), "ShdPnd") == "0000000000000200");  // SIGUSR1
  const std::string result = driver.attach(target.pid());
  REQUIRE_MESSAGE(result.rfind("attached ", 0) == 0, result);
  const pid_t member = static_cast<pid_t>(field(result, "member"));
  CHECK(proc_field(member, "ShdPnd") == "0000000000000200");
  CHECK(proc_field(member, "SigBlk") == "0000000000000200");
  CHECK(proc_field(target.pid(), "ShdPnd") == "0000000000000000");  // not forwarded a second time
  CHECK((std::stoull(proc_field(member, "SigCgt"), nullptr, 16) & 0x200) != 0);
}

TEST_CASE("python3.11 attaches and goes on; a second one is refused for its fixed address and keeps running") {
  Lab lab;
  Driver driver(lab);
  const std::string sock1 = lab.work("py1.sock"), sock2 = lab.work("py2.sock");
  Target first(lab, {"/usr/bin/python3.11", lab.bin("attach_server.py"), sock1});
  Target second(lab, {"/usr/bin/python3.11", lab.bin("attach_server.py"), sock2});
  REQUIRE(first.report("pipe ready"));
  REQUIRE(second.report("pipe ready"));
  CHECK(ask(sock1, "put answer 42") == "ok");
  const long count_before = std::stol(ask(sock1, "count").substr(6));

  const std::string result = driver.attach(first.pid());
  REQUIRE_MESSAGE(result.rfind("attached ", 0) == 0, result);
  const pid_t member = static_cast<pid_t>(field(result, "member"));
  CHECK(same_address_space(member, driver.pid()));
  CHECK(ask(sock1, "get answer") == "value 42");
  CHECK(ask(sock1, "pid") == "pid " + std::to_string(member) + " threads 2");
  CHECK(soon([&] { return std::stol(ask(sock1, "count").substr(6)) > count_before + 20; }));
  CHECK(ask(sock1, "work 64") == "work 16384");  // 64 MiB, one byte set per page  // Python's allocator: brk and mmap in the group

  // The second one runs its counting thread all along: its mappings, fds
  // and tracer must not change (its memory and registers do, by itself).
  const Snapshot before = snapshot(second.pid());
  const std::string refused = driver.attach(second.pid());
  CHECK_MESSAGE(refused.find("reason=address_conflict owner=" + std::to_string(member)) != std::string::npos, refused);
  const Snapshot after = snapshot(second.pid());
  CHECK(after.tracer == 0);
  CHECK(after.maps == before.maps);
  CHECK(after.fds == before.fds);
  CHECK(ask(sock2, "put k v") == "ok");
  CHECK(ask(sock2, "get k") == "value v");

  CHECK(ask(sock1, "exit 3") == "");
  CHECK(first.report("exited 3"));
}

TEST_CASE("memory written during the pre-copy arrives: a program sweeping 64 MiB is attached with and without one") {
  Lab lab;
  Driver driver(lab);
  for (const char* precopy : {"precopy=always", "precopy=never"}) {
    const std::string precopy_name = precopy;
    CAPTURE(precopy_name);
    const std::string sock = lab.work(std::string("churn-") + precopy + ".sock");
    Target target(lab, {lab.bin("attach_churn"), sock, "64", "40"});
    REQUIRE(target.report("pipe ready", 60s));
    REQUIRE(ask(sock, "check").rfind("ok ", 0) == 0);
    const std::string result = driver.attach(target.pid(), precopy);
    REQUIRE_MESSAGE(result.rfind("attached ", 0) == 0, result);
    if (precopy_name == "precopy=always") {
      CHECK(field(result, "precopied") >= 64l << 20);
      CHECK(field(result, "copied_stopped") < 32l << 20);  // only what was written since the last pass
    } else {
      CHECK(field(result, "precopied") == 0);
    }
    for (int i = 0; i < 3; ++i) {
      const std::string check = ask(sock, "check");
      CHECK_MESSAGE(check.rfind("ok ", 0) == 0, check);
      std::this_thread::sleep_for(100ms);
    }
    CHECK(ask(sock, "exit 0") == "");
    CHECK(target.report("exited 0"));
  }
}
