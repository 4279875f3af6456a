// Reading and writing another task's memory through process_vm_readv(2) and
// process_vm_writev(2) only. Members share our address space, but their
// pointers are still never dereferenced here: a member may unmap the memory
// at any moment, and a fault in the host would take the whole group down.
// These calls fail with EFAULT instead.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace pat::tracer {

// An address in another task's view of memory, from a syscall argument.
// Its own type so it is never mistaken for (or used as) a local pointer.
struct RemoteAddress {
  std::uint64_t value = 0;
  explicit operator bool() const { return value != 0; }
  RemoteAddress operator+(std::uint64_t n) const { return RemoteAddress{value + n}; }
};

// Reads a NUL-terminated string of at most `max` bytes (without the NUL).
// ENAMETOOLONG if no NUL comes within `max`, EFAULT if unreadable.
Result<std::string> read_remote_string(pid_t pid, RemoteAddress at, std::size_t max);

// Writes all of `bytes`; EFAULT if any part is not writable.
Status write_remote(pid_t pid, RemoteAddress at, std::string_view bytes);

}  // namespace pat::tracer
