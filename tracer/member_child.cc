#include "tracer/member_child.h"

#include <asm/prctl.h>
#include <asm/unistd.h>
#include <linux/close_range.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "tracer/clone_vm.h"
#include "tracer/raw_syscall.h"

#define PAT_STR2(x) #x
#define PAT_STR(x) PAT_STR2(x)

// pat_tracer_clone_vm (declared in clone_vm.h), written out because the
// child must not return through the caller's frame (it is on another stack)
// and must not touch errno. x86-64 clone argument order (kernel/fork.c, no
// CLONE_BACKWARDS): flags, newsp, parent_tid, child_tid, tls. With CLONE_PIDFD
// the kernel stores the pidfd through parent_tid. Returns the pid or -errno
// in the parent; in the child, fn must not return (ud2 if it does).
asm(R"(
  .pushsection .text
  .globl pat_tracer_clone_vm
  .type pat_tracer_clone_vm, @function
pat_tracer_clone_vm:
  subq $16, %rsi
  movq %rcx, 0(%rsi)
  movq %r8, 8(%rsi)
  xorl %r10d, %r10d
  xorl %r8d, %r8d
  movl $)" PAT_STR(__NR_clone) R"(, %eax
  syscall
  testq %rax, %rax
  jz 1f
  ret
1:
  xorl %ebp, %ebp
  popq %rax
  popq %rdi
  call *%rax
  ud2
  .size pat_tracer_clone_vm, .-pat_tracer_clone_vm
  .popsection
)");


namespace pat::tracer {
namespace {

// ---- child side: raw syscalls only, nothing allocated, no glibc ----

// Reports the failed step and leaves. exit_group ends only the child: it is
// its own thread group (no CLONE_THREAD).
[[noreturn]] PAT_CHILD_CODE void child_fail(ChildPlan* plan, ChildStep step, long ret) {
  plan->handover.send_failure(plan->handover_fd, static_cast<int>(step), ret);
  raw::syscall(__NR_exit_group, 127);
  __builtin_unreachable();
}

PAT_CHILD_CODE void check(ChildPlan* plan, ChildStep step, long ret) {
  if (ret < 0) child_fail(plan, step, ret);
}

// execve(2) resets handlers to SIG_DFL but keeps SIG_IGN; a member starts
// from nothing of the host's, so both go back to SIG_DFL. SIGKILL and SIGSTOP
// cannot be changed.
PAT_CHILD_CODE long reset_signal_dispositions(const ChildPlan* plan) {
  for (int sig = 1; sig <= kernel::kNumSignals; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    long ret = raw::syscall(__NR_rt_sigaction, sig, &plan->default_action, nullptr, kernel::kSigsetSize);
    if (ret < 0) return ret;
  }
  return 0;
}

PAT_CHILD_CODE long install_stdio(const ChildPlan* plan) {
  for (int i = 0; i < 3; ++i) {
    long ret = raw::syscall(__NR_dup3, plan->stdio[i], i, 0);
    if (ret < 0) return ret;
  }
  return 0;
}

// Every fd but 0..2 and the hand-over socket.
PAT_CHILD_CODE long close_host_fds(const ChildPlan* plan) {
  unsigned fd = static_cast<unsigned>(plan->handover_fd);
  if (fd > 3) {
    long ret = raw::syscall(__NR_close_range, 3u, fd - 1, 0u);
    if (ret < 0) return ret;
  }
  return raw::syscall(__NR_close_range, fd + 1, ~0u, 0u);
}

PAT_CHILD_CODE long apply_rlimits(const ChildPlan* plan) {
  for (int i = 0; i < plan->rlimit_count; ++i) {
    long ret = raw::syscall(__NR_prlimit64, 0, plan->rlimits[i].resource, &plan->rlimits[i].limit, nullptr);
    if (ret < 0) return ret;
  }
  return 0;
}

// The last instructions of host code: what execve leaves behind for a new
// program (arch/x86/kernel/process_64.c start_thread(), ELF_PLAT_INIT): an
// empty signal mask (ours: nothing of the host's), no TLS (fs base 0; ld.so
// or the static startup sets its own), a fresh FPU/SSE state, all general
// registers zero (rdx = 0: no rtld_fini), rsp at argc. Once fs is 0 no C code
// may run (the stack protector reads %fs:0x28), so this is one asm block.
// The entry address is parked just below argc, in stack space the program
// has not used yet, to jump through memory with every register zero.
//
// With `stop`, the member stops itself (kill(getpid(), SIGSTOP)) after the
// mask and fs are reset and before the registers are cleared: nothing of the
// host's is left (fds closed, listener handed over, no handler, empty mask),
// so a debugger or tracer that attaches while it is stopped sees, once it is
// continued, only the jump and then the program's own first instruction and
// first syscall. SIGSTOP cannot be blocked or caught, and neither getpid nor
// kill is rerouted by the filter installed in step 8.
[[noreturn]] PAT_CHILD_CODE void enter_program(std::uintptr_t stack_pointer, std::uintptr_t entry, bool stop) {
  register std::uintptr_t rsp_value asm("r12") = stack_pointer;
  register std::uintptr_t entry_value asm("r13") = entry;
  register std::uintptr_t stop_value asm("r14") = stop ? 1 : 0;
  asm volatile(
      "pushq $0\n\t"  // the empty sigset_t
      "movl %[nr_sigprocmask], %%eax\n\t"
      "movl %[sig_setmask], %%edi\n\t"
      "movq %%rsp, %%rsi\n\t"
      "xorl %%edx, %%edx\n\t"
      "movl %[sigsetsize], %%r10d\n\t"
      "syscall\n\t"
      "movl %[nr_arch_prctl], %%eax\n\t"
      "movl %[arch_set_fs], %%edi\n\t"
      "xorl %%esi, %%esi\n\t"
      "syscall\n\t"
      "testq %%r14, %%r14\n\t"
      "jz 1f\n\t"
      "movl %[nr_getpid], %%eax\n\t"
      "syscall\n\t"
      "movl %%eax, %%edi\n\t"
      "movl %[sigstop], %%esi\n\t"
      "movl %[nr_kill], %%eax\n\t"
      "syscall\n\t"
      "1:\n\t"
      "fninit\n\t"
      "movl $0x1f80, (%%rsp)\n\t"  // MXCSR power-on default: all exceptions masked, round to nearest
      "ldmxcsr (%%rsp)\n\t"
      "pxor %%xmm0, %%xmm0\n\t pxor %%xmm1, %%xmm1\n\t pxor %%xmm2, %%xmm2\n\t pxor %%xmm3, %%xmm3\n\t"
      "pxor %%xmm4, %%xmm4\n\t pxor %%xmm5, %%xmm5\n\t pxor %%xmm6, %%xmm6\n\t pxor %%xmm7, %%xmm7\n\t"
      "pxor %%xmm8, %%xmm8\n\t pxor %%xmm9, %%xmm9\n\t pxor %%xmm10, %%xmm10\n\t pxor %%xmm11, %%xmm11\n\t"
      "pxor %%xmm12, %%xmm12\n\t pxor %%xmm13, %%xmm13\n\t pxor %%xmm14, %%xmm14\n\t pxor %%xmm15, %%xmm15\n\t"
      "cld\n\t"
      "movq %%r12, %%rsp\n\t"
      "movq %%r13, -8(%%rsp)\n\t"
      "xorl %%eax, %%eax\n\t xorl %%ebx, %%ebx\n\t xorl %%ecx, %%ecx\n\t xorl %%edx, %%edx\n\t"
      "xorl %%esi, %%esi\n\t xorl %%edi, %%edi\n\t xorl %%ebp, %%ebp\n\t"
      "xorl %%r8d, %%r8d\n\t xorl %%r9d, %%r9d\n\t xorl %%r10d, %%r10d\n\t xorl %%r11d, %%r11d\n\t"
      "xorl %%r12d, %%r12d\n\t xorl %%r13d, %%r13d\n\t xorl %%r14d, %%r14d\n\t xorl %%r15d, %%r15d\n\t"
      "jmp *-8(%%rsp)\n\t"
      :
      : "r"(rsp_value), "r"(entry_value), "r"(stop_value), [nr_sigprocmask] "i"(__NR_rt_sigprocmask),
        [sig_setmask] "i"(SIG_SETMASK), [sigsetsize] "i"(kernel::kSigsetSize), [nr_arch_prctl] "i"(__NR_arch_prctl),
        [arch_set_fs] "i"(ARCH_SET_FS), [nr_getpid] "i"(__NR_getpid), [nr_kill] "i"(__NR_kill), [sigstop] "i"(SIGSTOP)
      : "memory");
  __builtin_unreachable();
}

// The child, top to bottom. The order matters where noted.
extern "C" [[noreturn]] __attribute__((no_stack_protector, no_sanitize("address", "undefined"), noinline, used))
void member_child_main(void* arg) {
  auto* plan = static_cast<ChildPlan*>(arg);
  // Copied now: once the listener is handed over the parent may return and
  // the plan (in the parent's frame) is gone.
  const std::uintptr_t stack_pointer = plan->stack_pointer;
  const std::uintptr_t entry = plan->entry;
  const bool stop = plan->stop_before_entry;
  const int handover_fd = plan->handover_fd;

  // 1. Die with the host: a member whose host is gone would get ENOSYS from
  //    every rerouted syscall, and glibc's brk wrapper takes -ENOSYS for
  //    success. Armed first, then checked: if the host died before it was
  //    armed, getppid() already shows the reaper.
  check(plan, ChildStep::ParentDeathSignal, raw::syscall(__NR_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0));
  if (raw::syscall(__NR_getppid) != plan->host_pid) child_fail(plan, ChildStep::ParentCheck, -ESRCH);
  // 2. Its own session, detached from the host's terminal, like a daemon's child.
  check(plan, ChildStep::NewSession, raw::syscall(__NR_setsid));
  // 3. No host handler may ever run in the member (signals are still all blocked).
  check(plan, ChildStep::SignalDefaults, reset_signal_dispositions(plan));
  // 4. stdio first: the plan's fds are all >= 3, so none is overwritten.
  check(plan, ChildStep::Stdio, install_stdio(plan));
  // 5. cwd before closing fds: the cwd fd is one of those closed.
  if (plan->cwd_fd >= 0) check(plan, ChildStep::WorkingDirectory, raw::syscall(__NR_fchdir, plan->cwd_fd));
  // 6. Nothing of the host's fd table stays but the hand-over socket.
  check(plan, ChildStep::CloseFds, close_host_fds(plan));
  raw::syscall(__NR_umask, plan->umask);  // cannot fail
  // 7. Limits (already clamped to the host's hard limits, so no privilege is
  //    needed), then the name ps and top show.
  check(plan, ChildStep::ResourceLimits, apply_rlimits(plan));
  check(plan, ChildStep::Name, raw::syscall(__NR_prctl, PR_SET_NAME, plan->comm, 0, 0, 0));
  // 8. NO_NEW_PRIVS is what lets an unprivileged task install a filter, and
  //    the filter comes last so none of the steps above is rerouted.
  check(plan, ChildStep::NoNewPrivs, raw::syscall(__NR_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
  long listener = raw::syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, plan->seccomp_flags, &plan->filter);
  check(plan, ChildStep::Seccomp, listener);
  // 9. Hand the listener over. After this the parent may have returned.
  const int listener_fd = static_cast<int>(listener);
  long sent = plan->handover.send_done(handover_fd, static_cast<int>(ChildStep::Done), listener_fd);
  if (sent < 0) raw::syscall(__NR_exit_group, 127);  // the host sees EOF and reports it
  raw::syscall(__NR_close, listener_fd);
  raw::syscall(__NR_close, handover_fd);
  // 10. Become the program (stopping first if asked: see enter_program).
  enter_program(stack_pointer, entry, stop);
}

// ---- parent side ----

}  // namespace

void HandoverMessage::prepare() {
  iov = iovec{&report, sizeof(report)};
  failed_msg = msghdr{};
  failed_msg.msg_iov = &iov;
  failed_msg.msg_iovlen = 1;
  done_msg = failed_msg;
  done_msg.msg_control = control;
  done_msg.msg_controllen = sizeof(control);
  cmsghdr* cmsg = CMSG_FIRSTHDR(&done_msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
}

Result<StartedChild> start_member_child(ChildPlan& plan, std::uintptr_t child_stack_top) {
  int pidfd = -1;
  long ret;
  {
    AllSignalsBlocked blocked;
    ret = pat_tracer_clone_vm(CLONE_VM | CLONE_PIDFD | SIGCHLD, reinterpret_cast<void*>(child_stack_top & ~std::uintptr_t{15}),
                              &pidfd, member_child_main, &plan);
  }
  if (ret < 0) return SysError{static_cast<int>(-ret), "clone(CLONE_VM|CLONE_PIDFD)"};
  return StartedChild{static_cast<pid_t>(ret), UniqueFd(pidfd)};
}

std::variant<UniqueFd, ChildReportFailure> await_child_report(int host_end, std::chrono::milliseconds timeout,
                                                              int done_step) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return ChildReportFailure{0, 0, "the new member did not report within " + std::to_string(timeout.count()) + " ms"};
    pollfd pfd{host_end, POLLIN, 0};
    int n = ::poll(&pfd, 1, static_cast<int>(left.count()) + 1);
    if (n < 0 && errno != EINTR) return ChildReportFailure{0, 0, std::string("poll: ") + std::strerror(errno)};
    if (n > 0) break;
  }
  ChildReport report;
  iovec iov{&report, sizeof(report)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do n = ::recvmsg(host_end, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) return ChildReportFailure{0, 0, std::string("recvmsg: ") + std::strerror(errno)};
  UniqueFd listener;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int))) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c), sizeof(fd));
      listener.reset(fd);
    }
  }
  if (n == 0) return ChildReportFailure{0, 0, "the new member exited before it was set up"};
  if (n != sizeof(report) || report.step < 1 || report.step > done_step)
    return ChildReportFailure{0, 0, "malformed report from the new member"};
  if (report.step != done_step) return ChildReportFailure{report.step, report.error, {}};
  if (!listener) return ChildReportFailure{0, 0, "the new member sent no seccomp listener"};
  return listener;
}

std::variant<UniqueFd, HandoverFailure> await_handover(int host_end, std::chrono::milliseconds timeout) {
  auto result = await_child_report(host_end, timeout, static_cast<int>(ChildStep::Done));
  if (auto* failure = std::get_if<ChildReportFailure>(&result)) {
    if (failure->step == 0) return HandoverFailure{{}, 0, std::move(failure->reason)};
    return HandoverFailure{static_cast<ChildStep>(failure->step), failure->error, {}};
  }
  return std::move(std::get<UniqueFd>(result));
}

}  // namespace pat::tracer
