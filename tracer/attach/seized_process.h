// SeizedProcess: every thread of a process held in a ptrace stop by us, the
// way attach needs it: PTRACE_SEIZE (no signal sent, nothing visible to the
// process), PTRACE_INTERRUPT of each thread, and new threads followed
// (PTRACE_O_TRACECLONE) until the whole thread group is parked. Destroying
// it (or detach_all()) lets every thread go on exactly where it was.
//
// PTRACE_O_EXITKILL is NOT set while a thread is merely parked: if the host
// dies then, the kernel detaches us and the process runs on untouched. It is
// set on a thread while its registers or signal mask are not its own
// (InjectedSyscalls), and on the leader from the switch on.
#pragma once

#include <sys/types.h>

#include <cerrno>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/result.h"
#include "tracer/attach/tracee_wait.h"

namespace pat::tracer {

class SeizedProcess {
 public:
  // How seize() and the waits report the process doing something that ends
  // the attach: a job-control stop, and an execve of its own.
  static constexpr int kStoppedByJobControl = EBUSY;
  static constexpr int kExecuted = ECANCELED;

  // ptrace(2) options for every thread: follow new threads, tell syscall
  // stops apart, report exec.
  static constexpr long kOptions = 0x1 /*TRACESYSGOOD*/ | 0x8 /*TRACECLONE*/ | 0x10 /*TRACEEXEC*/;

  // Seizes and parks every thread of `pid`. Fails (and leaves the process as
  // it was) if it exits, execs or is stopped by job control meanwhile, or if
  // a thread does not stop by `deadline` (e.g. uninterruptible sleep).
  static Result<SeizedProcess> seize(pid_t pid, Deadline deadline);

  SeizedProcess(SeizedProcess&&) noexcept;
  SeizedProcess& operator=(SeizedProcess&&) = delete;
  SeizedProcess(const SeizedProcess&) = delete;
  ~SeizedProcess();

  pid_t pid() const { return pid_; }
  // The leader first, then the others in ascending order.
  std::vector<pid_t> threads() const;

  // Resumes a stopped thread with PTRACE_CONT, PTRACE_SYSCALL or
  // PTRACE_INTERRUPT+PTRACE_CONT and waits for the stop wanted, handling
  // what may come first (see wait_until). `resume_request` is PTRACE_CONT or
  // PTRACE_SYSCALL.
  Result<TraceStop> resume_until(pid_t tid, int resume_request, TraceStop::Kind wanted, Deadline deadline);
  // Waits (after a resume already made) for a stop of kind `wanted`. A
  // SIGSTOP that arrives meanwhile is held back and remembered (it cannot be
  // blocked); any other signal delivery is passed on to the thread.
  Result<TraceStop> wait_until(pid_t tid, TraceStop::Kind wanted, Deadline deadline);
  // For the switch's execve in `tid`: waits for PTRACE_EVENT_EXEC (success)
  // or the syscall's exit stop (failure), reaping the other threads as
  // de_thread() kills them.
  Result<TraceStop> wait_until_exec_or_syscall(pid_t tid, Deadline deadline);

  Status set_exit_kill(pid_t tid, bool on);

  // A SIGSTOP was held back during our work: whoever ends the attach must
  // send it again (to the process, or after the switch to the member).
  bool stop_held_back() const { return stop_held_back_; }

  // The thread is gone (a non-leader after the switch's execve).
  void forget_thread(pid_t tid);
  // Lets every thread go (PTRACE_DETACH), parked or not; sends a held-back
  // SIGSTOP again. Idempotent.
  void detach_all();
  // We keep tracing the process from here on under another owner (the stub's
  // supervisor): nothing is detached at destruction.
  void release() { threads_.clear(); }

 private:
  explicit SeizedProcess(pid_t pid) : pid_(pid) {}
  Status seize_thread(pid_t tid);
  Status park_all(Deadline deadline);
  template <class Wanted>
  Result<std::optional<TraceStop>> take(pid_t tid, const WaitStatus& status, Wanted is_wanted, TraceStop::Kind wanted_kind);

  pid_t pid_;
  std::set<pid_t> threads_;
  bool stop_held_back_ = false;
};

// ptrace(2) as one call with the request's name in the error.
Status ptrace_request(int request, pid_t tid, std::uintptr_t addr, std::uintptr_t data, const char* name);

}  // namespace pat::tracer
