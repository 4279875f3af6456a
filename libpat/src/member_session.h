// MemberSession: one member's use of the arena — its MemberTable slot, its
// HolderSet, and the Buffer references it hands out to its own code
// (Holdings). A real member has one, made from PAT_ARENA (process_session.h);
// the unit tests make several in one process, one per thread standing in for
// a member.
//
// In the member's own memory, each Holding is one counted use of a handle;
// the member's HolderSet has the handle while it has any Holding of it, and
// the buffer's reference count counts the member once.
#pragma once

#include "libpat/src/arena.h"
#include "libpat/src/buffer_store.h"
#include "libpat/src/holder_set.h"

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace pat::dataplane {
class MemberSession;
}

namespace pat::detail {

// One counted use of a buffer by this member; pat::Buffer shares one.
class Holding {
 public:
  Holding(dataplane::MemberSession& session, dataplane::Handle handle);
  Holding(const Holding&) = delete;
  Holding& operator=(const Holding&) = delete;
  ~Holding();

  dataplane::MemberSession& session() const { return session_; }
  dataplane::Handle handle() const { return handle_; }
  std::byte* data() const { return data_; }
  std::size_t size() const { return size_; }
  dataplane::BufferKind kind() const { return kind_; }

 private:
  dataplane::MemberSession& session_;
  dataplane::Handle handle_;
  std::byte* data_;  // cached: the header does not change while held
  std::size_t size_;
  dataplane::BufferKind kind_;
};

}  // namespace pat::detail

namespace pat::dataplane {

class MemberSession {
 public:
  MemberSession(const Arena& arena, std::size_t slot, pid_t pid, Unpin unpin);
  MemberSession(const MemberSession&) = delete;
  MemberSession& operator=(const MemberSession&) = delete;

  // Makes a counted reference this member's: the one a new buffer starts
  // with, or one taken from a received message. If the member holds the
  // buffer already, the extra reference is dropped instead of recorded.
  std::shared_ptr<detail::Holding> adopt(Handle handle);

  const Arena& arena() const { return arena_; }
  const BufferStore& buffers() const { return buffers_; }
  std::size_t slot_index() const { return slot_; }
  MemberSlot& slot() const { return arena_.member(slot_); }
  pid_t pid() const { return pid_; }
  const Unpin& unpin() const { return unpin_; }
  std::size_t holdings() const;  // distinct buffers held (tests)

  // After fork(2) the child has a copy of the arena, not the group's: its
  // Holdings must not touch anything (process_session.h sets this).
  void disown() { disowned_.store(true); }
  bool disowned() const { return disowned_.load(); }

 private:
  friend class detail::Holding;
  void release(Handle handle) noexcept;

  Arena arena_;
  BufferStore buffers_;
  std::size_t slot_;
  pid_t pid_;
  Unpin unpin_;
  std::atomic<bool> disowned_{false};
  // Guards uses_ and the HolderSet, which only this member's threads change.
  mutable std::mutex mutex_;
  std::unordered_map<Handle, std::size_t> uses_;  // Holdings alive per handle
};

}  // namespace pat::dataplane
