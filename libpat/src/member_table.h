// MemberTable: the group's members as the arena records them (MemberSlot),
// so that members can list each other (pat::members()) and the host can find
// what a member held after it is gone. The host is the only writer of pid,
// argv and state; it fills a slot at spawn, before the member runs any code
// that could look (a member's first rerouted syscall waits for the host).
#pragma once

#include "libpat/src/arena.h"

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace pat::dataplane {

struct MemberRecord {
  std::size_t index;
  pid_t pid;
  std::vector<std::string> argv;
  bool argv_truncated;
};

class MemberTable {
 public:
  explicit MemberTable(const Arena& arena) : arena_(arena) {}

  // Host side.
  // A free slot for a new member; nullopt when kMaxMembers are alive or
  // still being cleaned up.
  std::optional<std::size_t> add(pid_t pid, const std::vector<std::string>& argv);
  void mark_ending(std::size_t index);
  void release(std::size_t index);  // Ending -> Free, once everything it held is released
  std::vector<std::size_t> ending() const;

  // Anyone.
  std::optional<std::size_t> find_alive(pid_t pid) const;
  std::vector<MemberRecord> alive() const;
  MemberSlot& slot(std::size_t index) const { return arena_.member(index); }

 private:
  // A consistent copy of slot `index` if it is alive (seqlock read).
  std::optional<MemberRecord> read(std::size_t index) const;
  Arena arena_;
};

}  // namespace pat::dataplane
