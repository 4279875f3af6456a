// The first moments of a member: the host clones itself with CLONE_VM, and
// the child turns itself into a fresh process (signals, fds, cwd, limits,
// seccomp), hands its seccomp listener to the host and jumps to the program.
// The child runs host code on the host's TLS, like a vfork child, so its part
// uses raw syscalls only, allocates nothing and reads only what the parent
// prepared in a ChildPlan before the clone.
#pragma once

#include <asm/unistd.h>
#include <linux/filter.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "base/result.h"
#include "base/unique_fd.h"
#include "tracer/kernel_abi.h"
#include "tracer/launch_error.h"
#include "tracer/raw_syscall.h"

namespace pat::tracer {

// What the child sends over the hand-over socket: Done with the listener as
// SCM_RIGHTS, or the step that failed and its errno.
struct ChildReport {
  int step = 0;
  int error = 0;
};

// The message a cloned child sends its host over the hand-over socket:
// {step, errno}, with the seccomp listener as SCM_RIGHTS once done. The host
// prepares it; the child only fills it in and sends it (send_failure,
// send_done), so nothing is allocated in the child. member_child and the
// attach restorer (tracer/attach/member_restorer.h) both speak it.
struct HandoverMessage {
  ChildReport report;
  iovec iov{};
  msghdr done_msg{};    // with one SCM_RIGHTS fd in control
  msghdr failed_msg{};  // report only
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};

  // Points the message fields at this object's own buffers. Call once it
  // is at its final address.
  void prepare();

  // Child side, raw syscalls only: the step that failed and -ret as errno.
  PAT_CHILD_CODE long send_failure(int fd, int step, long ret) {
    report.step = step;
    report.error = static_cast<int>(-ret);
    return raw::syscall(__NR_sendmsg, fd, &failed_msg, MSG_NOSIGNAL);
  }
  // Child side: success, handing `listener` over.
  PAT_CHILD_CODE long send_done(int fd, int done_step, int listener) {
    report.step = done_step;
    report.error = 0;
    // __builtin_memcpy of a constant 4 bytes is a plain store, never a call.
    __builtin_memcpy(CMSG_DATA(reinterpret_cast<cmsghdr*>(control)), &listener, sizeof(int));
    return raw::syscall(__NR_sendmsg, fd, &done_msg, MSG_NOSIGNAL);
  }
};

// The kernel's struct rlimit64 for prlimit64(2) (include/uapi/linux/resource.h).
struct KernelRlimit {
  std::uint64_t cur, max;
};

// Everything the child needs, prepared by the parent. All fds are >= 3 and
// distinct, so dup3() onto 0..2 cannot clobber one still to be used.
struct ChildPlan {
  pid_t host_pid = 0;
  int stdio[3] = {-1, -1, -1};  // become the member's 0, 1, 2
  int cwd_fd = -1;              // -1: keep the host's cwd
  int handover_fd = -1;         // the child's end of the hand-over socketpair
  mode_t umask = 0;  // always set from the LaunchSpec
  int rlimit_count = 0;
  struct {
    int resource;
    KernelRlimit limit;
  } rlimits[RLIM_NLIMITS];
  char comm[kernel::kTaskCommLen] = {};
  sock_fprog filter{};
  unsigned seccomp_flags = 0;
  kernel::KernelSigaction default_action{};  // SIG_DFL, empty mask

  HandoverMessage handover;

  std::uintptr_t stack_pointer = 0;  // the program's initial rsp (argc)
  std::uintptr_t entry = 0;          // its first instruction: ld.so's entry, or the program's if static
  bool stop_before_entry = false;    // SIGSTOP itself just before the jump (patctl run --stopped)

  // Prepares the hand-over message. Call once the plan is at its final address.
  void prepare_messages() { handover.prepare(); }
};

struct StartedChild {
  pid_t pid;
  UniqueFd pidfd;
};

// clone(CLONE_VM | CLONE_PIDFD | SIGCHLD) running member_child_main(plan) on
// a stack whose top (16-byte aligned) is `child_stack_top`. All signals are
// blocked in the calling thread around the clone, so the child starts with
// every signal blocked and no host handler can run on its stack.
Result<StartedChild> start_member_child(ChildPlan& plan, std::uintptr_t child_stack_top);

// Why a hand-over failed: the child's own report of the step that failed
// and its errno, or (no step) what went wrong around it.
struct HandoverFailure {
  std::optional<ChildStep> step;
  int error = 0;       // with a step: the step's errno
  std::string reason;  // without one: a one-line reason
};

// A failed report of any child speaking HandoverMessage: the step number it
// failed at and its errno, or (step 0) a one-line reason.
struct ChildReportFailure {
  int step = 0;
  int error = 0;
  std::string reason;
};

// Waits (bounded) for the report of a child whose steps are numbered 1 to
// `done_step` (its success) on the host's end of the hand-over socket.
// Returns the seccomp listener, or the failure.
std::variant<UniqueFd, ChildReportFailure> await_child_report(int host_end, std::chrono::milliseconds timeout,
                                                              int done_step);

// await_child_report for member_child_main(): the seccomp listener, or why
// there is none.
std::variant<UniqueFd, HandoverFailure> await_handover(int host_end, std::chrono::milliseconds timeout);

}  // namespace pat::tracer
