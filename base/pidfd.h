// pidfd helpers. Debian 12's glibc 2.36 declares pidfd_open and
// pidfd_send_signal in <sys/pidfd.h> without extern "C" (fixed in 2.37), so
// C++ cannot link against them; these go through syscall(2).
#pragma once

#include <sys/types.h>

#include "base/result.h"
#include "base/unique_fd.h"

namespace pat {

Result<UniqueFd> pidfd_open(pid_t pid);

// A pidfd for any task, thread or process (PIDFD_THREAD, Linux 6.9): what
// pidfd_getfd(2) needs to reach the descriptor table of the task that made a
// syscall.
Result<UniqueFd> pidfd_open_thread(pid_t tid);

// pidfd_send_signal(2) with no siginfo: like kill(2), without pid reuse races.
Status pidfd_signal(int pidfd, int sig);

// Whether the process has exited: its pidfd polls readable (pidfd_open(2)).
// Unlike signal 0, this needs no permission over the process (CAP_KILL for
// another user's).
bool pidfd_exited(int pidfd);

}  // namespace pat
