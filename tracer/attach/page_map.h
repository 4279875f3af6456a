// Which pages of another process hold data: /proc/PID/pagemap
// (Documentation/admin-guide/mm/pagemap.rst). Without CAP_SYS_ADMIN the page
// frame numbers read as zero; the flag bits used here are always there.
// (Which pages changed: write_tracker.h.)
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "tracer/member_layout.h"

namespace pat::tracer {

// One pagemap entry (64 bits per page).
struct PageEntry {
  std::uint64_t raw = 0;
  // Bit 63: present in RAM. Bit 62: swapped out. Both mean the page holds
  // data that a fresh mapping would not have.
  bool present() const { return raw >> 63 & 1; }
  bool swapped() const { return raw >> 62 & 1; }
  bool populated() const { return present() || swapped(); }
  // Bit 61: a page of a file or shared anonymous memory. In a private file
  // mapping a present page without it is the process's own (copied on write).
  bool file_or_shared() const { return raw >> 61 & 1; }
};

class PageMap {
 public:
  static Result<PageMap> open(pid_t pid);

  // The entries of every page in `range` (page-aligned), in order.
  Result<std::vector<PageEntry>> read(Range range) const;

 private:
  pid_t pid_ = 0;
  UniqueFd pagemap_;
};

// Runs of consecutive pages in `range` that satisfy `wanted`, given the
// range's entries.
template <class Pred>
std::vector<Range> page_runs(Range range, const std::vector<PageEntry>& entries, Pred wanted) {
  std::vector<Range> runs;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (!wanted(entries[i], i)) continue;
    std::uintptr_t page = range.start + i * 4096;
    if (!runs.empty() && runs.back().end == page) runs.back().end += 4096;
    else runs.push_back(Range{page, page + 4096});
  }
  return runs;
}

}  // namespace pat::tracer
