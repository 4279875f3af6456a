#include "tracer/attach/member_restorer.h"

#include <asm/unistd.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "tracer/clone_vm.h"
#include "tracer/raw_syscall.h"

namespace pat::tracer {
namespace {

// ---- the new member's side: raw syscalls only, nothing allocated ----

// A thread of the process being attached, in the member's thread group
// (what glibc's pthread_create asks for, less the TLS and tid pointers,
// which the host sets afterwards).
constexpr unsigned long kThreadFlags =
    CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;

PAT_CHILD_CODE void futex_wait(int* word, int value) {
  raw::syscall(__NR_futex, word, FUTEX_WAIT_PRIVATE, value, nullptr);
}
PAT_CHILD_CODE void futex_wake(int* word) { raw::syscall(__NR_futex, word, FUTEX_WAKE_PRIVATE, 1); }

// Waits, with every signal blocked, until the host takes the thread over
// with PTRACE_INTERRUPT and gives it its registers.
[[noreturn]] PAT_CHILD_CODE void park(ThreadRestorePlan* t) {
  for (;;) futex_wait(&t->park_word, 0);
}

PAT_CHILD_CODE void thread_failed(ThreadRestorePlan* t, RestoreStep step, long ret) {
  t->failed_step = static_cast<int>(step);
  t->error = static_cast<int>(-ret);
  __atomic_store_n(&t->state, -1, __ATOMIC_RELEASE);
  futex_wake(&t->state);
}

// The per-thread state, in any thread (the leader included). Returns false
// after reporting a failure.
PAT_CHILD_CODE bool restore_thread_state(ThreadRestorePlan* t) {
  long ret = raw::syscall(__NR_prctl, PR_SET_NAME, t->comm, 0, 0, 0);
  if (ret < 0) return thread_failed(t, RestoreStep::ThreadName, ret), false;
  if (t->has_altstack) {
    ret = raw::syscall(__NR_sigaltstack, &t->altstack, nullptr);
    if (ret < 0) return thread_failed(t, RestoreStep::AltStack, ret), false;
  }
  if (t->robust_head != 0) {
    ret = raw::syscall(__NR_set_robust_list, t->robust_head, t->robust_len);
    if (ret < 0) return thread_failed(t, RestoreStep::RobustList, ret), false;
  }
  if (t->rseq_address != 0) {
    ret = raw::syscall(__NR_rseq, t->rseq_address, t->rseq_length, 0, t->rseq_signature);
    if (ret < 0) return thread_failed(t, RestoreStep::Rseq, ret), false;
  }
  // Returns our tid. glibc points clear_child_tid at the thread's TID field,
  // which pthread_join waits on.
  t->tid = static_cast<int>(raw::syscall(__NR_set_tid_address, t->clear_child_tid));
  return true;
}

extern "C" [[noreturn]] __attribute__((no_stack_protector, no_sanitize("address", "undefined"), noinline, used))
void pat_restored_thread_main(void* arg) {
  auto* t = static_cast<ThreadRestorePlan*>(arg);
  if (restore_thread_state(t)) {
    __atomic_store_n(&t->state, 1, __ATOMIC_RELEASE);
    futex_wake(&t->state);
  }
  park(t);
}

[[noreturn]] PAT_CHILD_CODE void restorer_fail(RestorePlan* plan, RestoreStep step, long ret) {
  plan->handover.send_failure(plan->handover_fd, static_cast<int>(step), ret);
  // Threads already made die with us: exit_group ends the thread group.
  raw::syscall(__NR_exit_group, 127);
  __builtin_unreachable();
}

PAT_CHILD_CODE void check(RestorePlan* plan, RestoreStep step, long ret) {
  if (ret < 0) restorer_fail(plan, step, ret);
}

PAT_CHILD_CODE long restore_signal_actions(const RestorePlan* plan) {
  for (int sig = 1; sig <= kernel::kNumSignals; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    long ret = raw::syscall(__NR_rt_sigaction, sig, &plan->actions[sig], nullptr, kernel::kSigsetSize);
    // 32 and 33 belong to glibc (its cancellation and setxid signals): the
    // kernel accepts them, but keep going if some libc's kernel refuses one.
    if (ret < 0 && ret != -EINVAL) return ret;
  }
  return 0;
}

PAT_CHILD_CODE long install_fds(const RestorePlan* plan) {
  for (int i = 0; i < plan->fd_count; ++i) {
    const RestoredFd& fd = plan->fds[i];
    long ret = raw::syscall(__NR_dup3, fd.from, fd.to, fd.cloexec ? O_CLOEXEC : 0);
    if (ret < 0) return ret;
  }
  return 0;
}

// Every fd that is not one of the process's: the host's below the highest
// of them (one by one), and everything above (our copies, the cwd fd, the
// host's) but the hand-over socket.
PAT_CHILD_CODE long close_other_fds(const RestorePlan* plan) {
  int next = 0;
  for (int i = 0; i < plan->fd_count; ++i) {
    for (int n = next; n < plan->fds[i].to; ++n) raw::syscall(__NR_close, n);
    next = plan->fds[i].to + 1;
  }
  unsigned handover = static_cast<unsigned>(plan->handover_fd);
  if (handover > static_cast<unsigned>(next)) {
    long ret = raw::syscall(__NR_close_range, static_cast<unsigned>(next), handover - 1, 0u);
    if (ret < 0) return ret;
  }
  return raw::syscall(__NR_close_range, handover + 1, ~0u, 0u);
}

PAT_CHILD_CODE long apply_rlimits(const RestorePlan* plan) {
  for (int i = 0; i < plan->rlimit_count; ++i) {
    long ret = raw::syscall(__NR_prlimit64, 0, plan->rlimits[i].resource, &plan->rlimits[i].limit, nullptr);
    if (ret < 0) return ret;
  }
  return 0;
}

PAT_CHILD_CODE long apply_timers(const RestorePlan* plan) {
  for (int i = 0; i < plan->timer_count; ++i) {
    long ret = raw::syscall(__NR_setitimer, plan->timers[i].which, &plan->timers[i].value, nullptr);
    if (ret < 0) return ret;
  }
  return 0;
}

// rt_sigqueueinfo(2) lets a task queue any siginfo to its own thread group
// only when the caller's TID is the thread group id (kernel/signal.c
// do_rt_tgsigqueueinfo): the leader queues them all, its threads' too.
PAT_CHILD_CODE long queue_pending_signals(const RestorePlan* plan, int tgid) {
  for (int i = 0; i < plan->shared_pending_count; ++i) {
    const siginfo_t* info = &plan->shared_pending[i];
    long ret = raw::syscall(__NR_rt_sigqueueinfo, tgid, info->si_signo, info);
    if (ret < 0) return ret;
  }
  for (int t = 0; t < plan->thread_count; ++t) {
    const ThreadRestorePlan& thread = plan->threads[t];
    for (int i = 0; i < thread.pending_count; ++i) {
      const siginfo_t* info = &thread.pending[i];
      long ret = raw::syscall(__NR_rt_tgsigqueueinfo, tgid, thread.tid, info->si_signo, info);
      if (ret < 0) return ret;
    }
  }
  return 0;
}

// The restorer, top to bottom. The order matters where noted.
extern "C" [[noreturn]] __attribute__((no_stack_protector, no_sanitize("address", "undefined"), noinline, used))
void pat_member_restorer_main(void* arg) {
  auto* plan = static_cast<RestorePlan*>(arg);
  ThreadRestorePlan* leader = &plan->threads[0];

  // 1. Die with the host (a member without its host would get ENOSYS from
  //    every rerouted syscall); armed, then checked, as member_child does.
  check(plan, RestoreStep::ParentDeathSignal, raw::syscall(__NR_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0));
  if (raw::syscall(__NR_getppid) != plan->host_pid) restorer_fail(plan, RestoreStep::ParentCheck, -ESRCH);
  // 2. Its own session, as every member: the original session, process
  //    group and terminal stay with the stub, which keeps the original PID.
  check(plan, RestoreStep::NewSession, raw::syscall(__NR_setsid));
  // 3. The process's signal dispositions. Every signal has been blocked
  //    since the clone, so no handler can run before the program resumes.
  check(plan, RestoreStep::SignalActions, restore_signal_actions(plan));
  // 4. cwd before the fds: the cwd fd is one of the copies closed in 5.
  check(plan, RestoreStep::WorkingDirectory, raw::syscall(__NR_fchdir, plan->cwd_fd));
  // 5. The process's fds at their numbers, with their close-on-exec flags
  //    (our copies are all above them, so no dup3 overwrites a copy still
  //    needed), then nothing else but the hand-over socket.
  check(plan, RestoreStep::Fds, install_fds(plan));
  check(plan, RestoreStep::CloseFds, close_other_fds(plan));
  raw::syscall(__NR_umask, plan->umask);  // cannot fail
  // 6. Limits (never above the host's hard limits: no privilege needed),
  //    personality, interval timers (they count from here).
  check(plan, RestoreStep::ResourceLimits, apply_rlimits(plan));
  check(plan, RestoreStep::Personality, raw::syscall(__NR_personality, plan->personality));
  check(plan, RestoreStep::IntervalTimers, apply_timers(plan));
  // 7. NO_NEW_PRIVS and the group's filter, as for a launched member; after
  //    the fds, so the listener takes a number the process does not use,
  //    and before the threads, which inherit the filter.
  check(plan, RestoreStep::NoNewPrivs, raw::syscall(__NR_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
  long listener = raw::syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, plan->seccomp_flags, &plan->filter);
  check(plan, RestoreStep::Seccomp, listener);
  // 8. The other threads, each restoring its own state on its scratch stack.
  for (int i = 1; i < plan->thread_count; ++i) {
    ThreadRestorePlan* t = &plan->threads[i];
    long tid = pat_tracer_clone_vm(kThreadFlags, reinterpret_cast<void*>(t->stack_top), nullptr, pat_restored_thread_main, t);
    check(plan, RestoreStep::CloneThread, tid);
  }
  // 9. The leader's own per-thread state.
  if (!restore_thread_state(leader)) restorer_fail(plan, static_cast<RestoreStep>(leader->failed_step), -leader->error);
  // 10. Wait for every thread; then queue the pending signals again, now
  //     that every TID is known (all blocked: they wait for the program).
  for (int i = 1; i < plan->thread_count; ++i) {
    ThreadRestorePlan* t = &plan->threads[i];
    int state;
    while ((state = __atomic_load_n(&t->state, __ATOMIC_ACQUIRE)) == 0) futex_wait(&t->state, 0);
    if (state < 0) restorer_fail(plan, static_cast<RestoreStep>(t->failed_step), -t->error);
  }
  check(plan, RestoreStep::PendingSignals, queue_pending_signals(plan, leader->tid));
  // 11. Hand the listener over and park like the others.
  const int listener_fd = static_cast<int>(listener);
  const int handover_fd = plan->handover_fd;
  long sent = plan->handover.send_done(handover_fd, static_cast<int>(RestoreStep::Done), listener_fd);
  if (sent < 0) raw::syscall(__NR_exit_group, 127);
  raw::syscall(__NR_close, listener_fd);
  raw::syscall(__NR_close, handover_fd);
  __atomic_store_n(&leader->state, 1, __ATOMIC_RELEASE);
  park(leader);
}

const char* step_name(int step) { return to_string(static_cast<RestoreStep>(step)); }

}  // namespace

const char* to_string(RestoreStep step) {
  switch (step) {
    case RestoreStep::ParentDeathSignal: return "prctl(PR_SET_PDEATHSIG)";
    case RestoreStep::ParentCheck: return "parent check (host died during attach)";
    case RestoreStep::NewSession: return "setsid";
    case RestoreStep::SignalActions: return "rt_sigaction";
    case RestoreStep::WorkingDirectory: return "fchdir(cwd)";
    case RestoreStep::Fds: return "dup3(fds)";
    case RestoreStep::CloseFds: return "close_range";
    case RestoreStep::ResourceLimits: return "prlimit";
    case RestoreStep::Personality: return "personality";
    case RestoreStep::IntervalTimers: return "setitimer";
    case RestoreStep::NoNewPrivs: return "prctl(PR_SET_NO_NEW_PRIVS)";
    case RestoreStep::Seccomp: return "seccomp(SECCOMP_SET_MODE_FILTER)";
    case RestoreStep::CloneThread: return "clone(thread)";
    case RestoreStep::ThreadName: return "prctl(PR_SET_NAME)";
    case RestoreStep::AltStack: return "sigaltstack";
    case RestoreStep::RobustList: return "set_robust_list";
    case RestoreStep::Rseq: return "rseq";
    case RestoreStep::ClearChildTid: return "set_tid_address";
    case RestoreStep::PendingSignals: return "rt_sigqueueinfo";
    case RestoreStep::Done: return "done";
  }
  return "unknown step";
}

Result<StartedChild> start_member_restorer(RestorePlan& plan) {
  int pidfd = -1;
  long ret;
  {
    AllSignalsBlocked blocked;
    ret = pat_tracer_clone_vm(CLONE_VM | CLONE_PIDFD | SIGCHLD, reinterpret_cast<void*>(plan.threads[0].stack_top), &pidfd,
                              pat_member_restorer_main, &plan);
  }
  if (ret < 0) return SysError{static_cast<int>(-ret), "clone(CLONE_VM|CLONE_PIDFD)"};
  return StartedChild{static_cast<pid_t>(ret), UniqueFd(pidfd)};
}

std::variant<UniqueFd, std::string> await_restorer(int host_end, const RestorePlan& plan, std::chrono::milliseconds timeout) {
  auto result = await_child_report(host_end, timeout, static_cast<int>(RestoreStep::Done));
  auto* failure = std::get_if<ChildReportFailure>(&result);
  if (failure == nullptr) return std::move(std::get<UniqueFd>(result));
  std::string reason = failure->step == 0 ? failure->reason
                                          : std::string("member set-up step ") + step_name(failure->step) +
                                                " failed: " + std::strerror(failure->error);
  for (int i = 0; i < plan.thread_count; ++i) {
    if (plan.threads[i].state < 0) return reason + " (thread " + std::to_string(i) + ")";
  }
  return reason;
}

}  // namespace pat::tracer
