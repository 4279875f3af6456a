// HolderSet: the buffers one member holds a reference to, kept in the arena
// (HolderSetBlock) so that the host can drop them when the member ends,
// however it ends. It is a set: a member counts once in a buffer's
// reference count however many Buffer objects it has (member_session.h
// counts those in its own memory).
//
// Only the member's own threads change it (under the member's lock), and the
// host after the member is gone. Every change is one aligned 8-byte store
// (a key written into a free slot, or a tombstone over it), and growing
// publishes the new block with one store, so the host finds a consistent
// set whatever instruction the member died at: at worst one handle it was
// about to add (or had just removed) is missing, which leaks that reference
// but never frees a buffer early (docs/dataplane.md "Crash safety").
#pragma once

#include "libpat/src/arena.h"
#include "libpat/src/block_allocator.h"

#include <vector>

namespace pat::dataplane {

class HolderSet {
 public:
  HolderSet(const Arena& arena, MemberSlot& slot) : arena_(arena), slot_(slot) {}

  // Adds `handle` (not already in the set). May move the set to a larger
  // block: throws pat::Error(OutOfMemory) if the arena has none.
  void insert(Handle handle);
  // Removes `handle`, which must be in the set.
  void erase(Handle handle);
  bool contains(Handle handle) const;
  std::vector<Handle> handles() const;
  // Frees the set's block (the host, once the member's holdings are released).
  void destroy(BlockAllocator::Locked& heap);

  static constexpr Handle kEmpty = 0;
  static constexpr Handle kTombstone = 1;

 private:
  HolderSetBlock* block() const;
  void grow();
  static std::size_t index_of(Handle handle, std::size_t capacity);
  static HolderSetBlock* make_block(BlockAllocator::Locked& heap, std::size_t capacity);

  Arena arena_;
  MemberSlot& slot_;
};

}  // namespace pat::dataplane
