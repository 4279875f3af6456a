// A pat group inside one test process: the host's side (ArenaHost) and
// members that are threads, each with its own MemberSession. Threads share
// the process's address space exactly as members share the group's, so
// everything but the seccomp-rerouted parts (pinning, the real host) runs as
// it does for real members. The fake pids are never used in syscalls.
#pragma once

#include "libpat/src/arena.h"
#include "libpat/src/member_session.h"
#include "libpat/src/process_session.h"
#include "pat/host/arena_host.h"
#include "pat/pat.hpp"

#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace pat::testing {

class TestGroup {
 public:
  explicit TestGroup(std::size_t bytes = dataplane::ArenaHost::kSmallestBytes);

  // A member started as the host starts one (member table), with a session.
  dataplane::MemberSession& start(std::vector<std::string> argv = {"member"});
  // The member ends as if killed: its session is disowned (its Buffers and
  // Channels become inert, as a dead process's memory would), then the host
  // releases what it held. True when the host finished without retrying.
  bool end(dataplane::MemberSession& member);

  dataplane::ArenaHost& host() { return *host_; }
  const dataplane::Arena& arena() const { return host_->arena(); }
  dataplane::ArenaStats stats() const { return host_->stats(); }
  std::vector<std::uint64_t> unpinned() const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::uint64_t> unpinned_;  // pins the Unpin callbacks released
  std::unique_ptr<dataplane::ArenaHost> host_;
  std::vector<std::unique_ptr<dataplane::MemberSession>> members_;
  pid_t next_pid_ = 1 << 30;
};

// Runs the rest of the scope as `member` (pat::Buffer, pat::Channel, ...).
using AsMember = dataplane::ThreadMemberOverride;

}  // namespace pat::testing
