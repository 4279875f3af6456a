#include "tracer/brk_emulator.h"

#include <sys/mman.h>

#include "tracer/kernel_abi.h"

namespace pat::tracer {

using kernel::page_up;

BrkEmulator::BrkEmulator(Range reservation, rlim_t data_limit, std::uint64_t data_size, std::uintptr_t initial_break)
    : reservation_(reservation),
      data_limit_(data_limit),
      data_size_(data_size),
      current_(initial_break != 0 ? initial_break : reservation.start) {}

// check_data_rlimit() (include/linux/mm.h): the heap plus the image's data
// may not exceed RLIMIT_DATA.
bool BrkEmulator::within_data_limit(std::uintptr_t requested) const {
  if (data_limit_ == RLIM_INFINITY) return true;
  return (requested - reservation_.start) + data_size_ <= data_limit_;
}

// Mirrors SYSCALL_DEFINE1(brk) in mm/mmap.c: the break itself has byte
// granularity, the memory behind it page granularity; failure returns the
// old break, never an error.
std::uintptr_t BrkEmulator::brk(std::uintptr_t requested) {
  if (requested < reservation_.start) return current_;  // includes brk(0)
  if (requested > reservation_.end) return current_;    // the next mapping is in the way
  if (!within_data_limit(requested)) return current_;
  std::uintptr_t old_top = page_up(current_);
  std::uintptr_t new_top = page_up(requested);
  if (new_top > old_top) {
    if (::mprotect(reinterpret_cast<void*>(old_top), new_top - old_top, PROT_READ | PROT_WRITE) != 0) return current_;
  } else if (new_top < old_top) {
    // Shrinking always succeeds in the kernel. Drop the pages (the next
    // growth must read zeros) and close the range again. madvise+mprotect
    // rather than mmap(MAP_FIXED): they fail on a hole instead of mapping
    // over whatever a confused member put there.
    void* from = reinterpret_cast<void*>(new_top);
    ::madvise(from, old_top - new_top, MADV_DONTNEED);
    ::mprotect(from, old_top - new_top, PROT_NONE);
  }
  current_ = requested;
  return current_;
}

}  // namespace pat::tracer
