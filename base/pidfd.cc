#include "base/pidfd.h"

#include <poll.h>

#include <sys/syscall.h>
#include <unistd.h>

#include <string>

namespace pat {

namespace {
// include/uapi/linux/pidfd.h (Linux 6.9): PIDFD_THREAD = O_EXCL on x86-64
// (include/uapi/asm-generic/fcntl.h), a pidfd for a single thread rather than
// a thread group leader.
constexpr unsigned kPidfdThread = 0200;
}  // namespace


Result<UniqueFd> pidfd_open(pid_t pid) {
  long fd = ::syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) return last_error("pidfd_open " + std::to_string(pid));
  return UniqueFd(static_cast<int>(fd));
}

Result<UniqueFd> pidfd_open_thread(pid_t tid) {
  long fd = ::syscall(SYS_pidfd_open, tid, kPidfdThread);
  if (fd < 0) return last_error("pidfd_open thread " + std::to_string(tid));
  return UniqueFd(static_cast<int>(fd));
}

Status pidfd_signal(int pidfd, int sig) {
  if (::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) != 0) return last_error("pidfd_send_signal");
  return ok_status();
}

bool pidfd_exited(int pidfd) {
  pollfd poll_fd{pidfd, POLLIN, 0};
  return ::poll(&poll_fd, 1, 0) == 1 && (poll_fd.revents & (POLLIN | POLLHUP)) != 0;
}

}  // namespace pat
