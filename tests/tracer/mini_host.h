// MiniHost: a test-only stand-in for pat-host. Launches members into the test
// process's own address space and serves them from one poll loop: their
// seccomp listeners (MemberSyscalls), their pidfds (waitid P_PIDFD) and pipes
// capturing their output.
#pragma once

#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <variant>

#include "base/unique_fd.h"
#include "tracer/member_launcher.h"
#include "tracer/member_syscalls.h"
#include "tracer/shared_address_space.h"

namespace pat::tracer::testing {

// A pipe whose read end the host drains into `data`.
struct Capture {
  UniqueFd read_end, write_end;
  std::string data;
  bool eof = false;
  Capture();
};

struct HostedMember {
  LaunchedMember launched;
  std::unique_ptr<MemberSyscalls> syscalls;
  bool exited = false;
  int exit_code = -1;  // CLD_EXITED
  int signal = 0;      // CLD_KILLED / CLD_DUMPED
  bool listener_gone = false;
  int exec_started = 0;  // how often handle_one() said ExecStarted
  bool reclaim_on_exit = true;  // give back all it owned, as pat-host does
};

class MiniHost {
 public:
  // Launches; on success the member is served by run_until().
  std::variant<HostedMember*, LaunchError> launch(const LaunchSpec& spec);

  // Drains `capture` while serving.
  void watch(Capture& capture) { captures_.push_back(&capture); }

  // Serves until `done` holds or `timeout` passes; false on timeout.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout);
  // Until every member has exited and its listener has hung up, and every
  // watched pipe has reached EOF.
  bool run_until_all_done(std::chrono::milliseconds timeout = std::chrono::seconds(60));

  MemberLauncher& launcher() { return launcher_; }
  SharedAddressSpace& space() { return space_; }

 private:
  void reap(HostedMember& m);
  void serve_listener(HostedMember& m);

  MemberLauncher launcher_;
  SharedAddressSpace space_{false};
  std::list<HostedMember> members_;  // stable addresses
  std::list<Capture*> captures_;
};

// One-shot: runs spec with stdout and stderr captured (stdin as given, or
// /dev/null), until it exits.
struct RunResult {
  std::variant<std::monostate, LaunchError> error;  // set if the launch failed
  int exit_code = -1;
  int signal = 0;
  std::string out, err;
  std::string exe_path;
  std::vector<std::string> argv;
};
RunResult run_member(LaunchSpec spec, std::chrono::milliseconds timeout = std::chrono::seconds(60));

// A LaunchSpec for `path` with argv as given, the test process's environment
// and cwd.
LaunchSpec spec_for(std::string path, std::vector<std::string> argv);

// Lines in /proc/self/maps: one per mapping of the test process's mm.
int mapping_count();

}  // namespace pat::tracer::testing
