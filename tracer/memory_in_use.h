// What of this process's address space (for pat-host: the group's) a set
// of ranges holds: the mappings they lie in, and which of their pages hold
// something. The core writer (core_file.h) asks it about a crashed member's
// ranges. Each question has two answers: an ioctl that costs what the
// ranges hold (PROCMAP_QUERY, Linux 6.11; PAGEMAP_SCAN, Linux 6.7), and the
// text or per-page table any kernel has (/proc/self/maps, /proc/self/pagemap),
// which costs what the whole group or range holds.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tracer/member_layout.h"

namespace pat::tracer {

// One mapping, as a line of /proc/self/maps describes it.
struct Mapping {
  Range range;
  bool read = false, write = false, exec = false, shared = false;
  std::uint64_t offset = 0;
  std::string path;  // empty for anonymous memory; "[vdso]" and such for special ones
};

// Each part of `owned` with the mapping it lies in, in address order, and
// the vdso (which the kernel always dumps).
using MappingPieces = std::vector<std::pair<Mapping, Range>>;
MappingPieces mapping_pieces(const std::vector<Range>& owned);
// The same by one PROCMAP_QUERY per mapping; nothing where the kernel lacks it.
std::optional<MappingPieces> mapping_pieces_by_query(const std::vector<Range>& owned);
// The same from the whole of /proc/self/maps.
MappingPieces mapping_pieces_from_maps(const std::vector<Range>& owned);

// The pages of `range` that hold something: present or swapped out, and
// not the shared zero page. The kernel's dump leaves the others as holes
// (get_dump_page() returns no page for them).
struct PagesInUse {
  std::vector<Range> runs;  // ascending, adjacent runs merged
  bool written = false;     // one of them is anonymous: a private copy, for a file mapping no longer the file's
};
PagesInUse pages_in_use(int pagemap, Range range);
// By PAGEMAP_SCAN; nothing where the kernel lacks it.
std::optional<PagesInUse> scan_pages(int pagemap, Range range);
// From /proc/self/pagemap (`pagemap` open on it), which cannot tell the zero
// page without CAP_SYS_ADMIN: pages only ever read count as in use.
PagesInUse read_page_flags(int pagemap, Range range);

}  // namespace pat::tracer
