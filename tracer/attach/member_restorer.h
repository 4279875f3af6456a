// The attached member's first moments, as member_child.h is a launched
// member's: the host clones itself with CLONE_VM, and the new task takes on
// the state of the process being attached (signal dispositions, fds, cwd,
// umask, limits, personality, timers, pending signals), installs the
// group's seccomp filter, creates one thread per thread of the process, and
// every thread takes on its own per-thread state (name, sigaltstack, robust
// list, rseq, clear_child_tid). Then each thread parks; the host sets its
// registers, FPU state and signal mask under ptrace and lets it go.
//
// Like member_child, this code runs host code on the host's TLS: raw
// syscalls only, nothing allocated, only what the host prepared in the plan.
#pragma once

#include <linux/filter.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <variant>

#include "base/result.h"
#include "base/unique_fd.h"
#include "tracer/kernel_abi.h"
#include "tracer/member_child.h"

namespace pat::tracer {

// The steps of the restorer, in order; a failing step is reported by number.
enum class RestoreStep : int {
  ParentDeathSignal = 1,
  ParentCheck,
  NewSession,
  SignalActions,
  WorkingDirectory,
  Fds,
  CloseFds,
  ResourceLimits,
  Personality,
  IntervalTimers,
  NoNewPrivs,
  Seccomp,
  CloneThread,
  ThreadName,
  AltStack,
  RobustList,
  Rseq,
  ClearChildTid,
  PendingSignals,
  Done,  // the listener is handed over; every thread is parked
};
const char* to_string(RestoreStep step);

// The kernel's stack_t for sigaltstack(2) (include/uapi/asm-generic/signal.h).
struct KernelStack {
  std::uint64_t sp = 0;
  int flags = 0;
  std::uint64_t size = 0;
};

// One thread's own state, and where it reports.
struct ThreadRestorePlan {
  char comm[kernel::kTaskCommLen] = {};
  bool has_altstack = false;
  KernelStack altstack;
  std::uint64_t robust_head = 0, robust_len = 0;  // 0: none registered
  std::uint64_t rseq_address = 0;                 // 0: none registered
  std::uint32_t rseq_length = 0, rseq_signature = 0;
  std::uint64_t clear_child_tid = 0;
  const siginfo_t* pending = nullptr;  // private pending signals, queued again in order
  int pending_count = 0;
  std::uintptr_t stack_top = 0;        // scratch stack (16-byte aligned) for the restorer code

  // Written by the restorer.
  int tid = 0;
  int state = 0;  // futex word: 0 running, 1 parked, -1 failed
  int failed_step = 0, error = 0;
  int park_word = 0;  // never changes: the thread waits on it until the host takes over
};

// A descriptor to install: our copy `from` (above every `to`) becomes `to`.
struct RestoredFd {
  int from = -1, to = -1;
  bool cloexec = false;
};

struct RestorePlan {
  pid_t host_pid = 0;
  int handover_fd = -1;  // above every fd in `fds`
  const RestoredFd* fds = nullptr;  // sorted by `to`
  int fd_count = 0;
  int cwd_fd = -1;
  unsigned umask = 022;
  int rlimit_count = 0;
  struct {
    int resource;
    KernelRlimit limit;
  } rlimits[RLIM_NLIMITS];
  unsigned long personality = 0;
  kernel::KernelSigaction actions[kernel::kNumSignals + 1] = {};  // by signal number
  int timer_count = 0;
  struct {
    int which;
    itimerval value;
  } timers[3];
  const siginfo_t* shared_pending = nullptr;
  int shared_pending_count = 0;
  sock_fprog filter{};
  unsigned seccomp_flags = 0;
  ThreadRestorePlan* threads = nullptr;  // [0] is the leader
  int thread_count = 0;

  HandoverMessage handover;  // prepared by the host before the clone
};

// clone(CLONE_VM | CLONE_PIDFD | SIGCHLD) running the restorer on the
// leader's scratch stack (plan.threads[0].stack_top), all signals blocked.
Result<StartedChild> start_member_restorer(RestorePlan& plan);

// The restorer's report: the seccomp listener once every thread is parked,
// or the step (and thread) that failed.
std::variant<UniqueFd, std::string> await_restorer(int host_end, const RestorePlan& plan, std::chrono::milliseconds timeout);

}  // namespace pat::tracer
