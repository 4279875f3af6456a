// AddressSpaceCopy: the mappings of a process being attached, made again at
// the same addresses in our address space (the group's), and its memory
// copied into them. Private memory is copied page by page (only pages that
// hold data: /proc/PID/pagemap), file mappings are mapped from the same
// objects (only the pages the process wrote are copied), shared mappings are
// mapped shared from the same object and never copied, and [vdso] becomes a
// proxy to the group's vdso (vdso_proxy.h). [heap] becomes a range the
// member's brk is emulated in, with room to grow; [stack] gets room to grow
// too, as a fixed mapping (launched members' stacks are fixed as well).
//
// The copy is made while the process runs (with a WriteTracker watching its
// writes, in passes until little is left), and finished while it is
// stopped: new or different mappings in full, and pages written since.
// Everything made is unmapped again at destruction unless commit() hands it
// to the member.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "base/unique_fd.h"
#include "tracer/attach/attach_error.h"
#include "tracer/attach/mapped_objects.h"
#include "tracer/attach/page_map.h"
#include "tracer/attach/proc_status.h"
#include "tracer/attach/process_maps.h"
#include "tracer/attach/write_tracker.h"
#include "tracer/member_layout.h"

namespace pat::tracer {

struct CopyStats {
  std::size_t bytes_copied = 0;
  std::size_t pages_dropped = 0;  // copied earlier, then discarded by the process
  std::size_t regions_remade = 0;
  std::chrono::microseconds time{0};
};

class AddressSpaceCopy {
 public:
  // Which member owns memory in a range of ours, for AddressConflict
  // messages: a pid, 0 for the host itself, nullopt when nobody does.
  using OwnerOf = std::function<std::optional<pid_t>(Range)>;

  AddressSpaceCopy(pid_t pid, MappedObjects& objects, OwnerOf owner_of);
  AddressSpaceCopy(const AddressSpaceCopy&) = delete;
  AddressSpaceCopy& operator=(const AddressSpaceCopy&) = delete;
  ~AddressSpaceCopy();

  // Plans one region per mapping (with room for the heap and the stack to
  // grow: `brk_room` and `stack_size` bytes at most, less if something is in
  // the way) and maps them all, nothing copied yet. Refuses a mapping that
  // cannot move, and a range the group already uses (AddressConflict).
  std::optional<AttachError> map_layout(const std::vector<ProcessMapping>& mappings, const ProcStatLayout& stat,
                                        std::size_t stack_size, std::size_t brk_room);

  // While the process runs: tracks its writes with `tracker`, copies every
  // page that holds data, then, in up to `max_passes` more passes, the pages
  // written meanwhile, until a pass copies less than `enough` bytes. Pages
  // that vanish meanwhile are left for finish().
  // `known`: the mappings as smaps showed them (their flags are reused).
  std::optional<AttachError> precopy(WriteTracker& tracker, const std::vector<ProcessMapping>& known, int max_passes,
                                     std::size_t enough);
  // Stopped, before the tracker goes: which pages were written since the
  // last pass (finish() copies them).
  std::optional<AttachError> collect_written(WriteTracker& tracker);

  // With every thread stopped: follows the layout to `mappings` (regions
  // made, dropped or remade where the process mapped, unmapped or remapped
  // since), copies what was written since the pre-copy (all of it if there
  // was none), drops what the process discarded, and sets each mapping's
  // protection and madvise flags.
  std::optional<AttachError> finish(const std::vector<ProcessMapping>& mappings);

  const CopyStats& precopy_stats() const { return precopy_; }
  const CopyStats& final_stats() const { return final_; }
  // Bytes of populated private pages seen at the last pass (what a plain
  // copy of the process's private memory would move).
  std::size_t private_bytes() const { return private_bytes_; }

  // What the member will own (ranges in address order) and the brk
  // reservation (empty if the process has no break).
  std::vector<MemberLayout::Entry> entries() const;
  Range brk_reservation() const;
  // The member owns everything from now on: nothing is unmapped at destruction.
  void commit() { committed_ = true; }

 private:
  enum class RegionKind { Copied, FilePrivate, Shared, SysvShm, Vdso, Heap, Stack };
  struct Region {
    Range range;
    RegionKind kind;
    ProcessMapping source;       // the mapping it was made for (backing, as at that time)
    bool copy_all_pages = false; // a private file mapping whose object was not found
    std::vector<bool> copied;    // per page of range: holds a copy of the process's page
    std::vector<bool> written;   // per page: written since it was copied (empty: not tracked, all may be)
  };

  std::optional<AttachError> add_region(const ProcessMapping& m, Range range, RegionKind kind);
  std::optional<AttachError> plan_heap(const ProcessMapping* heap, const std::vector<ProcessMapping>& mappings,
                                       std::uint64_t start_brk, std::size_t room);
  std::optional<AttachError> plan_stack(const ProcessMapping& stack, const std::vector<ProcessMapping>& mappings, std::size_t size);
  std::optional<AttachError> make(Region& region);
  std::optional<AttachError> conflict(Range range, const std::string& what) const;
  void unmake(const Region& region);

  std::optional<AttachError> follow_layout(const std::vector<ProcessMapping>& mappings);
  std::optional<AttachError> copy_pass(const std::vector<ProcessMapping>& mappings, bool stopped, CopyStats& stats,
                                       WriteTracker* tracker = nullptr);
  std::optional<AttachError> copy_window(Region& region, Range window, int prot, bool stopped, CopyStats& stats,
                                         WriteTracker* tracker);
  void apply_protection(const std::vector<ProcessMapping>& mappings);
  void mark_written(Range window, const std::vector<Range>& written);
  Region* region_at(std::uintptr_t address);

  pid_t pid_;
  MappedObjects& objects_;
  OwnerOf owner_of_;
  UniqueFd mem_;  // /proc/PID/mem: reads what the process cannot read itself (PROT_NONE pages)
  std::optional<PageMap> pagemap_;
  std::vector<ProcessMapping> host_mappings_;  // our own, when the plan was made
  std::map<std::uintptr_t, Region> regions_;
  std::uint64_t start_brk_ = 0;
  std::size_t private_bytes_ = 0;
  bool committed_ = false;
  CopyStats precopy_, final_;
};

}  // namespace pat::tracer
