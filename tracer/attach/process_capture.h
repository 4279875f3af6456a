// The process-wide state of a process being attached, read while every
// thread is stopped: what /proc and prlimit(2) show, and what only the
// process itself can say (signal dispositions, interval timers, its break),
// asked through its main thread with injected syscalls.
#pragma once

#include <signal.h>
#include <sys/time.h>
#include <sys/types.h>

#include <array>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "tracer/attach/fd_transfer.h"
#include "tracer/attach/proc_status.h"
#include "tracer/attach/seized_process.h"
#include "tracer/kernel_abi.h"
#include "tracer/member_child.h"

namespace pat::tracer {

struct CapturedProcess {
  std::array<kernel::KernelSigaction, kernel::kNumSignals + 1> actions{};  // by signal number; SIG_DFL where not asked
  std::vector<std::pair<int, itimerval>> timers;   // armed interval timers (ITIMER_REAL, _VIRTUAL, _PROF)
  std::uint64_t brk = 0;                            // the current break (brk(0))
  unsigned umask = 022;
  unsigned long personality = 0;
  std::vector<std::pair<int, KernelRlimit>> rlimits;  // every RLIMIT_*, hard limits clamped to ours
  std::vector<siginfo_t> shared_pending;
  UniqueFd cwd;                                     // O_PATH of /proc/PID/cwd
  std::vector<TransferredFd> fds;
  std::string exe;                                  // /proc/PID/exe
  std::vector<std::string> argv;                    // /proc/PID/cmdline, for the stub
  std::string comm;
};

// `status`: the process's /proc status, read while stopped.
Result<CapturedProcess> capture_process(SeizedProcess& process, int pidfd, std::uint64_t gadget, const ProcStatus& status,
                                        Deadline deadline);

}  // namespace pat::tracer
