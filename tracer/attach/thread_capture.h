// One thread of a process being attached, as it stands in its ptrace stop:
// everything the new member thread must take on (attach/member_restorer.h
// for the part the thread sets itself, registers and mask set by ptrace).
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <sys/user.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "tracer/attach/member_restorer.h"
#include "tracer/attach/seized_process.h"

namespace pat::tracer {

struct CapturedThread {
  pid_t tid = 0;
  user_regs_struct regs{};            // PTRACE_GETREGS, fs_base and gs_base included
  std::vector<std::uint8_t> xstate;   // PTRACE_GETREGSET NT_X86_XSTATE: x87, SSE, AVX...
  std::uint64_t sigmask = 0;          // PTRACE_GETSIGMASK (the saved mask inside sigsuspend & co.)
  std::uint64_t rseq_address = 0;     // PTRACE_GET_RSEQ_CONFIGURATION; 0: not registered
  std::uint32_t rseq_length = 0, rseq_signature = 0;
  std::uint64_t robust_head = 0, robust_len = 0;  // get_robust_list(2)
  std::uint64_t clear_child_tid = 0;  // injected prctl(PR_GET_TID_ADDRESS)
  bool has_altstack = false;
  KernelStack altstack;               // injected sigaltstack(NULL, &old)
  std::string comm;                   // /proc/PID/task/TID/comm
  std::vector<siginfo_t> pending;     // PTRACE_PEEKSIGINFO: its own queue, oldest first
};

// Reads thread `tid` (parked by `process`), making the injected calls
// through the `syscall` instruction at `gadget`.
Result<CapturedThread> capture_thread(SeizedProcess& process, pid_t tid, std::uint64_t gadget, Deadline deadline);

// The signals queued for the whole process (PTRACE_PEEKSIGINFO_SHARED, read
// through any of its threads).
Result<std::vector<siginfo_t>> peek_shared_pending(pid_t tid);

// Gives thread `tid` (a parked member thread) the registers, FPU state and
// signal mask of `thread`. Set in a stop inside signal handling, so the
// kernel then treats a syscall the thread was interrupted in as the original
// would have been (restarted, or -EINTR where a restart block is needed).
Status load_thread(pid_t tid, const CapturedThread& thread);

}  // namespace pat::tracer
