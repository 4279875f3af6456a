#include "libpat/src/buffer_store.h"

#include "pat/pat.hpp"

#include <cassert>
#include <cstring>
#include <limits>
#include <new>
#include <thread>

namespace pat::dataplane {

namespace {

constexpr std::uint64_t kNoPin = 0;  // pin ids start at 1 (SharedAddressSpace)
// PendingFree::generation of a record whose free finished (generations
// count up from 1 and never reach it).
constexpr std::uint64_t kFreeDone = ~std::uint64_t{0};

std::string mib(std::size_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

}  // namespace

Handle BufferStore::create_arena(std::size_t size, Fill fill, pid_t maker) const {
  if (size > std::numeric_limits<std::size_t>::max() - sizeof(BufferHeader)) {
    throw Error(Errc::OutOfMemory, "buffer of " + std::to_string(size) + " bytes is larger than any arena");
  }
  std::size_t bytes = sizeof(BufferHeader) + size;
  BufferHeader* made = nullptr;
  {
    auto heap = allocator_.lock(RobustLock::Mode::Wait);
    void* block = heap->allocate(bytes);
    if (block == nullptr) {
      throw Error(Errc::OutOfMemory, "the group's arena has no free block for a buffer of " + std::to_string(size) +
                                         " bytes (" + mib(heap->free_bytes()) + " free in all)");
    }
    // The generation is stamped under the lock, so that a host finishing a
    // dead member's free never mistakes this block for the one it freed.
    made = new (block) BufferHeader{};
    made->magic = kBufferMagic;
    made->generation.store(arena_.header().next_generation.fetch_add(1), std::memory_order_relaxed);
  }
  made->size = size;
  made->capacity = bytes;
  made->data = arena_.offset_of(made) + sizeof(BufferHeader);
  made->kind = BufferKind::Arena;
  made->maker_pid = maker;
  made->references.store(1, std::memory_order_release);
  allocator_.note_allocated(bytes);
  if (fill == Fill::Zero) std::memset(reinterpret_cast<std::byte*>(made) + sizeof(BufferHeader), 0, size);
  arena_.header().buffers_live.fetch_add(1, std::memory_order_relaxed);
  arena_.header().buffer_bytes_live.fetch_add(size, std::memory_order_relaxed);
  return arena_.offset_of(made);
}

Handle BufferStore::create_external(const void* data, std::size_t size, std::uint64_t pin_id, pid_t maker) const {
  BufferHeader* made = nullptr;
  {
    auto heap = allocator_.lock(RobustLock::Mode::Wait);
    void* block = heap->allocate(sizeof(BufferHeader));
    if (block == nullptr) throw Error(Errc::OutOfMemory, "the group's arena has no room for a buffer header");
    made = new (block) BufferHeader{};
    made->magic = kBufferMagic;
    made->generation.store(arena_.header().next_generation.fetch_add(1), std::memory_order_relaxed);
  }
  made->size = size;
  made->data = reinterpret_cast<std::uint64_t>(data);
  made->kind = BufferKind::External;
  made->pin_id = pin_id;
  made->maker_pid = maker;
  made->references.store(1, std::memory_order_release);
  arena_.header().buffers_live.fetch_add(1, std::memory_order_relaxed);
  arena_.header().buffer_bytes_live.fetch_add(size, std::memory_order_relaxed);
  return arena_.offset_of(made);
}

BufferHeader& BufferStore::header(Handle handle) const {
  assert(arena_.plausible_handle(handle));
  auto* found = arena_.at<BufferHeader>(handle);
  assert(found->magic == kBufferMagic && found->generation.load(std::memory_order_relaxed) != 0);
  return *found;
}

std::byte* BufferStore::data(Handle handle) const {
  const BufferHeader& h = header(handle);
  return h.kind == BufferKind::Arena ? arena_.at<std::byte>(h.data) : reinterpret_cast<std::byte*>(h.data);
}

void BufferStore::add_reference(Handle handle) const {
  [[maybe_unused]] auto before = header(handle).references.fetch_add(1, std::memory_order_relaxed);
  assert(before > 0);
}

bool BufferStore::drop_reference(Handle handle) const {
  auto before = header(handle).references.fetch_sub(1, std::memory_order_acq_rel);
  assert(before > 0);
  return before == 1;
}

// A member frees at most kPendingFrees buffers at once; its other threads
// wait for a record to come free (a free takes microseconds).
PendingFree& BufferStore::claim_pending(MemberSlot& slot, Handle handle) const {
  for (;;) {
    for (PendingFree& pending : slot.pending_frees) {
      Handle empty = 0;
      if (pending.handle.compare_exchange_strong(empty, handle, std::memory_order_acq_rel)) return pending;
    }
    std::this_thread::yield();
  }
}

// The order, top to bottom, and what the host does if we die at each step:
//  1. claim a record, write the generation -> the host frees it (complete_pending)
//  2. release the pin (External)           -> the host releases it again: harmless
//  3. discard the interior pages           -> nothing to redo
//  4. wipe the generation and give the block back, under the heap's lock
//                                          -> the host sees another generation: done
//  5. mark the record done, then empty     -> the host skips it
// A record keeps kFreeDone in `generation` between uses, so a member dying
// between claiming a used record and writing the generation leaves a record
// the host takes for done: a leak, never a second free.
void BufferStore::free(Handle handle, MemberSlot& slot, const Unpin& unpin) const {
  BufferHeader& h = header(handle);
  std::uint64_t generation = h.generation.load(std::memory_order_relaxed);
  PendingFree& pending = claim_pending(slot, handle);
  pending.generation.store(generation, std::memory_order_release);
  if (h.kind == BufferKind::External) unpin(h.pin_id);
  if (h.kind == BufferKind::Arena && !allocator_.retain_on_free(h.capacity)) {
    allocator_.discard(&h, h.capacity, sizeof(BufferHeader));
  }
  deallocate_current(handle, generation, RobustLock::Mode::Wait);
  pending.generation.store(kFreeDone, std::memory_order_release);
  pending.handle.store(0, std::memory_order_release);
}

bool BufferStore::free_in_host(Handle handle, const Unpin& unpin, RobustLock::Mode mode) const {
  auto pin = deallocate_current(handle, header(handle).generation.load(std::memory_order_relaxed), mode);
  if (!pin) return false;
  if (*pin != kNoPin) unpin(*pin);
  return true;
}

bool BufferStore::complete_pending(PendingFree& pending, const Unpin& unpin, RobustLock::Mode mode) const {
  Handle handle = pending.handle.load(std::memory_order_acquire);
  if (handle == 0) return true;
  std::uint64_t generation = pending.generation.load(std::memory_order_acquire);
  if (generation != kFreeDone) {
    // 0: a record never used before, claimed by a member that died before
    // writing the generation: nothing was freed yet, the header is intact.
    if (generation == 0) generation = header(handle).generation.load(std::memory_order_relaxed);
    auto pin = deallocate_current(handle, generation, mode);
    if (!pin) return false;
    if (*pin != kNoPin) unpin(*pin);
  }
  pending.generation.store(kFreeDone, std::memory_order_relaxed);
  pending.handle.store(0, std::memory_order_release);
  return true;
}

std::optional<std::uint64_t> BufferStore::deallocate_current(Handle handle, std::uint64_t generation,
                                                             RobustLock::Mode mode) const {
  auto heap = allocator_.lock(mode);
  if (!heap) return std::nullopt;
  auto* h = arena_.at<BufferHeader>(handle);
  if (!arena_.plausible_handle(handle) || h->magic != kBufferMagic ||
      h->generation.load(std::memory_order_relaxed) != generation) {
    return kNoPin;  // freed already (by the member before it died)
  }
  std::uint64_t pin = h->kind == BufferKind::External ? h->pin_id : kNoPin;
  std::uint64_t size = h->size;
  h->generation.store(0, std::memory_order_relaxed);
  h->magic = 0;
  heap->deallocate(h);
  arena_.header().buffers_live.fetch_sub(1, std::memory_order_relaxed);
  arena_.header().buffer_bytes_live.fetch_sub(size, std::memory_order_relaxed);
  return pin;
}

}  // namespace pat::dataplane
