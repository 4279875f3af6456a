// BufferStore: making buffers, counting their references, and freeing each
// exactly once. A buffer's reference count is the number of its holders: each
// member whose HolderSet has it, and each message in a channel that carries
// it. Whoever drops the count to zero frees the buffer.
//
// Ordering (docs/dataplane.md "Crash safety"): a reference moves between
// holders by first removing it at the source, then adding it at the
// destination; a new holder gets its reference counted before it is
// recorded. A member dying between the two steps therefore leaves the count
// one too HIGH (a leak), never too low (an early free).
//
// Freeing is recorded in the member's pending_frees before it starts, so
// that the host can finish a free whose member died halfway: the
// generation stamped on every allocation (and wiped on free, both under the
// heap's lock) tells whether the block was already given back.
#pragma once

#include "libpat/src/arena.h"
#include "libpat/src/block_allocator.h"

#include <sys/types.h>

#include <cstdint>
#include <functional>

namespace pat::dataplane {

// Releases a pin of External buffer memory: PAT_HOSTCALL_UNPIN in a member,
// SharedAddressSpace::release_pin in the host. Releasing a pin twice is
// harmless (pin ids are never reused).
using Unpin = std::function<void(std::uint64_t pin_id)>;

enum class Fill { Zero, Uninitialized };

class BufferStore {
 public:
  explicit BufferStore(const Arena& arena) : arena_(arena), allocator_(arena) {}

  // A new buffer whose count is 1: the caller's reference, which it must
  // record (HolderSet) at once. Throws pat::Error(OutOfMemory).
  Handle create_arena(std::size_t size, Fill fill, pid_t maker) const;
  // A header for `size` bytes at `data` that pin `pin_id` keeps mapped.
  Handle create_external(const void* data, std::size_t size, std::uint64_t pin_id, pid_t maker) const;

  BufferHeader& header(Handle handle) const;
  std::byte* data(Handle handle) const;

  // One more reference; the caller holds one already, so the buffer lives.
  void add_reference(Handle handle) const;
  // One reference fewer; true when it was the last: the caller frees it.
  bool drop_reference(Handle handle) const;

  // Frees a buffer whose count reached zero, in a member, recorded in its
  // `slot` until done.
  void free(Handle handle, MemberSlot& slot, const Unpin& unpin) const;
  // The same in the host, which never dies alone and needs no record. With
  // Mode::Try, false when a member holds the heap's lock: call again later.
  bool free_in_host(Handle handle, const Unpin& unpin, RobustLock::Mode mode) const;
  // The host finishing a free that a dead member had started. False when
  // the heap's lock is busy.
  bool complete_pending(PendingFree& pending, const Unpin& unpin, RobustLock::Mode mode) const;

 private:
  // Under the heap's lock: if `handle` still carries `generation`, wipes it
  // and gives the block back. The pin to release, if it was External.
  // nullopt when the lock was busy.
  std::optional<std::uint64_t> deallocate_current(Handle handle, std::uint64_t generation, RobustLock::Mode mode) const;
  PendingFree& claim_pending(MemberSlot& slot, Handle handle) const;

  Arena arena_;
  BlockAllocator allocator_;
};

}  // namespace pat::dataplane
