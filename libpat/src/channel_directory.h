// ChannelDirectory: the group's named channels (ChannelTable). Opening a name
// creates the channel if it does not exist and attaches the member to it;
// detaching the last member destroys a channel with nothing queued (one with
// messages waits for a receiver). The host ends the attachments of members
// that are gone, which is what their peers see as PeerDied
// (channel_queue.h). Lock order: directory, then channel, then heap.
#pragma once

#include "libpat/src/arena.h"
#include "libpat/src/robust_mutex.h"
#include "pat/pat.hpp"

#include <string_view>

namespace pat::dataplane {

class ChannelDirectory {
 public:
  explicit ChannelDirectory(const Arena& arena) : arena_(arena) {}

  struct Opened {
    std::size_t channel;
    std::size_t attachment;
  };
  // Member `member` (its MemberTable index) opens `name`. Throws pat::Error:
  // InvalidArgument (name, options), LimitReached, OutOfMemory.
  Opened open(std::string_view name, Role role, const ChannelOptions& options, std::size_t member);
  // Undoes one open() with the same role.
  void detach(const Opened& opened, Role role);

  // The host, for member `member` that is gone: removes its attachments,
  // marks the channels it leaves without senders (receivers) and wakes their
  // waiters; then destroys channels nobody has open and nothing is queued
  // in. Never blocks: false when a member held a lock it needed (call again;
  // what was done stays done).
  bool end_member(std::size_t member);

  std::size_t count() const;  // channels that exist

  static constexpr std::size_t kMaxCapacity = 1 << 16;
  static constexpr std::size_t kMaxBytes = 1 << 20;
  static constexpr std::size_t kMaxBuffers = 1024;

 private:
  std::optional<std::size_t> find(std::string_view name, std::uint32_t hash) const;
  std::size_t create(std::string_view name, std::uint32_t hash, const ChannelOptions& options);
  std::size_t attach(std::size_t channel, Role role, std::size_t member);
  // Under the directory and channel locks. False when `mode` is Try and the heap was busy.
  bool destroy_if_unused(std::size_t channel, RobustLock::Mode mode);
  // An entry left Creating by a member that died in create(). False if busy.
  bool reclaim_abandoned(std::size_t channel, RobustLock::Mode mode);
  bool release_entry(std::size_t channel, RobustLock::Mode mode);

  Arena arena_;
};

}  // namespace pat::dataplane
