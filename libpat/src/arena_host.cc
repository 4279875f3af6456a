#include "libpat/src/arena_host.h"

#include "libpat/src/block_allocator.h"
#include "libpat/src/channel_directory.h"
#include "libpat/src/holder_set.h"
#include "libpat/src/member_table.h"
#include "pat/pat.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pat::dataplane {

std::unique_ptr<ArenaHost> ArenaHost::create(std::string_view group_name, Unpin unpin, std::size_t bytes) {
  int error = 0;
  for (std::size_t size = bytes; size >= kSmallestBytes; size /= 2) {
    void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base != MAP_FAILED) return std::unique_ptr<ArenaHost>(new ArenaHost(base, size, group_name, std::move(unpin)));
    error = errno;
  }
  throw Error(Errc::SystemError, "mmap of the group's arena (" + std::to_string(kSmallestBytes >> 20) +
                                     " MiB at least): " + std::strerror(error));
}

ArenaHost::ArenaHost(void* base, std::size_t bytes, std::string_view group_name, Unpin unpin)
    : base_(base),
      bytes_(bytes),
      arena_(Arena::format(base, bytes, group_name, ::getpid())),
      unpin_(std::move(unpin)),
      buffers_(arena_) {}

// Only at the host's exit: members die with their host (PR_SET_PDEATHSIG).
ArenaHost::~ArenaHost() { ::munmap(base_, bytes_); }

ArenaLocation ArenaHost::location() const { return {reinterpret_cast<std::uintptr_t>(base_), bytes_}; }

bool ArenaHost::member_started(pid_t pid, const std::vector<std::string>& argv) {
  return MemberTable(arena_).add(pid, argv).has_value();
}

bool ArenaHost::member_ended(pid_t pid) {
  MemberTable table(arena_);
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
bool ArenaHost::finish_ending(std::size_t slot_index) {
  MemberSlot& slot = arena_.member(slot_index);
  bool done = ChannelDirectory(arena_).end_member(slot_index);
  HolderSet held(arena_, slot);
  for (Handle handle : held.handles()) {
    if (buffers_.drop_reference(handle)) owed_frees_.push_back(handle);
    held.erase(handle);
  }
  for (PendingFree& pending : slot.pending_frees) {
    done = buffers_.complete_pending(pending, unpin_, RobustLock::Mode::Try) && done;
  }
  if (!done) return false;
  BlockAllocator allocator(arena_);
  auto heap = allocator.lock(RobustLock::Mode::Try);
  if (!heap) return false;
  held.destroy(*heap);
  MemberTable(arena_).release(slot_index);
  return true;
}

bool ArenaHost::pay_owed_frees() {
  while (!owed_frees_.empty()) {
    if (!buffers_.free_in_host(owed_frees_.back(), unpin_, RobustLock::Mode::Try)) return false;
    owed_frees_.pop_back();
  }
  return true;
}

// A damaged heap (a member died inside it and the check failed) frees
// nothing any more: what the ended members held stays allocated, their slots
// are released all the same, and the host goes on serving the group.
bool ArenaHost::retry() {
  MemberTable table(arena_);
  try {
    bool done = true;
    for (std::size_t slot : table.ending()) done = finish_ending(slot) && done;
    return pay_owed_frees() && done;
  } catch (const Error&) {
    owed_frees_.clear();
    for (std::size_t index : table.ending()) {
      MemberSlot& slot = arena_.member(index);
      for (PendingFree& pending : slot.pending_frees) pending.handle.store(0);
      slot.holder_set.store(0);
      table.release(index);
    }
    return true;
  }
}

bool ArenaHost::cleanup_pending() const { return !owed_frees_.empty() || !MemberTable(arena_).ending().empty(); }

ArenaStats ArenaHost::stats() const {
  const ArenaHeader& header = arena_.header();
  MemberTable table(arena_);
  ArenaStats stats;
  stats.arena_bytes = bytes_;
  stats.members = table.alive().size();
  stats.members_ending = table.ending().size();
  stats.channels = ChannelDirectory(arena_).count();
  stats.buffers = header.buffers_live.load();
  stats.buffer_bytes = header.buffer_bytes_live.load();
  stats.retained_free_bytes = header.allocator.retained_free_bytes.load();
  stats.discarded_bytes = header.allocator.discarded_bytes.load();
  stats.owed_frees = owed_frees_.size();
  stats.allocator_owner_deaths = header.allocator.owner_deaths;
  stats.allocator_damaged = header.allocator.damaged != 0;
  return stats;
}

}  // namespace pat::dataplane
