#include "pat/host/arena_host.h"

#include "libpat/src/arena.h"
#include "libpat/src/arena_locator.h"
#include "libpat/src/block_allocator.h"
#include "libpat/src/buffer_store.h"
#include "libpat/src/channel_directory.h"
#include "libpat/src/holder_set.h"
#include "libpat/src/member_table.h"
#include "pat/pat.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pat::dataplane {

struct ArenaHost::State {
  State(void* base, std::size_t bytes, std::string_view group_name, Unpin unpin)
      : base(base), bytes(bytes), arena(Arena::format(base, bytes, group_name, ::getpid())),
        unpin(std::move(unpin)), buffers(arena) {}
  // Only at the host's exit: members die with their host (PR_SET_PDEATHSIG).
  ~State() { ::munmap(base, bytes); }

  bool finish_ending(std::size_t slot);
  bool pay_owed_frees();

  void* base;
  std::size_t bytes;
  Arena arena;
  Unpin unpin;
  BufferStore buffers;
  std::vector<Handle> owed_frees;  // counts reached zero, heap lock was busy
};

// Where the arena goes if the range is free: 32 TiB, away from everything
// the kernel places in any process: mmap_base (randomized over 1 TiB,
// vm.mmap_rnd_bits = 28, under the stack near 128 TiB), PIE executables
// and their brk (0x55..., about 85 TiB) and non-PIE programs (4 MiB). Left
// to the kernel, 64 GiB of arena sat under the host's mmap_base, inside the
// window where a process to be attached (docs/attach.md) has its
// libraries: about one attach in twenty was refused with an address
// conflict with the host (seen in tests/integration/attach_test.cc).
constexpr std::uintptr_t kArenaPlacement = std::uintptr_t{0x2000'0000'0000};

void* map_arena(std::size_t size) {
  const int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
  void* placed = ::mmap(reinterpret_cast<void*>(kArenaPlacement), size, PROT_READ | PROT_WRITE,
                        flags | MAP_FIXED_NOREPLACE, -1, 0);
  if (placed != MAP_FAILED) return placed;
  return ::mmap(nullptr, size, PROT_READ | PROT_WRITE, flags, -1, 0);
}

std::unique_ptr<ArenaHost> ArenaHost::create(std::string_view group_name, Unpin unpin, std::size_t bytes) {
  int error = 0;
  for (std::size_t size = bytes; size >= kSmallestBytes; size /= 2) {
    void* base = map_arena(size);
    if (base != MAP_FAILED) {
      return std::unique_ptr<ArenaHost>(new ArenaHost(std::make_unique<State>(base, size, group_name, std::move(unpin))));
    }
    error = errno;
  }
  throw Error(Errc::SystemError, "mmap of the group's arena (" + std::to_string(kSmallestBytes >> 20) +
                                     " MiB at least): " + std::strerror(error));
}

ArenaHost::ArenaHost(std::unique_ptr<State> state) : state_(std::move(state)) {}
ArenaHost::~ArenaHost() = default;

std::uintptr_t ArenaHost::address() const { return reinterpret_cast<std::uintptr_t>(state_->base); }
std::size_t ArenaHost::size() const { return state_->bytes; }
const Arena& ArenaHost::arena() const { return state_->arena; }

std::pair<std::string, std::string> ArenaHost::environment() const {
  return {kArenaVariable, format_location(ArenaLocation{address(), size()})};
}

bool ArenaHost::member_started(pid_t pid, const std::vector<std::string>& argv) {
  return MemberTable(state_->arena).add(pid, argv).has_value();
}

bool ArenaHost::member_ended(pid_t pid) {
  MemberTable table(state_->arena);
  auto slot = table.find_alive(pid);
  if (!slot) return !cleanup_pending();  // never recorded (table was full), or ended already
  table.mark_ending(*slot);
  return retry();
}

// The order, top to bottom; each step can be repeated, so an interrupted
// cleanup resumes where it stopped:
//  1. channels: end its attachments, wake its peers (PeerDied)
//  2. every buffer in its HolderSet: one reference fewer, erased from the set;
//     a count that reaches zero is freed (or owed, if the heap is busy)
//  3. frees it had started (pending_frees): finished
//  4. its HolderSet's block freed, the slot released for reuse
bool ArenaHost::State::finish_ending(std::size_t slot_index) {
  MemberSlot& slot = arena.member(slot_index);
  bool done = ChannelDirectory(arena).end_member(slot_index);
  HolderSet held(arena, slot);
  for (Handle handle : held.handles()) {
    if (buffers.drop_reference(handle)) owed_frees.push_back(handle);
    held.erase(handle);
  }
  for (PendingFree& pending : slot.pending_frees) {
    done = buffers.complete_pending(pending, unpin, RobustLock::Mode::Try) && done;
  }
  if (!done) return false;
  BlockAllocator allocator(arena);
  auto heap = allocator.lock(RobustLock::Mode::Try);
  if (!heap) return false;
  held.destroy(*heap);
  MemberTable(arena).release(slot_index);
  return true;
}

bool ArenaHost::State::pay_owed_frees() {
  while (!owed_frees.empty()) {
    if (!buffers.free_in_host(owed_frees.back(), unpin, RobustLock::Mode::Try)) return false;
    owed_frees.pop_back();
  }
  return true;
}

// A damaged heap (a member died inside it and the check failed) frees
// nothing any more: what the ended members held stays allocated, their slots
// are released all the same, and the host goes on serving the group.
bool ArenaHost::retry() {
  MemberTable table(state_->arena);
  try {
    bool done = true;
    for (std::size_t slot : table.ending()) done = state_->finish_ending(slot) && done;
    return state_->pay_owed_frees() && done;
  } catch (const Error&) {
    state_->owed_frees.clear();
    for (std::size_t index : table.ending()) {
      MemberSlot& slot = state_->arena.member(index);
      for (PendingFree& pending : slot.pending_frees) pending.handle.store(0);
      slot.holder_set.store(0);
      table.release(index);
    }
    return true;
  }
}

bool ArenaHost::cleanup_pending() const {
  return !state_->owed_frees.empty() || !MemberTable(state_->arena).ending().empty();
}

ArenaStats ArenaHost::stats() const {
  const ArenaHeader& header = state_->arena.header();
  MemberTable table(state_->arena);
  ArenaStats stats;
  stats.arena_bytes = state_->bytes;
  stats.members = table.alive().size();
  stats.members_ending = table.ending().size();
  stats.channels = ChannelDirectory(state_->arena).count();
  stats.buffers = header.buffers_live.load();
  stats.buffer_bytes = header.buffer_bytes_live.load();
  stats.retained_free_bytes = header.allocator.retained_free_bytes.load();
  stats.discarded_bytes = header.allocator.discarded_bytes.load();
  stats.owed_frees = state_->owed_frees.size();
  stats.allocator_owner_deaths = header.allocator.owner_deaths;
  stats.allocator_damaged = header.allocator.damaged != 0;
  return stats;
}

}  // namespace pat::dataplane
