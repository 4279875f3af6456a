#include "tracer/remote_memory.h"

#include <sys/uio.h>

#include <cerrno>
#include <cstring>

#include "tracer/kernel_abi.h"

namespace pat::tracer {

Result<std::string> read_remote_string(pid_t pid, RemoteAddress at, std::size_t max) {
  std::string out;
  char chunk[kernel::kPageSize];
  // One page at a time: process_vm_readv stops at the first unreadable page,
  // and a string may end just before one.
  while (out.size() <= max) {
    std::size_t want = kernel::kPageSize - (at.value % kernel::kPageSize);
    iovec local{chunk, want};
    iovec remote{reinterpret_cast<void*>(at.value), want};
    ssize_t n = ::process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (n <= 0) return SysError{n == 0 ? EFAULT : errno, "process_vm_readv " + std::to_string(pid)};
    const void* nul = std::memchr(chunk, '\0', static_cast<std::size_t>(n));
    if (nul != nullptr) {
      out.append(chunk, static_cast<const char*>(nul) - chunk);
      if (out.size() > max) break;
      return out;
    }
    out.append(chunk, static_cast<std::size_t>(n));
    at = at + static_cast<std::uint64_t>(n);
  }
  return SysError{ENAMETOOLONG, "string in " + std::to_string(pid)};
}

Status write_remote(pid_t pid, RemoteAddress at, std::string_view bytes) {
  if (bytes.empty()) return ok_status();
  iovec local{const_cast<char*>(bytes.data()), bytes.size()};
  iovec remote{reinterpret_cast<void*>(at.value), bytes.size()};
  ssize_t n = ::process_vm_writev(pid, &local, 1, &remote, 1, 0);
  if (n < 0) return last_error("process_vm_writev " + std::to_string(pid));
  if (static_cast<std::size_t>(n) != bytes.size()) return SysError{EFAULT, "process_vm_writev " + std::to_string(pid)};
  return ok_status();
}

}  // namespace pat::tracer
