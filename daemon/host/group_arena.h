// GroupArena: the group's data-plane arena as pat-host runs it
// (pat/host/arena_host.h, docs/dataplane.md): mapped when the host starts
// and made the group's own memory in the ledger, named in every member's
// environment, told of members as they start and end, its unfinished
// cleanups retried on a timer while a live member holds a lock they need.
#pragma once

#include "daemon/rpc/asio.h"
#include "pat/host/arena_host.h"
#include "proto/group_object.h"
#include "tracer/member_supervisor.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace pat::host {

class GroupArena {
 public:
  // Maps the arena. When the kernel refuses the memory, members run without
  // a data plane (libpat says so) and this does nothing.
  GroupArena(asio::io_context& io, std::string group, tracer::MemberSupervisor& supervisor);

  // PAT_ARENA for a member's environment: {name, value}, or nothing when
  // the group has no data plane.
  std::optional<std::pair<std::string, std::string>> environment() const;
  // Before the member can look at the arena (MemberSupervisor::launch's
  // before_serving).
  void member_started(const tracer::SupervisedMember& member);
  // Under the group lock (MemberObserver::releasing): what it held is
  // released now, or on the timer.
  void member_ended(const tracer::SupervisedMember& member);

  std::optional<proto::ArenaEntry> stats() const;

 private:
  void retry_later();

  std::string group_;
  tracer::MemberSupervisor& supervisor_;
  std::unique_ptr<dataplane::ArenaHost> arena_;  // null when it could not be mapped
  asio::steady_timer retry_;
};

}  // namespace pat::host
