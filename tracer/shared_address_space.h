// SharedAddressSpace: the group's one address space, as the host manages it.
// It owns the MappingLedger, performs the mapping syscalls that members'
// filters reroute (mmap, munmap, mremap, mprotect, pkey_mprotect, shmat,
// shmdt) on their behalf, refuses the ones that would clobber another
// member's memory, gives back everything a member owned when it is gone, and
// keeps pinned memory (handed to other members on purpose) alive until
// released. DESIGN "Memory ownership"; docs/memory.md says why the host
// performs the calls rather than letting them run and guessing afterwards.
//
// The host shares this mm, so a call made here has exactly the member's
// effect. File descriptors are fetched from the caller with pidfd_getfd(2).
#pragma once

#include "tracer/mapping_ledger.h"
#include "tracer/member_layout.h"
#include "tracer/syscall_reply.h"

#include <linux/seccomp.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <vector>

namespace pat::tracer {

// A refused mapping call, for the host's log: who asked, whose memory it was.
struct MappingRefusal {
  pid_t pid;              // the task that asked
  const char* syscall;    // "mmap", "munmap", ...
  Range range;            // what it asked for
  OwnerId other_owner;    // kNoOwner: memory of the host itself
  pid_t other_pid;        // 0 when not a member (host, or a member already gone)
  MappingKind other_kind;
};

struct MemberFootprint {
  std::size_t mapped_bytes = 0;    // owned ranges; of the brk reservation only what is in use
  std::size_t resident_bytes = 0;  // of those, pages in memory (mincore(2))
};

// The footprint of `ranges` (SharedAddressSpace::owned_ranges): mincore(2)
// over every page, which costs time in proportion to the memory. Needs no
// lock: the ranges are a copy, and a range unmapped meanwhile is counted as
// not resident.
MemberFootprint measure_footprint(const std::vector<Range>& ranges);

class SharedAddressSpace {
 public:
  // allow_cross_mapping: the group asked not to be protected (patctl group
  // create --allow-cross-mapping): members may map over each other.
  explicit SharedAddressSpace(bool allow_cross_mapping) : allow_cross_mapping_(allow_cross_mapping) {}

  // A new member, owning what its launch mapped.
  OwnerId add_member(pid_t pid, const MemberLayout& layout);
  // Unmaps everything `owner` holds and forgets the member. Its pinned pages
  // stay, held by the group until their last pin is released. Returns the
  // bytes unmapped.
  std::size_t reclaim(OwnerId owner);

  // `range` is the group's own memory from now on (the data-plane arena the
  // host maps at start, docs/dataplane.md): owned by kGroupOwner, never
  // reclaimed, and members' MAP_FIXED, munmap, mremap, mprotect or pins over
  // it are refused like any other foreign memory.
  void assign_to_group(Range range);
  // Releases pin `id` as PAT_HOSTCALL_UNPIN would, for the host itself: it
  // drops the last reference of a shared buffer whose holder died. False when
  // there is no such pin (already released: pin ids are never reused, so a
  // second release is harmless).
  bool release_pin(std::uint64_t id);

  static bool is_mapping_call(long nr);
  // One of the calls above, for `owner`, asked by task `task`. The caller has
  // checked that the notification is still valid: this performs the call.
  // If the reply then cannot be delivered, pass it to undo().
  SyscallReply handle_mapping_call(const seccomp_data& call, pid_t task, OwnerId owner, int member_pidfd);
  void undo(const SyscallReply& reply);

  // PAT_HOSTCALL (proto/hostcall.h).
  SyscallReply handle_hostcall(const seccomp_data& call, OwnerId owner);

  // What `owner` holds, of its brk reservation only what is in use: a copy,
  // taken under the group lock, to measure outside it (measure_footprint).
  std::vector<Range> owned_ranges(OwnerId owner, Range brk_in_use) const;
  const MappingLedger& ledger() const { return ledger_; }
  std::size_t pin_count() const { return pins_.size(); }

  std::function<void(const MappingRefusal&)> on_refusal;

 private:
  struct Pin {
    Range pages;
    OwnerId maker;
  };
  // Memory that held pins when its maker unmapped it or died: owned by the
  // group until the last pin on it goes.
  static constexpr OwnerId kPinHolder = 1;
  // The group's own memory (assign_to_group): never handed back to anyone.
  static constexpr OwnerId kGroupOwner = 2;

  SyscallReply do_mmap(const seccomp_data& call, pid_t task, OwnerId owner, int member_pidfd);
  SyscallReply do_munmap(const seccomp_data& call, pid_t task, OwnerId owner);
  SyscallReply do_mremap(const seccomp_data& call, pid_t task, OwnerId owner);
  SyscallReply do_mprotect(const seccomp_data& call, pid_t task, OwnerId owner);
  SyscallReply do_shmat(const seccomp_data& call, pid_t task, OwnerId owner);
  SyscallReply do_shmdt(const seccomp_data& call, pid_t task, OwnerId owner);
  SyscallReply pin(OwnerId owner, std::uintptr_t address, std::size_t length);
  SyscallReply unpin(std::uint64_t id);

  // Whether `owner` may change `range`: every part is its own, or nobody's
  // and not mapped at all. Reports and returns false otherwise.
  bool may_change(Range range, pid_t task, OwnerId owner, const char* syscall, bool pinned_ok);
  void refuse(pid_t task, const char* syscall, Range range, const MappingLedger::Segment& other);
  // Unmaps `range` except pages under a pin, which pass to kPinHolder.
  void unmap_keeping_pins(Range range);
  std::vector<Range> unpinned_parts(Range range) const;

  bool allow_cross_mapping_;
  MappingLedger ledger_;
  std::map<OwnerId, pid_t> members_;
  OwnerId next_owner_ = 3;  // 0 is nobody, 1 the pin holder, 2 the group
  std::map<std::uint64_t, Pin> pins_;
  std::uint64_t next_pin_ = 1;
};

}  // namespace pat::tracer
