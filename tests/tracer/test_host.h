// TestHost: the tracer tests' host, a thin wrapper over the real
// MemberSupervisor, syscall server threads included. It launches members
// into the test process's own address space and runs the supervisor from a
// poll loop, which also drains the pipes that capture members' output.
#pragma once

#include <chrono>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <variant>

#include "base/unique_fd.h"
#include "tracer/member_supervisor.h"

namespace pat::tracer::testing {

// A pipe whose read end the host drains into `data`.
struct Capture {
  UniqueFd read_end, write_end;
  std::string data;
  bool eof = false;
  Capture();
};

// What the tests look at, per member, as the supervisor reported it.
struct HostedMember {
  std::shared_ptr<SupervisedMember> process;
  bool exited = false;
  int exit_code = -1;  // when it exited normally
  int signal = 0;      // when a signal killed it
  int execs = 0;       // confirmed execs: it left the address space

  const LaunchedMember& launched() const { return process->launched(); }
  bool listener_gone() const { return process->listener_closed(); }
};

class TestHost : private MemberObserver {
 public:
  TestHost() : supervisor_(false, *this) {}

  // Launches; on success the member is served from now on and supervised by
  // run_until().
  std::variant<HostedMember*, LaunchError> launch(const LaunchSpec& spec);

  // Drains `capture` while serving.
  void watch(Capture& capture) { captures_.push_back(&capture); }

  // Runs the supervisor until `done` holds or `timeout` passes; false on
  // timeout.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout);
  // Until the supervisor is idle (every member reaped, every listener
  // closed, every failed launch's child reaped) and every watched pipe has
  // reached EOF.
  bool run_until_all_done(std::chrono::milliseconds timeout = std::chrono::seconds(60));

  MemberSupervisor& supervisor() { return supervisor_; }
  const SharedAddressSpace& space() { return supervisor_.space(); }

 private:
  void member_execed(const SupervisedMember& member) override;
  void member_exited(const SupervisedMember& member) override;

  std::list<HostedMember> members_;  // stable addresses
  std::map<pid_t, HostedMember*> unreaped_;
  std::list<Capture*> captures_;
  MemberSupervisor supervisor_;  // last: its destructor ends what still runs
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
