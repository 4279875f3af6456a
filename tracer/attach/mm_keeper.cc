#include "tracer/attach/mm_keeper.h"

#include <linux/sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "tracer/attach/injected_syscalls.h"
#include "tracer/attach/tracee_wait.h"

namespace pat::tracer {

Result<MmKeeper> MmKeeper::start(SeizedProcess& process, std::uint64_t gadget, Deadline deadline) {
  auto session = InjectedSyscalls::begin(process, process.pid(), gadget, deadline);
  if (!session) return session.error();
  // clone(flags, newsp, parent_tid, child_tid, tls): shares the address
  // space and nothing else; exit signal 0, so its parent is never
  // signalled. With PTRACE_O_TRACECLONE the child starts in a ptrace stop.
  auto child = session->call(SYS_clone, {CLONE_VM, 0, 0, 0, 0});
  if (!child) return child.error();
  if (child.value() < 0) return SysError{static_cast<int>(-child.value()), "clone(CLONE_VM) in process " + std::to_string(process.pid())};
  const pid_t pid = static_cast<pid_t>(child.value());
  MmKeeper keeper(pid);
  process.forget_thread(pid);  // SeizedProcess took it for a new thread
  if (auto s = session->end(); !s) return s.error();
  auto first = wait_for_tracee(pid, deadline);
  if (!first || !first.value() || !std::holds_alternative<TraceStop>(*first.value()))
    return SysError{ECHILD, "the address space keeper did not stop"};
  return keeper;
}

MmKeeper::~MmKeeper() {
  if (pid_ > 0) ::kill(pid_, SIGKILL);
}

pid_t MmKeeper::let_go() {
  const pid_t pid = pid_;
  pid_ = 0;
  ::kill(pid, SIGKILL);
  return pid;
}

Status MmKeeper::discard(SeizedProcess& process, std::uint64_t gadget, Deadline deadline) {
  const pid_t pid = let_go();
  for (;;) {
    auto got = wait_for_tracee(pid, deadline);
    if (!got) break;  // ECHILD: reaped already
    if (!got.value()) return SysError{ETIMEDOUT, "the address space keeper did not die"};
    if (is_gone(*got.value())) break;
  }
  auto session = InjectedSyscalls::begin(process, process.pid(), gadget, deadline);
  if (!session) return session.error();
  auto reaped = session->call(SYS_wait4, {static_cast<std::uint64_t>(pid), 0, __WALL, 0});
  if (!reaped) return reaped.error();
  return session->end();
}

}  // namespace pat::tracer
