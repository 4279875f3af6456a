#include "tracer/attach/address_space_copy.h"

#include <fcntl.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "tracer/attach/vdso_proxy.h"
#include "tracer/kernel_abi.h"

namespace pat::tracer {
namespace {

using kernel::kPageSize;
using kernel::page_down;
using kernel::page_up;
using Clock = std::chrono::steady_clock;

void* pointer(std::uintptr_t a) { return reinterpret_cast<void*>(a); }

std::string hex_range(Range r) {
  char text[64];
  std::snprintf(text, sizeof(text), "%lx-%lx", static_cast<unsigned long>(r.start), static_cast<unsigned long>(r.end));
  return text;
}

Range intersect(Range a, Range b) {
  Range r{std::max(a.start, b.start), std::min(a.end, b.end)};
  return r.start < r.end ? r : Range{};
}

// Copies `runs` from `pid` to the same addresses here with
// process_vm_readv(2), IOV_MAX runs per call. A run stops at the first page
// the process no longer has; that page is reported in `failed` and the copy
// goes on after it. Returns the bytes copied.
std::size_t copy_with_vm_readv(pid_t pid, const std::vector<Range>& runs, std::vector<Range>& failed) {
  constexpr std::size_t kIovMax = 1024;  // UIO_MAXIOV (include/uapi/linux/uio.h)
  std::size_t copied = 0;
  std::vector<Range> pending(runs.rbegin(), runs.rend());  // a stack, first run last
  std::vector<iovec> iov;
  while (!pending.empty()) {
    iov.clear();
    std::size_t wanted = 0;
    for (std::size_t i = pending.size(); i-- > 0 && iov.size() < kIovMax;) {
      iov.push_back(iovec{pointer(pending[i].start), pending[i].size()});
      wanted += pending[i].size();
    }
    ssize_t n = ::process_vm_readv(pid, iov.data(), iov.size(), iov.data(), iov.size(), 0);
    std::size_t done = n > 0 ? static_cast<std::size_t>(n) : 0;
    copied += done;
    // Drop what was copied from the stack of runs.
    while (done > 0) {
      Range& top = pending.back();
      std::size_t take = std::min(done, top.size());
      top.start += take;
      done -= take;
      if (top.size() == 0) pending.pop_back();
    }
    if (static_cast<std::size_t>(n > 0 ? n : 0) == wanted) continue;
    // The copy stopped at a page it could not read: skip that page.
    if (pending.empty()) break;
    Range& top = pending.back();
    failed.push_back(Range{top.start, top.start + kPageSize});
    top.start += kPageSize;
    if (top.size() == 0) pending.pop_back();
  }
  return copied;
}

// For memory the process itself cannot read (PROT_NONE or execute-only
// pages that hold data): /proc/PID/mem reads with FOLL_FORCE.
std::size_t copy_with_proc_mem(int mem_fd, const std::vector<Range>& runs, std::vector<Range>& failed) {
  std::size_t copied = 0;
  for (const Range& run : runs) {
    for (std::uintptr_t page = run.start; page < run.end; page += kPageSize) {
      ssize_t n = ::pread(mem_fd, pointer(page), kPageSize, static_cast<off_t>(page));
      if (n == static_cast<ssize_t>(kPageSize)) copied += kPageSize;
      else failed.push_back(Range{page, page + kPageSize});
    }
  }
  return copied;
}

void append_page(std::vector<Range>& runs, std::uintptr_t page) {
  if (!runs.empty() && runs.back().end == page) runs.back().end += kPageSize;
  else runs.push_back(Range{page, page + kPageSize});
}

std::optional<std::pair<std::uintptr_t, std::size_t>> own_vdso(const std::vector<ProcessMapping>& mine) {
  for (const auto& m : mine) {
    if (m.cls == MappingClass::Vdso) return std::make_pair(m.range.start, m.range.size());
  }
  return std::nullopt;
}

Result<std::vector<ProcessMapping>> read_own_mappings() { return read_process_mappings(::getpid()); }

}  // namespace

AddressSpaceCopy::AddressSpaceCopy(pid_t pid, MappedObjects& objects, OwnerOf owner_of)
    : pid_(pid), objects_(objects), owner_of_(std::move(owner_of)) {}

AddressSpaceCopy::~AddressSpaceCopy() {
  if (committed_) return;
  for (const auto& [start, region] : regions_) unmake(region);
}

AddressSpaceCopy::Region* AddressSpaceCopy::region_at(std::uintptr_t address) {
  auto it = regions_.upper_bound(address);
  if (it == regions_.begin()) return nullptr;
  --it;
  return it->second.range.contains(address) ? &it->second : nullptr;
}

std::optional<AttachError> AddressSpaceCopy::conflict(Range range, const std::string& what) const {
  for (const auto& mine : host_mappings_) {
    if (!mine.range.overlaps(range)) continue;
    AttachError e;
    e.kind = AttachError::Kind::Refused;
    e.step = AttachStep::MapLayout;
    e.refusal = AttachRefusal::AddressConflict;
    e.conflict = intersect(mine.range, range);
    auto owner = owner_of_ ? owner_of_(e.conflict) : std::nullopt;
    e.conflict_owner = owner.value_or(0);
    e.message = "process " + std::to_string(pid_) + " has " + what + " at " + hex_range(range) + ", where the group has " +
                (e.conflict_owner != 0 ? "memory of member " + std::to_string(e.conflict_owner)
                                       : "memory of its host" + (mine.path.empty() ? std::string() : " (" + mine.path + ")"));
    return e;
  }
  return std::nullopt;
}

std::optional<AttachError> AddressSpaceCopy::add_region(const ProcessMapping& m, Range range, RegionKind kind) {
  if (auto e = conflict(range, m.path.empty() ? std::string("memory") : m.path)) return e;
  Region region{range, kind, m, false, std::vector<bool>(range.size() / kPageSize, false),
                std::vector<bool>(range.size() / kPageSize, true)};
  // The source as seen from this region's first address (the heap's and
  // the stack's keep the mapping's own range: their regions hold room too).
  if (kind != RegionKind::Heap && kind != RegionKind::Stack) {
    if (m.inode != 0 && range.start > m.range.start) region.source.offset += range.start - m.range.start;
    region.source.range = range;
  }
  regions_.emplace(range.start, std::move(region));
  return std::nullopt;
}

std::optional<AttachError> AddressSpaceCopy::map_layout(const std::vector<ProcessMapping>& mappings, const ProcStatLayout& stat,
                                                        std::size_t stack_size, std::size_t brk_room) {
  std::string mem_path = "/proc/" + std::to_string(pid_) + "/mem";
  mem_.reset(::open(mem_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!mem_) return AttachError::failed(AttachStep::MapLayout, "open " + mem_path + ": " + std::strerror(errno));
  auto pagemap = PageMap::open(pid_);
  if (!pagemap) return AttachError::failed(AttachStep::MapLayout, pagemap.error().message());
  pagemap_ = std::move(pagemap.value());
  auto mine = read_own_mappings();
  if (!mine) return AttachError::failed(AttachStep::MapLayout, mine.error().message());
  host_mappings_ = std::move(mine.value());
  start_brk_ = page_down(stat.start_brk);

  const ProcessMapping* heap = nullptr;
  for (const auto& m : mappings) {
    std::optional<AttachError> e;
    switch (m.cls) {
      case MappingClass::NotMoved: break;
      case MappingClass::Refused:
        return AttachError::refused(AttachStep::MapLayout, Refusal{AttachRefusal::UnsupportedMapping,
                                                                   "process " + std::to_string(pid_) + " maps " + hex_range(m.range) + ": " + m.refusal_reason});
      case MappingClass::Heap: heap = &m; break;
      case MappingClass::Stack: e = plan_stack(m, mappings, stack_size); break;
      case MappingClass::Vdso: e = add_region(m, m.range, RegionKind::Vdso); break;
      case MappingClass::PrivateAnonymous: e = add_region(m, m.range, RegionKind::Copied); break;
      case MappingClass::PrivateFile: e = add_region(m, m.range, RegionKind::FilePrivate); break;
      case MappingClass::SharedFile: e = add_region(m, m.range, RegionKind::Shared); break;
      case MappingClass::SysvShm: e = add_region(m, m.range, RegionKind::SysvShm); break;
    }
    if (e) return e;
  }
  if (auto e = plan_heap(heap, mappings, start_brk_, brk_room)) return e;
  for (auto& [start, region] : regions_) {
    if (auto e = make(region)) return e;
  }
  return std::nullopt;
}

// The break lives in [start_brk, start_brk + room): the [heap] mapping (if
// the process has a break above its start) and, above it, PROT_NONE room
// the member's emulated brk grows into (BrkEmulator), up to the next
// mapping of the process or of the group. Part of a [heap] mapping below
// start_brk (the kernel merges a non-PIE program's .bss with it) is
// ordinary memory.
std::optional<AttachError> AddressSpaceCopy::plan_heap(const ProcessMapping* heap, const std::vector<ProcessMapping>& mappings,
                                                       std::uint64_t start_brk, std::size_t room) {
  if (start_brk == 0) return heap ? add_region(*heap, heap->range, RegionKind::Copied) : std::nullopt;
  ProcessMapping source;
  if (heap) source = *heap;
  else source.prot = PROT_READ | PROT_WRITE;
  source.cls = MappingClass::Heap;
  if (heap && heap->range.start < start_brk) {
    if (auto e = add_region(source, Range{heap->range.start, start_brk}, RegionKind::Copied)) return e;
  }
  const std::uintptr_t heap_end = heap ? std::max<std::uintptr_t>(heap->range.end, start_brk) : start_brk;
  std::uintptr_t end = start_brk + room;
  for (const auto& m : mappings) {
    if (&m != heap && m.range.start >= start_brk && m.cls != MappingClass::NotMoved) end = std::min<std::uintptr_t>(end, m.range.start);
  }
  for (const auto& m : host_mappings_) {
    if (m.range.end > heap_end && m.range.start >= heap_end) end = std::min<std::uintptr_t>(end, m.range.start);
  }
  end = std::max(end, heap_end);
  if (end == start_brk) return std::nullopt;  // no room at all: brk(2) will fail as at a full reservation
  source.range = Range{start_brk, heap_end};
  return add_region(source, Range{start_brk, end}, RegionKind::Heap);
}

// [stack] keeps its place; below it, room to grow to `size` (as launched
// members' stacks have), less if a mapping of the process or the group is
// within reach (then a guard gap is left above that mapping).
std::optional<AttachError> AddressSpaceCopy::plan_stack(const ProcessMapping& stack, const std::vector<ProcessMapping>& mappings,
                                                        std::size_t size) {
  std::uintptr_t below = 0;
  auto consider = [&](const Range& r) {
    if (r.end <= stack.range.start) below = std::max<std::uintptr_t>(below, r.end);
  };
  for (const auto& m : mappings) {
    if (m.cls != MappingClass::NotMoved) consider(m.range);
  }
  for (const auto& m : host_mappings_) consider(m.range);
  std::uintptr_t start = stack.range.end - std::max<std::size_t>(size, stack.range.size());
  start = std::max<std::uintptr_t>(start, below + kernel::kStackGuardGap);
  start = std::min<std::uintptr_t>(start, stack.range.start);
  return add_region(stack, Range{start, stack.range.end}, RegionKind::Stack);
}

std::optional<AttachError> AddressSpaceCopy::make(Region& region) {
  const Range r = region.range;
  const ProcessMapping& src = region.source;
  auto mmap_failed = [&](const char* what) -> std::optional<AttachError> {
    int err = errno;
    if (err == EEXIST) {
      // Taken since the plan was made (another member mapped it meanwhile).
      auto mine = read_own_mappings();
      if (mine) host_mappings_ = std::move(mine.value());
      if (auto e = conflict(r, src.path.empty() ? std::string("memory") : src.path)) return e;
    }
    return AttachError::failed(AttachStep::MapLayout, std::string(what) + " " + hex_range(r) + ": " + std::strerror(err));
  };
  int anon_flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
  if ((src.flags & kVmNoReserve) || region.kind == RegionKind::Stack || region.kind == RegionKind::Heap) anon_flags |= MAP_NORESERVE;
  void* at = pointer(r.start);
  void* got = MAP_FAILED;
  switch (region.kind) {
    case RegionKind::Copied:
    case RegionKind::Stack:
    case RegionKind::Vdso: got = ::mmap(at, r.size(), PROT_READ | PROT_WRITE, anon_flags, -1, 0); break;
    case RegionKind::Heap:
      got = ::mmap(at, r.size(), PROT_NONE, anon_flags, -1, 0);
      if (got != MAP_FAILED && src.range.size() > 0) ::mprotect(pointer(src.range.start), src.range.size(), PROT_READ | PROT_WRITE);
      break;
    case RegionKind::FilePrivate: {
      auto fd = objects_.open(src);
      if (!fd) {
        // The file is gone (deleted, replaced): the pages as they are, all copied.
        region.kind = RegionKind::Copied;
        region.copy_all_pages = true;
        got = ::mmap(at, r.size(), PROT_READ | PROT_WRITE, anon_flags, -1, 0);
        break;
      }
      got = ::mmap(at, r.size(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED_NOREPLACE, fd->get(), static_cast<off_t>(src.offset));
      break;
    }
    case RegionKind::Shared: {
      auto fd = objects_.open(src);
      if (!fd) {
        return AttachError::refused(AttachStep::MapLayout,
                                    Refusal{AttachRefusal::UnsupportedMapping,
                                            "process " + std::to_string(pid_) + " maps shared memory " + (src.path.empty() ? hex_range(r) : src.path) +
                                                " that cannot be opened again without privilege (/proc/PID/map_files needs CAP_SYS_ADMIN)"});
      }
      got = ::mmap(at, r.size(), src.prot, MAP_SHARED | MAP_FIXED_NOREPLACE, fd->get(), static_cast<off_t>(src.offset));
      break;
    }
    case RegionKind::SysvShm: {
      // ipc/shm.c newseg(): the segment's inode number is its id.
      const int id = static_cast<int>(src.inode);
      shmid_ds info{};
      if (::shmctl(id, IPC_STAT, &info) != 0 || src.offset != 0 || page_up(info.shm_segsz) != r.size())
        return AttachError::refused(AttachStep::MapLayout, Refusal{AttachRefusal::UnsupportedMapping,
                                                                   "process " + std::to_string(pid_) + " maps part of SysV segment " + std::to_string(id)});
      int flags = (src.prot & PROT_WRITE ? 0 : SHM_RDONLY) | (src.prot & PROT_EXEC ? SHM_EXEC : 0);
      void* attached = ::shmat(id, at, flags);
      if (attached == reinterpret_cast<void*>(-1)) return mmap_failed("shmat");
      if (attached != at) {
        ::shmdt(attached);
        errno = EEXIST;
        return mmap_failed("shmat");
      }
      return std::nullopt;
    }
  }
  if (got == MAP_FAILED) return mmap_failed("mmap");
  if (got != at) {  // a kernel without MAP_FIXED_NOREPLACE takes it as a hint
    ::munmap(got, r.size());
    errno = EEXIST;
    return mmap_failed("mmap");
  }
  if (region.kind == RegionKind::Vdso) {
    auto group = own_vdso(host_mappings_);
    if (!group) return AttachError::failed(AttachStep::MapLayout, "the group has no vdso");
    std::vector<std::uint8_t> image(r.size());
    iovec local{image.data(), image.size()}, remote{at, image.size()};
    if (::process_vm_readv(pid_, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(image.size()))
      return AttachError::failed(AttachStep::MapLayout, "reading the process's vdso: " + std::string(std::strerror(errno)));
    auto made = make_vdso_proxy(image, reinterpret_cast<const std::uint8_t*>(group->first), group->second, group->first);
    if (!made) return AttachError::failed(AttachStep::MapLayout, "vdso proxy: " + made.error().message());
    std::memcpy(at, image.data(), image.size());
  }
  return std::nullopt;
}

void AddressSpaceCopy::unmake(const Region& region) {
  if (region.kind == RegionKind::SysvShm) ::shmdt(pointer(region.range.start));
  else ::munmap(pointer(region.range.start), region.range.size());
}

std::optional<AttachError> AddressSpaceCopy::precopy(WriteTracker& tracker, const std::vector<ProcessMapping>& known, int max_passes,
                                                     std::size_t enough) {
  auto mappings = refresh_process_mappings(pid_, known);
  if (!mappings) return AttachError::failed(AttachStep::PreCopy, mappings.error().message());
  // Every window we copy is tracked; one the kernel will not track is
  // copied again in full while stopped.
  for (const auto& m : mappings.value()) {
    if (m.cls != MappingClass::PrivateAnonymous && m.cls != MappingClass::PrivateFile && m.cls != MappingClass::Heap &&
        m.cls != MappingClass::Stack)
      continue;
    (void)tracker.track(m.range);
  }
  for (int pass = 0; pass <= max_passes; ++pass) {
    const std::size_t before = precopy_.bytes_copied;
    if (pass > 0) {
      mappings = refresh_process_mappings(pid_, known, kVmUffdWp);
      if (!mappings) return AttachError::failed(AttachStep::PreCopy, mappings.error().message());
    }
    if (auto e = copy_pass(mappings.value(), false, precopy_, &tracker)) return e;
    if (pass > 0 && precopy_.bytes_copied - before < enough) break;
  }
  return std::nullopt;
}

// What was written since the last pass, from the tracker, into each
// region's `written` bits (pages it does not track stay marked written).
std::optional<AttachError> AddressSpaceCopy::collect_written(WriteTracker& tracker) {
  for (const Range& tracked : tracker.tracked()) {
    auto written = tracker.written(tracked, false);
    if (!written) return AttachError::failed(AttachStep::FinalCopy, written.error().message());
    mark_written(tracked, written.value());
  }
  return std::nullopt;
}

void AddressSpaceCopy::mark_written(Range window, const std::vector<Range>& written) {
  auto set = [&](Range range, bool value) {
    if (range.size() == 0) return;
    auto it = regions_.upper_bound(range.start);
    if (it != regions_.begin()) --it;
    for (; it != regions_.end() && it->second.range.start < range.end; ++it) {
      Region& r = it->second;
      Range part = intersect(r.range, range);
      if (part.size() == 0) continue;
      auto first = r.written.begin() + static_cast<std::ptrdiff_t>((part.start - r.range.start) / kPageSize);
      std::fill(first, first + static_cast<std::ptrdiff_t>(part.size() / kPageSize), value);
    }
  };
  set(window, false);
  for (const Range& w : written) set(intersect(w, window), true);
}

std::optional<AttachError> AddressSpaceCopy::finish(const std::vector<ProcessMapping>& mappings) {
  const auto start = Clock::now();
  if (auto e = follow_layout(mappings)) return e;
  if (auto e = copy_pass(mappings, true, final_)) return e;
  apply_protection(mappings);
  final_.time = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
  return std::nullopt;
}

// A region stays if the process still maps every page of it with the same
// backing; otherwise it is unmapped and made again from what the process
// maps now. Pages no region covers yet (new mappings) get new regions.
std::optional<AttachError> AddressSpaceCopy::follow_layout(const std::vector<ProcessMapping>& mappings) {
  auto kind_of = [](MappingClass c) {
    switch (c) {
      case MappingClass::PrivateFile: return RegionKind::FilePrivate;
      case MappingClass::SharedFile: return RegionKind::Shared;
      case MappingClass::SysvShm: return RegionKind::SysvShm;
      case MappingClass::Vdso: return RegionKind::Vdso;
      default: return RegionKind::Copied;
    }
  };
  for (auto it = regions_.begin(); it != regions_.end();) {
    Region& region = it->second;
    if (region.kind == RegionKind::Heap || region.kind == RegionKind::Stack) {
      ++it;
      continue;
    }
    std::uintptr_t covered_to = region.range.start;
    bool same = true;
    for (const auto& m : mappings) {
      if (!m.range.overlaps(region.range)) continue;
      same = same && m.same_backing(region.source) && (m.cls != MappingClass::Heap || region.source.cls == MappingClass::Heap);
      if (m.range.start <= covered_to) covered_to = std::max<std::uintptr_t>(covered_to, m.range.end);
    }
    if (same && covered_to >= region.range.end) {
      ++it;
      continue;
    }
    unmake(region);
    ++final_.regions_remade;
    it = regions_.erase(it);
  }
  for (const auto& m : mappings) {
    if (m.cls == MappingClass::NotMoved) continue;
    if (m.cls == MappingClass::Refused)
      return AttachError::refused(AttachStep::FinalCopy, Refusal{AttachRefusal::UnsupportedMapping,
                                                                 "process " + std::to_string(pid_) + " maps " + hex_range(m.range) + ": " + m.refusal_reason});
    // Parts of m no region holds.
    std::uintptr_t at = m.range.start;
    while (at < m.range.end) {
      if (Region* r = region_at(at)) {
        if ((r->kind == RegionKind::Heap || r->kind == RegionKind::Stack) && m.cls != MappingClass::Heap && m.cls != MappingClass::Stack)
          return AttachError::failed(AttachStep::FinalCopy, "process " + std::to_string(pid_) + " mapped " + hex_range(m.range) + " in its heap or stack room");
        at = r->range.end;
        continue;
      }
      if (m.cls == MappingClass::Stack) return AttachError::failed(AttachStep::FinalCopy, "the stack grew past its room");
      auto next = regions_.upper_bound(at);
      std::uintptr_t end = m.range.end;
      if (next != regions_.end()) end = std::min<std::uintptr_t>(end, next->first);
      RegionKind kind = m.cls == MappingClass::Heap ? RegionKind::Copied : kind_of(m.cls);
      if (auto e = add_region(m, Range{at, end}, kind)) return e;
      if (auto e = make(regions_.at(at))) return e;
      ++final_.regions_remade;
      at = end;
    }
  }
  return std::nullopt;
}

std::optional<AttachError> AddressSpaceCopy::copy_pass(const std::vector<ProcessMapping>& mappings, bool stopped, CopyStats& stats,
                                                       WriteTracker* tracker) {
  const auto start = Clock::now();
  private_bytes_ = 0;
  for (const auto& m : mappings) {
    switch (m.cls) {
      case MappingClass::PrivateAnonymous:
      case MappingClass::PrivateFile:
      case MappingClass::Heap:
      case MappingClass::Stack: break;
      default: continue;  // shared memory is never copied; the vdso proxy is made already
    }
    for (std::uintptr_t at = m.range.start; at < m.range.end;) {
      Region* region = region_at(at);
      if (region == nullptr) {
        if (stopped) return AttachError::failed(AttachStep::FinalCopy, "no region for " + hex_range(m.range));
        at += kPageSize;  // mapped after the plan: finish() makes its region
        continue;
      }
      Range window = intersect(m.range, region->range);
      if (auto e = copy_window(*region, window, m.prot, stopped, stats, tracker)) return e;
      at = window.end;
    }
  }
  stats.time += std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
  return std::nullopt;
}

// One window (a mapping of the process, within one region): copy the pages
// that are the process's own and not copied yet or written since, drop
// copies of pages the process has given up. Only those pages are looked up
// in pagemap: reading it for a whole large mapping costs the kernel a walk
// of every page table (48 ms per GiB here), and a page copied and not
// written since is known to be right.
std::optional<AttachError> AddressSpaceCopy::copy_window(Region& region, Range window, int prot, bool stopped, CopyStats& stats,
                                                         WriteTracker* tracker) {
  if (region.kind == RegionKind::Shared || region.kind == RegionKind::SysvShm || region.kind == RegionKind::Vdso) return std::nullopt;
  const AttachStep step = stopped ? AttachStep::FinalCopy : AttachStep::PreCopy;
  if (tracker != nullptr && tracker->tracks(window)) {
    // Read and re-armed in one walk: a write after it shows next time.
    auto written = tracker->written(window, true);
    if (!written) return AttachError::failed(step, written.error().message());
    mark_written(window, written.value());
  }
  const std::size_t first = (window.start - region.range.start) / kPageSize;
  std::vector<Range> candidates;
  for (std::size_t i = 0; first + i < region.copied.size() && window.start + i * kPageSize < window.end; ++i) {
    const std::uintptr_t page = window.start + i * kPageSize;
    if (!region.copied[first + i] || region.written[first + i]) append_page(candidates, page);
    else private_bytes_ += kPageSize;  // copied, unchanged: still the process's own
  }
  std::vector<Range> to_copy, to_drop;
  for (const Range& run : candidates) {
    auto entries = pagemap_->read(run);
    if (!entries) return AttachError::failed(step, entries.error().message());
    for (std::size_t i = 0; i < entries->size(); ++i) {
      const PageEntry& e = (*entries)[i];
      const std::uintptr_t page = run.start + i * kPageSize;
      const std::size_t index = (page - region.range.start) / kPageSize;
      const bool populated = e.populated();
      // In a private file mapping, only pages copied on write are the
      // process's; the others are the file's, and our mapping has them too.
      const bool own = region.kind == RegionKind::FilePrivate ? populated && !e.file_or_shared() : populated;
      if (own) private_bytes_ += kPageSize;
      if (region.copy_all_pages ? (!region.copied[index] || populated) : own) append_page(to_copy, page);
      else if (!region.copy_all_pages && region.copied[index]) append_page(to_drop, page);
    }
  }
  if (region.kind == RegionKind::Heap && !to_copy.empty()) {
    // The break may have grown into the room since the plan.
    ::mprotect(pointer(window.start), window.size(), PROT_READ | PROT_WRITE);
  }
  std::vector<Range> failed;
  stats.bytes_copied += (prot & PROT_READ) ? copy_with_vm_readv(pid_, to_copy, failed) : copy_with_proc_mem(mem_.get(), to_copy, failed);
  if (stopped && !failed.empty())
    return AttachError::failed(step, "could not read " + hex_range(failed.front()) + " of process " + std::to_string(pid_));
  for (const Range& run : to_copy) {
    for (std::uintptr_t p = run.start; p < run.end; p += kPageSize) {
      region.copied[(p - region.range.start) / kPageSize] = true;
      region.written[(p - region.range.start) / kPageSize] = false;
    }
  }
  for (const Range& page : failed) region.copied[(page.start - region.range.start) / kPageSize] = false;
  for (const Range& run : to_drop) {
    // Private memory reads as zeros again; a private file page as the file.
    ::madvise(pointer(run.start), run.size(), MADV_DONTNEED);
    for (std::uintptr_t p = run.start; p < run.end; p += kPageSize) {
      region.copied[(p - region.range.start) / kPageSize] = false;
      region.written[(p - region.range.start) / kPageSize] = false;
    }
    stats.pages_dropped += run.size() / kPageSize;
  }
  return std::nullopt;
}

// Each mapping's own protection and madvise(2) flags on our copy. The
// heap's room beyond the break goes back to PROT_NONE and the stack's room
// takes the stack's protection.
void AddressSpaceCopy::apply_protection(const std::vector<ProcessMapping>& mappings) {
  static const struct {
    std::uint32_t flag;
    int advice;
  } kAdvice[] = {{kVmDontCopy, MADV_DONTFORK}, {kVmWipeOnFork, MADV_WIPEONFORK}, {kVmDontDump, MADV_DONTDUMP},
                 {kVmMergeable, MADV_MERGEABLE}, {kVmHugePage, MADV_HUGEPAGE},   {kVmNoHugePage, MADV_NOHUGEPAGE}};
  std::uintptr_t heap_end = 0;
  for (const auto& m : mappings) {
    if (m.cls == MappingClass::NotMoved || m.cls == MappingClass::Refused) continue;
    ::mprotect(pointer(m.range.start), m.range.size(), m.prot);
    for (const auto& a : kAdvice) {
      if (m.flags & a.flag) ::madvise(pointer(m.range.start), m.range.size(), a.advice);
    }
    if (m.flags & kVmLocked) ::mlock2(pointer(m.range.start), m.range.size(), (m.flags & kVmLockOnFault) ? MLOCK_ONFAULT : 0);
    if (m.cls == MappingClass::Heap) heap_end = m.range.end;
    if (m.cls == MappingClass::Stack) {
      if (Region* r = region_at(m.range.start); r && r->range.start < m.range.start)
        ::mprotect(pointer(r->range.start), m.range.start - r->range.start, m.prot);
    }
  }
  for (auto& [start, region] : regions_) {
    if (region.kind != RegionKind::Heap) continue;
    std::uintptr_t tail = std::max<std::uintptr_t>(heap_end, region.range.start);
    if (tail >= region.range.end) continue;
    ::madvise(pointer(tail), region.range.end - tail, MADV_DONTNEED);
    ::mprotect(pointer(tail), region.range.end - tail, PROT_NONE);
    for (std::uintptr_t p = tail; p < region.range.end; p += kPageSize) region.copied[(p - region.range.start) / kPageSize] = false;
  }
}

std::vector<MemberLayout::Entry> AddressSpaceCopy::entries() const {
  std::vector<MemberLayout::Entry> out;
  for (const auto& [start, region] : regions_) {
    MemberLayout::Kind kind = MemberLayout::Kind::Mapping;
    if (region.kind == RegionKind::Heap) kind = MemberLayout::Kind::BrkReservation;
    else if (region.kind == RegionKind::Stack) kind = MemberLayout::Kind::Stack;
    else if (region.kind == RegionKind::SysvShm) kind = MemberLayout::Kind::SysvShm;
    out.push_back(MemberLayout::Entry{kind, region.range});
  }
  return out;
}

Range AddressSpaceCopy::brk_reservation() const {
  for (const auto& [start, region] : regions_) {
    if (region.kind == RegionKind::Heap) return region.range;
  }
  return {};
}

}  // namespace pat::tracer
