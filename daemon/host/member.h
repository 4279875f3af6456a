// Member: the host's record of one process it launched into the group's
// address space, from spawn to the end of its seccomp listener. Shared
// ownership is real here: the member table, the spawn call waiting for its
// exit, and the loop serving its listener each hold it, and the listener may
// outlive the process (fork children keep the inherited filter).
#pragma once

#include "daemon/rpc/asio.h"
#include "daemon/rpc/one_shot_event.h"
#include "tracer/member_launcher.h"
#include "tracer/member_syscalls.h"

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pat::host {

struct ExitStatus {
  std::optional<int> exit_code;  // exited normally
  std::optional<int> signal;     // killed by this signal
  bool core_dumped = false;      // WCOREDUMP: the kernel wrote a core (under the member's RLIMIT_CORE)
  std::optional<std::string> core_file;   // the member's own core (tracer/core_file.h)
  bool core_truncated = false;            // core_file stops at the member's RLIMIT_CORE
  std::optional<std::string> core_error;  // why there is none although the kernel dumped
  double ended = 0;              // unix time

  // exit_code or signal, and the core fields that apply.
  nlohmann::json to_json() const;
};

struct Member {
  enum class State {
    Running,  // in the group's address space
    Leaving,  // called execve; not yet seen in its new address space
    Execed,   // left the address space by execve; still the host's child
    Exited,
  };

  Member(asio::any_io_executor executor, tracer::LaunchedMember launched_member)
      : launched(std::move(launched_member)), exited(executor) {}

  tracer::LaunchedMember launched;
  std::unique_ptr<tracer::MemberSyscalls> syscalls;
  State state = State::Running;
  bool detached = false;
  bool reclaimed = false;  // its memory went back to the group
  double started = 0;  // unix time the spawn was asked for
  std::optional<ExitStatus> exit;
  rpc::OneShotEvent exited;

  pid_t pid() const { return launched.pid; }
  bool alive() const { return state != State::Exited; }
  nlohmann::json to_json(bool with_usage) const;  // usage: CPU time, threads (/proc reads)
  nlohmann::json exit_json() const;  // for recent_exits
};

const char* to_string(Member::State state);

}  // namespace pat::host
