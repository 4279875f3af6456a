// WriteTracker: which pages of another process were written since we last
// looked, so memory can be copied while the process runs and only what
// changed copied again once it is stopped (docs/attach.md "Downtime").
//
// Soft-dirty bits (clear_refs 4, pagemap bit 55) would do, but kernels built
// without CONFIG_MEM_SOFT_DIRTY (this project's machines among them) never
// set them. Asynchronous userfaultfd write protection (Linux 6.7) records
// writes on any kind of memory and PAGEMAP_SCAN reads and re-arms them in
// one atomic walk, so it is used instead. The userfaultfd is created by the
// process itself (one injected syscall: a context belongs to its creator's
// mm), taken over with pidfd_getfd(2) and closed in the process at once, so
// the process's fd table is left as it was; everything else is done from
// here. Destroying the tracker (closing the context) removes every
// protection and the process runs exactly as before.
#pragma once

#include <sys/types.h>

#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "tracer/attach/seized_process.h"
#include "tracer/member_layout.h"

namespace pat::tracer {

class WriteTracker {
 public:
  // `process` is seized (parked); `gadget` a syscall instruction in it.
  static Result<WriteTracker> start(SeizedProcess& process, std::uint64_t gadget, Deadline deadline);
  WriteTracker(WriteTracker&&) = default;
  WriteTracker& operator=(WriteTracker&&) = default;

  // Tracks writes in `range` (one mapping of the process) from now on.
  Status track(Range range);
  // The written parts of `range` since the last call (or since track()),
  // and, with `rearm`, protection again for the next call.
  Result<std::vector<Range>> written(Range range, bool rearm);
  // Whether all of `range` is tracked.
  bool tracks(Range range) const;
  const std::vector<Range>& tracked() const { return tracked_; }

 private:
  WriteTracker() = default;
  pid_t pid_ = 0;
  UniqueFd uffd_;
  UniqueFd pagemap_;
  std::vector<Range> tracked_;
};

}  // namespace pat::tracer
