// BrkEmulator: one member's private program break. The kernel keeps a single
// break per mm, so members sharing one would move each other's heaps; each
// member's brk(2) is rerouted to the host and answered from here, inside the
// member's own PROT_NONE reservation, with the semantics of mm/mmap.c's brk.
#pragma once

#include <sys/resource.h>

#include <cstdint>

#include "tracer/member_layout.h"

namespace pat::tracer {

class BrkEmulator {
 public:
  // `reservation`: page-aligned, mapped PROT_NONE, owned by the member's
  // layout. `data_limit`: RLIMIT_DATA (soft) in bytes, RLIM_INFINITY for none.
  // `data_size`: the image's writable bytes, which count against it.
  // `initial_break`: where the break is now (0: at the start). Pages up to
  // it must be mapped readable and writable already, the rest PROT_NONE.
  BrkEmulator(Range reservation, rlim_t data_limit, std::uint64_t data_size, std::uintptr_t initial_break = 0);

  // brk(2): moves the break to `requested` and returns the new break, or
  // returns the current one if it cannot (brk(0) and anything below the start
  // ask for the current break). Growing makes pages readable and writable,
  // shrinking gives pages back so a later growth sees zeros, as after the
  // kernel's munmap of the brk area. Asking twice for the same break is
  // harmless, so a reply lost to an interrupted syscall is simply redone.
  std::uintptr_t brk(std::uintptr_t requested);

  std::uintptr_t start() const { return reservation_.start; }
  std::uintptr_t current() const { return current_; }
  const Range& reservation() const { return reservation_; }

 private:
  bool within_data_limit(std::uintptr_t requested) const;

  Range reservation_;
  rlim_t data_limit_;
  std::uint64_t data_size_;
  std::uintptr_t current_;  // the break as the member sees it (not page-aligned)
};

}  // namespace pat::tracer
