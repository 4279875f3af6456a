// Member: the host's record of one member it launched, over the process
// the supervisor tracks (tracer/member_supervisor.h): how it was asked for
// (detached, when) and the event its spawn call waits on. Shared ownership
// is real here: the member table and the spawn call waiting for its exit
// each hold it.
#pragma once

#include "daemon/rpc/asio.h"
#include "daemon/rpc/one_shot_event.h"
#include "proto/group_object.h"
#include "tracer/member_supervisor.h"

#include <memory>

namespace pat::host {

struct Member {
  Member(asio::any_io_executor executor, std::shared_ptr<tracer::SupervisedMember> supervised)
      : process(std::move(supervised)), exited(std::move(executor)) {}

  std::shared_ptr<tracer::SupervisedMember> process;
  bool detached = false;
  double started = 0;  // unix time the spawn was asked for
  double ended = 0;    // unix time it was reaped
  rpc::OneShotEvent exited;

  pid_t pid() const { return process->pid(); }
  bool alive() const { return process->alive(); }
  const tracer::LaunchedMember& launched() const { return process->launched(); }
  proto::MemberEntry entry() const;  // without usage figures
  proto::ExitEntry exit_entry(const proto::ExitStatus& status) const;  // for recent_exits
};

// The wire name of a member's state: running, leaving, execed, exited.
const char* to_string(tracer::SupervisedMember::State state);

}  // namespace pat::host
