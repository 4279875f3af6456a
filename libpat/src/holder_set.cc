#include "libpat/src/holder_set.h"

#include "pat/pat.hpp"

#include <bit>
#include <cassert>
#include <new>

namespace pat::dataplane {

namespace {

constexpr std::size_t kInitialCapacity = 64;

std::size_t block_bytes(std::size_t capacity) {
  return offsetof(HolderSetBlock, keys) + capacity * sizeof(std::atomic<Handle>);
}

}  // namespace

// Fibonacci hashing of the handle without its always-zero low bits.
std::size_t HolderSet::index_of(Handle handle, std::size_t capacity) {
  std::uint64_t mixed = (handle >> 6) * 0x9E3779B97F4A7C15ull;
  return static_cast<std::size_t>(mixed >> (64 - std::countr_zero(capacity)));
}

HolderSetBlock* HolderSet::block() const {
  Offset offset = slot_.holder_set.load(std::memory_order_acquire);
  return offset == 0 ? nullptr : arena_.at<HolderSetBlock>(offset);
}

// Fresh blocks are not zero (the heap reuses memory): every key is cleared.
HolderSetBlock* HolderSet::make_block(BlockAllocator::Locked& heap, std::size_t capacity) {
  void* memory = heap.allocate(block_bytes(capacity));
  if (memory == nullptr) throw Error(Errc::OutOfMemory, "no arena memory for a member's holder set");
  auto* made = static_cast<HolderSetBlock*>(memory);
  made->capacity = capacity;
  made->used = 0;
  for (std::size_t i = 0; i < capacity; ++i) new (&made->keys[i]) std::atomic<Handle>(kEmpty);
  return made;
}

// The new block is filled completely before one store publishes it; the old
// one is freed after. A member dying in between leaks one block, no more.
void HolderSet::grow() {
  HolderSetBlock* old = block();
  std::vector<Handle> live = old ? handles() : std::vector<Handle>{};
  std::size_t capacity = kInitialCapacity;
  while (capacity < 4 * (live.size() + 1)) capacity *= 2;
  BlockAllocator allocator(arena_);
  auto heap = allocator.lock(RobustLock::Mode::Wait);
  HolderSetBlock* made = make_block(*heap, capacity);
  for (Handle handle : live) {
    std::size_t i = index_of(handle, capacity);
    while (made->keys[i].load(std::memory_order_relaxed) != kEmpty) i = (i + 1) & (capacity - 1);
    made->keys[i].store(handle, std::memory_order_relaxed);
  }
  made->used = live.size();
  slot_.holder_set.store(arena_.offset_of(made), std::memory_order_release);
  if (old) heap->deallocate(old);
}

void HolderSet::insert(Handle handle) {
  assert(handle > kTombstone);
  HolderSetBlock* set = block();
  if (set == nullptr || 2 * (set->used + 1) > set->capacity) {
    grow();
    set = block();
  }
  std::size_t mask = set->capacity - 1;
  std::size_t reuse = set->capacity;  // the first tombstone on the probe path
  for (std::size_t i = index_of(handle, set->capacity);; i = (i + 1) & mask) {
    Handle key = set->keys[i].load(std::memory_order_relaxed);
    assert(key != handle && "a handle is held once per member");
    if (key == kTombstone && reuse == set->capacity) reuse = i;
    if (key == kEmpty) {
      if (reuse == set->capacity) {
        reuse = i;
        set->used++;
      }
      set->keys[reuse].store(handle, std::memory_order_release);
      return;
    }
  }
}

void HolderSet::erase(Handle handle) {
  HolderSetBlock* set = block();
  assert(set != nullptr);
  std::size_t mask = set->capacity - 1;
  for (std::size_t i = index_of(handle, set->capacity);; i = (i + 1) & mask) {
    Handle key = set->keys[i].load(std::memory_order_relaxed);
    assert(key != kEmpty && "erasing a handle that is not held");
    if (key == handle) {
      set->keys[i].store(kTombstone, std::memory_order_release);
      return;
    }
  }
}

bool HolderSet::contains(Handle handle) const {
  HolderSetBlock* set = block();
  if (set == nullptr) return false;
  std::size_t mask = set->capacity - 1;
  for (std::size_t i = index_of(handle, set->capacity);; i = (i + 1) & mask) {
    Handle key = set->keys[i].load(std::memory_order_relaxed);
    if (key == handle) return true;
    if (key == kEmpty) return false;
  }
}

std::vector<Handle> HolderSet::handles() const {
  std::vector<Handle> out;
  HolderSetBlock* set = block();
  if (set == nullptr) return out;
  for (std::size_t i = 0; i < set->capacity; ++i) {
    Handle key = set->keys[i].load(std::memory_order_acquire);
    if (key > kTombstone) out.push_back(key);
  }
  return out;
}

void HolderSet::destroy(BlockAllocator::Locked& heap) {
  HolderSetBlock* set = block();
  if (set == nullptr) return;
  slot_.holder_set.store(0, std::memory_order_release);
  heap.deallocate(set);
}

}  // namespace pat::dataplane
