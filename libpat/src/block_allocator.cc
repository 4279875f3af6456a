#include "libpat/src/block_allocator.h"

#include "pat/pat.hpp"

#include <boost/interprocess/mem_algo/rbtree_best_fit.hpp>
#include <boost/interprocess/offset_ptr.hpp>
#include <boost/interprocess/sync/mutex_family.hpp>
#include <sys/mman.h>

#include <cassert>
#include <new>

namespace pat::dataplane {

namespace {

namespace bip = boost::interprocess;
// Offsets, not pointers, inside the heap (offset_ptr): the heap does not
// depend on where the arena is mapped. MemAlignment 64: every block starts
// on a cache line. (Asking a 16-byte-aligned heap for 64-byte alignment
// with allocate_aligned() needs extra room, so a freed block of exactly the
// right size would never be reused.) It also puts Boost's block control,
// free-tree hook included, entirely before the user pointer.
using Heap = bip::rbtree_best_fit<bip::null_mutex_family, bip::offset_ptr<void>, BlockAllocator::Locked::kBlockAlignment>;

Heap& heap_at(void* address) { return *static_cast<Heap*>(address); }

std::uintptr_t page_up(std::uintptr_t a) { return (a + kPageSize - 1) & ~std::uintptr_t(kPageSize - 1); }
std::uintptr_t page_down(std::uintptr_t a) { return a & ~std::uintptr_t(kPageSize - 1); }

}  // namespace

void BlockAllocator::format(const Arena& arena) {
  ArenaHeader& header = arena.header();
  assert(header.heap_bytes >= Heap::get_min_size(0));
  new (arena.heap()) Heap(header.heap_bytes, 0);
  init_robust_mutex(header.allocator.lock);
}

std::optional<BlockAllocator::Locked> BlockAllocator::lock(RobustLock::Mode mode) const {
  AllocatorState& allocator = state();
  void* heap = arena_.heap();
  RobustLock lock(allocator.lock, mode, [&] {
    // The previous holder died inside allocate or deallocate (the only code
    // that runs under this lock).
    allocator.owner_deaths++;
    if (!heap_at(heap).check_sanity()) allocator.damaged = 1;
  });
  if (lock.state() == RobustLock::State::Busy) return std::nullopt;
  if (lock.state() == RobustLock::State::Unrecoverable || allocator.damaged) {
    throw Error(Errc::ArenaDamaged,
                "the group's arena allocator was damaged by a member that died inside it; restart the group");
  }
  return Locked(heap, std::move(lock));
}

void* BlockAllocator::Locked::allocate(std::size_t bytes) {
  void* block = heap_at(heap_).allocate(bytes);
  assert(reinterpret_cast<std::uintptr_t>(block) % kBlockAlignment == 0);
  return block;
}

void BlockAllocator::Locked::deallocate(void* block) { heap_at(heap_).deallocate(block); }

std::size_t BlockAllocator::Locked::free_bytes() const { return heap_at(heap_).get_free_memory(); }

bool BlockAllocator::retain_on_free(std::size_t bytes) const {
  if (bytes < kDiscardMinimum) return true;  // small blocks are reused, never worth a madvise
  auto& retained = state().retained_free_bytes;
  std::uint64_t now = retained.load(std::memory_order_relaxed);
  do {
    if (now + bytes > kRetainedBudget) return false;
  } while (!retained.compare_exchange_weak(now, now + bytes, std::memory_order_relaxed));
  return true;
}

void BlockAllocator::note_allocated(std::size_t bytes) const {
  if (bytes < kDiscardMinimum) return;
  auto& retained = state().retained_free_bytes;
  std::uint64_t now = retained.load(std::memory_order_relaxed);
  while (!retained.compare_exchange_weak(now, now > bytes ? now - bytes : 0, std::memory_order_relaxed)) {
  }
}

// madvise(2): MADV_DONTNEED on private anonymous memory frees the pages now;
// the next touch gets zero-filled ones. Not rerouted to the host (seccomp
// filter), so this costs a plain syscall plus TLB shootdowns.
void BlockAllocator::discard(void* block, std::size_t bytes, std::size_t keep) const {
  auto start = page_up(reinterpret_cast<std::uintptr_t>(block) + keep);
  auto end = page_down(reinterpret_cast<std::uintptr_t>(block) + bytes);
  if (end <= start) return;
  if (::madvise(reinterpret_cast<void*>(start), end - start, MADV_DONTNEED) == 0) {
    state().discarded_bytes.fetch_add(end - start, std::memory_order_relaxed);
  }
}

}  // namespace pat::dataplane
