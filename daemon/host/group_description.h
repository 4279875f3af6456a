// GroupDescription: what the host says about its group (io.pat.Group,
// proto/group_object.h): its fixed facts, its members (with usage: their
// CPU time, threads and the memory they own), its recent exits, and the
// figures of its address space, which are the whole group's.
#pragma once

#include "daemon/host/group_arena.h"
#include "daemon/host/host_config.h"
#include "daemon/host/member.h"
#include "proto/group_object.h"
#include "tracer/member_supervisor.h"

#include <deque>
#include <map>
#include <memory>
#include <vector>

namespace pat::host {

using MemberTable = std::map<pid_t, std::shared_ptr<Member>>;  // members not yet reaped

class GroupDescription {
 public:
  enum class Detail {
    Summary,    // for event streams: no /proc reads, no page walks
    WithUsage,  // Group.Show: /proc reads per member, mincore over its memory
  };

  GroupDescription(const HostConfig& config, const MemberTable& members, const tracer::MemberSupervisor& supervisor,
                   const GroupArena& arena);

  // Keeps the last kRecentExits.
  void record_exit(proto::ExitEntry exit);
  // A non-PIC build passed over as stale (tracer/nonpic_build.h), listed for
  // as long as the host lives; false if it was listed already.
  bool record_stale_build(proto::StaleBuildEntry stale);
  proto::GroupObject describe(Detail detail, bool shutting_down) const;

  static constexpr std::size_t kRecentExits = 32;

 private:
  proto::MemoryEntry address_space() const;

  const HostConfig& config_;
  const MemberTable& members_;
  const tracer::MemberSupervisor& supervisor_;
  const GroupArena& arena_;
  double created_;
  std::deque<proto::ExitEntry> recent_exits_;  // oldest first
  std::vector<proto::StaleBuildEntry> stale_builds_;
};

}  // namespace pat::host
