#include "daemon/host/group_description.h"

#include "tracer/proc_stats.h"

#include <unistd.h>

#include <chrono>

namespace pat::host {

GroupDescription::GroupDescription(const HostConfig& config, const MemberTable& members,
                                   const tracer::MemberSupervisor& supervisor, const GroupArena& arena)
    : config_(config),
      members_(members),
      supervisor_(supervisor),
      arena_(arena),
      created_(std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count()) {}

void GroupDescription::record_exit(proto::ExitEntry exit) {
  recent_exits_.push_back(std::move(exit));
  if (recent_exits_.size() > kRecentExits) recent_exits_.pop_front();
}

// With usage: per member its own CPU time, threads, state and cwd, and the memory it owns
// (from the ledger); per group RSS and PSS, which the kernel keeps per
// address space, so they are the group's, once.
bool GroupDescription::record_stale_build(proto::StaleBuildEntry stale) {
  for (const auto& listed : stale_builds_) {
    if (listed.build == stale.build) return false;
  }
  stale_builds_.push_back(std::move(stale));
  return true;
}

proto::GroupObject GroupDescription::describe(Detail detail, bool shutting_down) const {
  const bool usage = detail == Detail::WithUsage;
  proto::GroupObject group;
  group.name = config_.group;
  group.owner_uid = ::getuid();
  group.owner_gid = ::getgid();
  group.host_pid = ::getpid();
  group.created = created_;
  group.state = shutting_down ? "destroying" : "running";
  group.ephemeral = config_.ephemeral;
  group.allow_cross_mapping = config_.allow_cross_mapping;
  for (const auto& [pid, member] : members_) {
    proto::MemberEntry entry = member->entry();
    if (usage) {
      if (auto stats = tracer::read_task_stats(pid)) {
        entry.cpu_seconds = stats->cpu_seconds;
        entry.threads = stats->threads;
        entry.process_state = std::string(1, stats->state);
        if (!stats->cwd.empty()) entry.cwd = stats->cwd;
      }
      if (member->process->state() != tracer::SupervisedMember::State::Execed) {
        auto footprint = supervisor_.footprint(*member->process);
        entry.mapped_bytes = footprint.mapped_bytes;
        entry.resident_bytes = footprint.resident_bytes;
      }
    }
    group.members.push_back(std::move(entry));
  }
  group.recent_exits.assign(recent_exits_.rbegin(), recent_exits_.rend());
  group.stale_builds = stale_builds_;
  if (usage) group.memory = address_space();
  return group;
}

proto::MemoryEntry GroupDescription::address_space() const {
  proto::MemoryEntry memory;
  memory.pinned_regions =
      supervisor_.with_space([](const tracer::SharedAddressSpace& space) { return space.pin_count(); });
  memory.arena = arena_.stats();
  if (auto stats = tracer::read_address_space_stats(::getpid())) {
    memory.size_bytes = stats->size_bytes;
    memory.rss_bytes = stats->rss_bytes;
    memory.pss_bytes = stats->pss_bytes;
  }
  return memory;
}

}  // namespace pat::host
