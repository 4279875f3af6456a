#include "libpat/src/arena.h"

#include "libpat/src/block_allocator.h"
#include "libpat/src/robust_mutex.h"
#include "pat/pat.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <new>

namespace pat::dataplane {

namespace {

constexpr std::size_t page_up(std::size_t a) { return (a + kPageSize - 1) & ~(kPageSize - 1); }

constexpr std::size_t kMemberTableBytes = page_up(kMaxMembers * sizeof(MemberSlot));
constexpr std::size_t kDirectoryBytes = page_up(sizeof(ChannelTable));
constexpr Offset kMemberTableOffset = kPageSize;
constexpr Offset kDirectoryOffset = kMemberTableOffset + kMemberTableBytes;
constexpr Offset kHeapOffset = kDirectoryOffset + kDirectoryBytes;
constexpr std::size_t kMinimumHeapBytes = 1 << 20;

}  // namespace

std::size_t Arena::minimum_bytes() { return kHeapOffset + kMinimumHeapBytes; }

Arena Arena::format(void* base, std::size_t bytes, std::string_view group_name, pid_t host_pid) {
  assert(reinterpret_cast<std::uintptr_t>(base) % kPageSize == 0 && bytes >= minimum_bytes());
  Arena arena(static_cast<std::byte*>(base), bytes);
  auto* header = new (base) ArenaHeader{};
  header->layout_version = kLayoutVersion;
  header->header_bytes = sizeof(ArenaHeader);
  header->arena_bytes = bytes;
  header->member_table_offset = kMemberTableOffset;
  header->directory_offset = kDirectoryOffset;
  header->heap_offset = kHeapOffset;
  header->heap_bytes = bytes - kHeapOffset;
  std::size_t name_bytes = std::min(group_name.size(), kGroupNameBytes - 1);
  std::memcpy(header->group_name, group_name.data(), name_bytes);
  header->host_pid = host_pid;
  header->next_generation.store(1);
  BlockAllocator::format(arena);
  ChannelTable& directory = arena.channels();
  init_robust_mutex(directory.lock);
  directory.initialized = 1;
  std::atomic_thread_fence(std::memory_order_release);
  std::memcpy(header->magic, kArenaMagic, sizeof(kArenaMagic));
  return arena;
}

Arena Arena::attach(void* base, std::size_t bytes) {
  Arena arena(static_cast<std::byte*>(base), bytes);
  const ArenaHeader& header = arena.header();
  std::atomic_thread_fence(std::memory_order_acquire);
  if (bytes < minimum_bytes() || std::memcmp(header.magic, kArenaMagic, sizeof(kArenaMagic)) != 0) {
    throw Error(Errc::NotInGroup, "PAT_ARENA does not point at a pat arena");
  }
  if (header.layout_version != kLayoutVersion || header.header_bytes != sizeof(ArenaHeader)) {
    throw Error(Errc::NotInGroup, "the group's arena has layout version " + std::to_string(header.layout_version) +
                                      ", this libpat understands " + std::to_string(kLayoutVersion) +
                                      ": the host and this member come from different pat builds");
  }
  if (header.arena_bytes != bytes || header.heap_offset != kHeapOffset || header.directory_offset != kDirectoryOffset) {
    throw Error(Errc::NotInGroup, "PAT_ARENA's size does not match the arena's header");
  }
  return arena;
}

MemberSlot& Arena::member(std::size_t index) const {
  assert(index < kMaxMembers);
  return at<MemberSlot>(header().member_table_offset)[index];
}

bool Arena::contains(const void* address, std::size_t length) const {
  auto start = reinterpret_cast<std::uintptr_t>(address);
  auto base = reinterpret_cast<std::uintptr_t>(base_);
  return start >= base && start - base <= bytes_ && length <= bytes_ - (start - base);
}

bool Arena::plausible_handle(Handle handle) const {
  const ArenaHeader& h = header();
  return handle % kBufferDataAlignment == 0 && handle >= h.heap_offset &&
         handle + sizeof(BufferHeader) <= h.heap_offset + h.heap_bytes;
}

}  // namespace pat::dataplane
