// BlockAllocator: the arena's heap, from which buffers, channel rings and
// holder sets get their blocks. The allocator itself is Boost.Interprocess's
// rbtree_best_fit (best fit over a red-black tree of free blocks, coalescing
// neighbours on free; docs/dataplane.md says why this one) constructed in
// place at ArenaHeader::heap_offset with null_mutex_family: libpat supplies
// the lock, a robust one, because a member can die while holding it.
//
// A holder that died inside the heap may have left the tree half-rebalanced.
// The next holder runs Boost's check_sanity(); if it fails, the heap is
// marked damaged and every later allocation fails with ArenaDamaged (blocks
// already handed out stay valid). check_sanity() only sums the free blocks:
// a tree left inconsistent in a way that keeps the sums right is not caught.
//
// Freed memory: blocks of at least kDiscardMinimum are given back to the
// kernel (MADV_DONTNEED on their interior pages) unless a budget of
// kRetainedBudget bytes of freed memory may stay resident for reuse, because
// on this machine class touching discarded memory again costs about 80 times
// reusing it (650 against 8 µs per MiB, DESIGN "Kernel facts").
#pragma once

#include "libpat/src/arena.h"
#include "libpat/src/robust_mutex.h"

#include <cstddef>
#include <optional>

namespace pat::dataplane {

class BlockAllocator {
 public:
  static constexpr std::size_t kDiscardMinimum = 64 * 1024;
  static constexpr std::size_t kRetainedBudget = 64 << 20;

  // Constructs the heap and its lock in a freshly formatted arena.
  static void format(const Arena& arena);
  explicit BlockAllocator(const Arena& arena) : arena_(arena) {}

  // The heap, locked. Blocks are aligned to `kBlockAlignment`.
  class Locked {
   public:
    static constexpr std::size_t kBlockAlignment = 64;
    void* allocate(std::size_t bytes);  // nullptr: no free block that large
    void deallocate(void* block);
    std::size_t free_bytes() const;

   private:
    friend class BlockAllocator;
    Locked(void* heap, RobustLock lock) : heap_(heap), lock_(std::move(lock)) {}
    void* heap_;
    RobustLock lock_;
  };
  // Throws pat::Error(ArenaDamaged) when the heap is damaged. nullopt only
  // with Mode::Try, when a live member holds the lock.
  std::optional<Locked> lock(RobustLock::Mode mode) const;

  // The retained-free budget, kept without the lock (an atomic estimate):
  // whether a block of `bytes` being freed stays resident (true) or must be
  // discarded; and that an allocation of `bytes` probably reused retained
  // memory. Best fit hands recently freed blocks of the right size back
  // first, which is what makes the estimate close.
  bool retain_on_free(std::size_t bytes) const;
  void note_allocated(std::size_t bytes) const;
  // MADV_DONTNEED on the whole pages inside [block + keep, block + bytes):
  // the first `keep` bytes hold headers that must survive.
  void discard(void* block, std::size_t bytes, std::size_t keep) const;

 private:
  AllocatorState& state() const { return arena_.header().allocator; }
  Arena arena_;
};

}  // namespace pat::dataplane
