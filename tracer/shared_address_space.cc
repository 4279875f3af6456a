#include "tracer/shared_address_space.h"

#include "proto/hostcall.h"
#include "tracer/kernel_abi.h"
#include "base/pidfd.h"

#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <vector>

namespace pat::tracer {

namespace {

using kernel::page_down;
using kernel::page_up;

void* pointer(std::uintptr_t address) { return reinterpret_cast<void*>(address); }

// The range a call of `length` bytes at `address` covers, as the kernel
// rounds it (mm/mmap.c: lengths round up to pages). Empty when it would wrap.
Range covered(std::uint64_t address, std::uint64_t length) {
  std::uint64_t end = page_up(address + length);
  if (end < address || length == 0) return {};
  return Range{page_down(address), end};
}

// True when nothing at all is mapped in `range`: a MAP_FIXED_NOREPLACE probe
// fails with EEXIST on any mapping, tracked or not (mmap(2)).
bool nothing_mapped(Range range) {
  void* probe = ::mmap(pointer(range.start), range.size(), PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
  if (probe == MAP_FAILED) return false;
  ::munmap(probe, range.size());
  return true;
}

// mincore(2) over `range`, in slices so the vector stays small.
std::size_t resident_bytes_in(Range range) {
  constexpr std::size_t kSlicePages = 16384;
  std::vector<unsigned char> residency(kSlicePages);
  std::size_t resident = 0;
  for (std::uintptr_t at = range.start; at < range.end;) {
    std::size_t pages = std::min<std::size_t>(kSlicePages, (range.end - at) / kernel::kPageSize);
    if (::mincore(pointer(at), pages * kernel::kPageSize, residency.data()) == 0) {
      for (std::size_t i = 0; i < pages; ++i) resident += (residency[i] & 1) ? kernel::kPageSize : 0;
    }
    at += pages * kernel::kPageSize;
  }
  return resident;
}

int int_arg(std::uint64_t raw) { return static_cast<int>(static_cast<std::uint32_t>(raw)); }

SyscallReply result_of(long rc) { return rc < 0 ? SyscallReply::fails(errno) : SyscallReply::returns(rc); }

}  // namespace

bool SharedAddressSpace::is_mapping_call(long nr) {
  switch (nr) {
    case SYS_mmap:
    case SYS_munmap:
    case SYS_mremap:
    case SYS_mprotect:
    case SYS_pkey_mprotect:
    case SYS_shmat:
    case SYS_shmdt: return true;
    default: return false;
  }
}

OwnerId SharedAddressSpace::add_member(pid_t pid, const MemberLayout& layout) {
  OwnerId owner = next_owner_++;
  members_[owner] = pid;
  for (const auto& entry : layout.entries()) {
    MappingKind kind = MappingKind::Image;
    switch (entry.kind) {
      case MemberLayout::Kind::Stack: kind = MappingKind::Stack; break;
      case MemberLayout::Kind::BrkReservation: kind = MappingKind::BrkReservation; break;
      case MemberLayout::Kind::Mapping: kind = MappingKind::Mapping; break;  // an attached process's own
      case MemberLayout::Kind::SysvShm: kind = MappingKind::SysvShm; break;
      case MemberLayout::Kind::ProgramImage:
      case MemberLayout::Kind::InterpreterImage: break;
    }
    ledger_.assign(entry.range, owner, kind);
  }
  return owner;
}

std::size_t SharedAddressSpace::reclaim(OwnerId owner) {
  std::size_t unmapped = 0;
  for (const auto& segment : ledger_.segments_of(owner)) {
    if (segment.kind == MappingKind::Pinned) {
      ledger_.assign(segment.range, kPinHolder, MappingKind::Pinned);
      continue;
    }
    // munmap also detaches SysV shm (the attachment is the VMA), and only
    // fails for a range that is not page-aligned: a ledger bug.
    [[maybe_unused]] int rc = ::munmap(pointer(segment.range.start), segment.range.size());
    assert(rc == 0);
    ledger_.erase(segment.range);
    unmapped += segment.range.size();
  }
  for (auto& [id, pin] : pins_) {
    if (pin.maker == owner) pin.maker = kPinHolder;
  }
  members_.erase(owner);
  return unmapped;
}

void SharedAddressSpace::assign_to_group(Range range) { ledger_.assign(range, kGroupOwner, MappingKind::GroupArena); }

bool SharedAddressSpace::release_pin(std::uint64_t id) { return unpin(id).kind == SyscallReply::Kind::Value; }

void SharedAddressSpace::refuse(pid_t task, const char* syscall, Range range, const MappingLedger::Segment& other) {
  if (!on_refusal) return;
  auto it = members_.find(other.owner);
  on_refusal(MappingRefusal{task, syscall, range, other.owner, it == members_.end() ? 0 : it->second, other.kind});
}

bool SharedAddressSpace::may_change(Range range, pid_t task, OwnerId owner, const char* syscall, bool pinned_ok) {
  if (allow_cross_mapping_) return true;
  for (const auto& segment : ledger_.segments_in(range)) {
    bool own = segment.owner == owner && (pinned_ok || segment.kind != MappingKind::Pinned);
    if (!own) {
      refuse(task, syscall, range, segment);
      return false;
    }
  }
  for (const Range& gap : ledger_.gaps_in(range)) {
    if (!nothing_mapped(gap)) {
      refuse(task, syscall, range, MappingLedger::Segment{gap, kNoOwner, MappingKind::Mapping});
      return false;
    }
  }
  return true;
}

SyscallReply SharedAddressSpace::handle_mapping_call(const seccomp_data& call, pid_t task, OwnerId owner,
                                                     int member_pidfd) {
  switch (call.nr) {
    case SYS_mmap: return do_mmap(call, task, owner, member_pidfd);
    case SYS_munmap: return do_munmap(call, task, owner);
    case SYS_mremap: return do_mremap(call, task, owner);
    case SYS_mprotect:
    case SYS_pkey_mprotect: return do_mprotect(call, task, owner);
    case SYS_shmat: return do_shmat(call, task, owner);
    case SYS_shmdt: return do_shmdt(call, task, owner);
    default: return SyscallReply::proceed();
  }
}

void SharedAddressSpace::undo(const SyscallReply& reply) {
  if (reply.created.size() == 0) return;
  ::munmap(pointer(reply.created.start), reply.created.size());
  ledger_.erase(reply.created);
}

// mmap(2). A file is mapped through our own copy of the caller's descriptor.
// Without MAP_FIXED the kernel only picks free space, which cannot hurt
// anyone; MAP_FIXED replaces what is there, so it must all be the caller's.
SyscallReply SharedAddressSpace::do_mmap(const seccomp_data& call, pid_t task, OwnerId owner, int member_pidfd) {
  const auto address = call.args[0], length = call.args[1];
  const int prot = int_arg(call.args[2]), flags = int_arg(call.args[3]), fd = int_arg(call.args[4]);
  const auto offset = static_cast<off_t>(call.args[5]);
  bool replaces = (flags & MAP_FIXED) && !(flags & MAP_FIXED_NOREPLACE);
  Range wanted = covered(address, length);
  if (replaces && wanted.size() != 0 && !may_change(wanted, task, owner, "mmap", false)) {
    return SyscallReply::fails(ENOMEM);
  }
  UniqueFd file;
  if (!(flags & MAP_ANONYMOUS)) {
    // The task's own descriptor table: the member's, or a vfork child's.
    UniqueFd task_pidfd;
    int source = member_pidfd;
    if (task != members_[owner]) {
      auto opened = pidfd_open_thread(task);
      if (!opened) return SyscallReply::fails(EBADF);
      task_pidfd = std::move(opened.value());
      source = task_pidfd.get();
    }
    file = UniqueFd(static_cast<int>(::syscall(SYS_pidfd_getfd, source, fd, 0)));
    if (!file) return SyscallReply::fails(errno == EBADF || errno == ESRCH ? EBADF : errno);
  }
  void* mapped = ::mmap(pointer(address), length, prot, flags, file ? file.get() : -1, offset);
  if (mapped == MAP_FAILED) return SyscallReply::fails(errno);
  auto start = reinterpret_cast<std::uintptr_t>(mapped);
  // A MAP_HUGETLB length rounds up to the huge page size; the ledger keeps
  // whole small pages, and a huge mapping is a whole number of them anyway.
  Range made = covered(start, length);
  if (flags & MAP_HUGETLB) made.end = start + ((length + (2u << 20) - 1) & ~std::uint64_t((2u << 20) - 1));
  ledger_.assign(made, owner, MappingKind::Mapping);
  SyscallReply reply = SyscallReply::returns(static_cast<long>(start));
  reply.created = made;
  return reply;
}

SyscallReply SharedAddressSpace::do_munmap(const seccomp_data& call, pid_t task, OwnerId owner) {
  const auto address = call.args[0], length = call.args[1];
  Range range = covered(address, length);
  // Let the kernel report malformed calls (unaligned address, zero length).
  if (range.size() == 0 || address != range.start) return result_of(::munmap(pointer(address), length));
  if (!may_change(range, task, owner, "munmap", true)) return SyscallReply::fails(EINVAL);
  unmap_keeping_pins(range);
  return SyscallReply::returns(0);
}

void SharedAddressSpace::unmap_keeping_pins(Range range) {
  for (const auto& segment : ledger_.segments_in(range)) {
    if (segment.kind == MappingKind::Pinned) {
      // Handed to other members: it stays mapped for them. The caller's
      // allocator believes it is gone, and the kernel will not hand these
      // addresses out again while they are mapped.
      ledger_.assign(segment.range, kPinHolder, MappingKind::Pinned);
    } else {
      ::munmap(pointer(segment.range.start), segment.range.size());
      ledger_.erase(segment.range);
    }
  }
  for (const Range& gap : ledger_.gaps_in(range)) ::munmap(pointer(gap.start), gap.size());
}

SyscallReply SharedAddressSpace::do_mprotect(const seccomp_data& call, pid_t task, OwnerId owner) {
  Range range = covered(call.args[0], call.args[1]);
  if (range.size() != 0 && call.args[0] == range.start && !may_change(range, task, owner, "mprotect", true)) {
    return SyscallReply::fails(ENOMEM);
  }
  if (call.nr == SYS_pkey_mprotect) {
    return result_of(::syscall(SYS_pkey_mprotect, call.args[0], call.args[1], call.args[2], call.args[3]));
  }
  return result_of(::mprotect(pointer(call.args[0]), call.args[1], int_arg(call.args[2])));
}

// mremap(2) moves or resizes: the old range must be the caller's, a fixed
// target too. Pinned memory is not moved from under its readers; glibc's
// realloc falls back to malloc, copy and free when mremap fails.
SyscallReply SharedAddressSpace::do_mremap(const seccomp_data& call, pid_t task, OwnerId owner) {
  const auto old_address = call.args[0], old_length = call.args[1], new_length = call.args[2];
  const int flags = int_arg(call.args[3]);
  const auto new_address = call.args[4];
  Range old_range = covered(old_address, old_length == 0 ? 1 : old_length);
  if (old_range.size() == 0 || old_address != old_range.start) {
    return result_of(reinterpret_cast<long>(
        ::mremap(pointer(old_address), old_length, new_length, flags, pointer(new_address))));
  }
  if (!may_change(old_range, task, owner, "mremap", false)) return SyscallReply::fails(EINVAL);
  if (flags & MREMAP_FIXED) {
    Range target = covered(new_address, new_length);
    if (target.size() != 0 && !may_change(target, task, owner, "mremap", false)) return SyscallReply::fails(EINVAL);
  }
  auto kind = ledger_.segment_at(old_range.start).value_or(MappingLedger::Segment{{}, owner, MappingKind::Mapping}).kind;
  void* moved = ::mremap(pointer(old_address), old_length, new_length, flags, pointer(new_address));
  if (moved == MAP_FAILED) return SyscallReply::fails(errno);
  auto start = reinterpret_cast<std::uintptr_t>(moved);
  // old_length 0 duplicates a shared mapping; MREMAP_DONTUNMAP leaves the old
  // range mapped (empty). Otherwise the old range is gone.
  if (old_length != 0 && !(flags & MREMAP_DONTUNMAP)) ledger_.erase(covered(old_address, old_length));
  Range made = covered(start, new_length);
  ledger_.assign(made, owner, kind == MappingKind::Pinned ? MappingKind::Mapping : kind);
  return SyscallReply::returns(static_cast<long>(start));
}

// shmat(2): attached here for the caller (same IPC namespace, same
// credentials). With SHM_REMAP it replaces what is there, like MAP_FIXED.
SyscallReply SharedAddressSpace::do_shmat(const seccomp_data& call, pid_t task, OwnerId owner) {
  const int id = int_arg(call.args[0]), flags = int_arg(call.args[2]);
  const auto address = call.args[1];
  shmid_ds info{};
  if (::shmctl(id, IPC_STAT, &info) != 0) return SyscallReply::fails(errno);
  if ((flags & SHM_REMAP) && address != 0) {
    std::uint64_t base = (flags & SHM_RND) ? address & ~std::uint64_t(SHMLBA - 1) : address;
    if (!may_change(covered(base, info.shm_segsz), task, owner, "shmat", false)) return SyscallReply::fails(EINVAL);
  }
  void* attached = ::shmat(id, pointer(address), flags);
  if (attached == reinterpret_cast<void*>(-1)) return SyscallReply::fails(errno);
  auto start = reinterpret_cast<std::uintptr_t>(attached);
  Range made = covered(start, info.shm_segsz);
  ledger_.assign(made, owner, MappingKind::SysvShm);
  SyscallReply reply = SyscallReply::returns(static_cast<long>(start));
  reply.created = made;
  return reply;
}

SyscallReply SharedAddressSpace::do_shmdt(const seccomp_data& call, pid_t task, OwnerId owner) {
  const auto address = call.args[0];
  auto segment = ledger_.segment_at(address);
  if (segment && segment->owner != owner && !allow_cross_mapping_) {
    refuse(task, "shmdt", Range{address, address + kernel::kPageSize}, *segment);
    return SyscallReply::fails(EINVAL);
  }
  if (::shmdt(pointer(address)) != 0) return SyscallReply::fails(errno);
  if (segment && segment->kind == MappingKind::SysvShm) ledger_.erase(segment->range);
  return SyscallReply::returns(0);
}

SyscallReply SharedAddressSpace::handle_hostcall(const seccomp_data& call, OwnerId owner) {
  switch (call.args[1]) {
    case PAT_HOSTCALL_PING: return SyscallReply::returns(::getpid());
    case PAT_HOSTCALL_PIN: return pin(owner, call.args[2], call.args[3]);
    case PAT_HOSTCALL_UNPIN: return unpin(call.args[2]);
    default: return SyscallReply::fails(EINVAL);
  }
}

// Pins whole pages: whatever else shares them stays too, which is harmless,
// and the maker's allocator cannot reuse memory it is still using anyway.
SyscallReply SharedAddressSpace::pin(OwnerId owner, std::uintptr_t address, std::size_t length) {
  Range pages = covered(address, length);
  if (pages.size() == 0) return SyscallReply::fails(EINVAL);
  for (const auto& segment : ledger_.segments_in(pages)) {
    bool pinnable = segment.owner == owner &&
                    (segment.kind == MappingKind::Mapping || segment.kind == MappingKind::Pinned);
    if (!pinnable) return SyscallReply::fails(EPERM);
  }
  if (!ledger_.gaps_in(pages).empty()) return SyscallReply::fails(EPERM);
  ledger_.assign(pages, owner, MappingKind::Pinned);
  std::uint64_t id = next_pin_++;
  pins_[id] = Pin{pages, owner};
  return SyscallReply::returns(static_cast<long>(id));
}

// `range` less the pages any pin still holds, as ranges.
std::vector<Range> SharedAddressSpace::unpinned_parts(Range range) const {
  std::vector<Range> parts{range};
  for (const auto& [id, pin] : pins_) {
    std::vector<Range> rest;
    for (const Range& part : parts) {
      if (!part.overlaps(pin.pages)) {
        rest.push_back(part);
        continue;
      }
      if (part.start < pin.pages.start) rest.push_back({part.start, pin.pages.start});
      if (pin.pages.end < part.end) rest.push_back({pin.pages.end, part.end});
    }
    parts = std::move(rest);
  }
  return parts;
}

// The last pin on a page gives it back: to its maker while it is alive and
// still has it mapped, otherwise to nobody (unmapped). Range by range, not
// page by page: this runs under the group lock, and a 256 MiB buffer is
// 65,536 pages. Unmapping them one munmap(2) each (as this once did) took
// about 0.3 s, every one a TLB shootdown on the CPUs running other members,
// and stalled every member's mapping calls meanwhile (issue 11 §3).
SyscallReply SharedAddressSpace::unpin(std::uint64_t id) {
  auto it = pins_.find(id);
  if (it == pins_.end()) return SyscallReply::fails(ENOENT);
  Range pages = it->second.pages;
  pins_.erase(it);
  for (const Range& part : unpinned_parts(pages)) {
    for (const auto& segment : ledger_.segments_in(part)) {
      if (segment.kind != MappingKind::Pinned) continue;
      if (segment.owner == kPinHolder) {
        ::munmap(pointer(segment.range.start), segment.range.size());
        ledger_.erase(segment.range);
      } else {
        ledger_.assign(segment.range, segment.owner, MappingKind::Mapping);
      }
    }
  }
  return SyscallReply::returns(0);
}

std::vector<Range> SharedAddressSpace::owned_ranges(OwnerId owner, Range brk_in_use) const {
  std::vector<Range> ranges;
  for (const auto& segment : ledger_.segments_of(owner)) {
    Range counted = segment.range;
    if (segment.kind == MappingKind::BrkReservation) {
      counted = Range{std::max(counted.start, brk_in_use.start), std::min(counted.end, brk_in_use.end)};
      if (counted.start >= counted.end) continue;
    }
    ranges.push_back(counted);
  }
  return ranges;
}

MemberFootprint measure_footprint(const std::vector<Range>& ranges) {
  MemberFootprint footprint;
  for (const Range& range : ranges) {
    footprint.mapped_bytes += range.size();
    footprint.resident_bytes += resident_bytes_in(range);
  }
  return footprint;
}

}  // namespace pat::tracer
