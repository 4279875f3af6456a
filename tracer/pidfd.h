// pidfd helpers. Debian 12's glibc 2.36 declares pidfd_open and
// pidfd_send_signal in <sys/pidfd.h> without extern "C" (fixed in 2.37), so
// C++ cannot link against them; these go through syscall(2).
#pragma once

#include <sys/types.h>

#include "base/result.h"
#include "base/unique_fd.h"

namespace pat::tracer {

Result<UniqueFd> pidfd_open(pid_t pid);

// pidfd_send_signal(2) with no siginfo: like kill(2), without pid reuse races.
Status pidfd_signal(int pidfd, int sig);

}  // namespace pat::tracer
