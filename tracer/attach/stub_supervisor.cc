#include "tracer/attach/stub_supervisor.h"

#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <unistd.h>

#include <chrono>

#include "base/log.h"
#include "base/pidfd.h"
#include "tracer/attach/injected_syscalls.h"
#include "tracer/attach/proc_status.h"
#include "tracer/attach/seized_process.h"

namespace pat::tracer {
namespace {

bool is_job_stop(int sig) { return sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU; }

constexpr auto kStubTimeout = std::chrono::seconds(2);

}  // namespace

StubSupervisor::StubSupervisor(pid_t stub, pid_t member, int member_pidfd)
    : stub_(stub), member_(member), member_pidfd_(member_pidfd), host_(::getpid()) {}

void StubSupervisor::resume_stub(int sig) { ::ptrace(PTRACE_CONT, stub_, 0, sig); }

// Whether the member would stop on `sig` (no handler, not ignored): read
// from its /proc status, which is current.
bool StubSupervisor::member_takes_default(int sig) const {
  auto status = read_proc_status(member_);
  if (!status) return true;
  std::uint64_t bit = std::uint64_t{1} << (sig - 1);
  return !(status->sig_caught & bit) && !(status->sig_ignored & bit);
}

// The member is in an orphaned process group of its own (its parent, the
// host, is in another session), where the kernel discards SIGTSTP, SIGTTIN
// and SIGTTOU whose action is to stop (kernel/signal.c get_signal()). So a
// job-control stop that would stop the program reaches it as SIGSTOP.
void StubSupervisor::forward(int sig, int resume_with) {
  int to_member = sig;
  if (is_job_stop(sig) && member_takes_default(sig)) to_member = SIGSTOP;
  if (!member_gone()) (void)pidfd_signal(member_pidfd_, to_member);
  resume_stub(resume_with);
}

void StubSupervisor::on_stub_status(const WaitStatus& status) {
  if (is_gone(status)) {
    stub_end_ = status;
    if (!ending_ && !member_gone()) {
      // Only SIGKILL (or the host's death) ends a stub behind our back: the
      // process was killed, so is the program.
      spdlog::info("event=attach.stub_killed pid={} member={} status={}", stub_, member_, log_quote(describe(status)));
      (void)pidfd_signal(member_pidfd_, SIGKILL);
    }
    return;
  }
  const auto* stop = std::get_if<TraceStop>(&status);
  if (stop == nullptr) return;
  switch (stop->kind) {
    case TraceStop::Kind::SignalDelivery: {
      siginfo_t info{};
      if (!ready_ && stop->signal == SIGTRAP && ::ptrace(PTRACE_GETSIGINFO, stub_, 0, &info) == 0 && info.si_code == SI_KERNEL) {
        ready_ = true;  // the stub's int3
        resume_stub(0);
        return;
      }
      bool ours = ::ptrace(PTRACE_GETSIGINFO, stub_, 0, &info) == 0 && info.si_pid == host_ && info.si_code <= 0;
      if (ours) {
        // A signal we sent to mirror the member: SIGCONT has had its effect
        // already; stop and fatal signals act on the stub itself.
        resume_stub(stop->signal == SIGCONT ? 0 : stop->signal);
        return;
      }
      const int sig = stop->signal;
      if (sig == SIGSTOP || (is_job_stop(sig) && member_takes_default(sig))) forward(sig, sig);
      else forward(sig, 0);
      return;
    }
    case TraceStop::Kind::GroupStop:
      // The stub is stopped, as its parent sees; PTRACE_LISTEN keeps it so
      // while letting SIGCONT wake it (ptrace(2)).
      stub_stopped_ = true;
      ::ptrace(PTRACE_LISTEN, stub_, 0, 0);
      return;
    case TraceStop::Kind::Interrupt:
      // After PTRACE_LISTEN: the group stop ended (SIGCONT), or a late trap.
      stub_stopped_ = false;
      resume_stub(0);
      return;
    case TraceStop::Kind::Event:
    case TraceStop::Kind::Syscall: resume_stub(0); return;
  }
}

void StubSupervisor::watch_keeper(pid_t keeper, std::unique_ptr<WriteTracker> held) {
  keeper_ = keeper;
  held_ = std::move(held);
  if (keeper_ == 0) held_.reset();
}

void StubSupervisor::on_keeper_status(const WaitStatus& status) {
  if (!is_gone(status)) return;  // a ptrace stop on its way to death: it was sent SIGKILL
  keeper_ = 0;
  held_.reset();
}

void StubSupervisor::on_member_status(const WaitStatus& status) {
  if (is_gone(status)) {
    member_end_ = status;
    if (!stub_gone()) end_stub_like(status);
    return;
  }
  if (stub_gone()) return;
  if (std::holds_alternative<JobStop>(status) && !stub_stopped_) {
    ::syscall(SYS_tgkill, stub_, stub_, SIGSTOP);
  } else if (std::holds_alternative<Continued>(status) && stub_stopped_) {
    ::syscall(SYS_tgkill, stub_, stub_, SIGCONT);
  }
}

void StubSupervisor::end_stub_like(const WaitStatus& member_end) {
  ending_ = true;
  if (const auto* killed = std::get_if<Killed>(&member_end)) {
    if (killed->signal != SIGKILL && stub_stopped_) ::syscall(SYS_tgkill, stub_, stub_, SIGCONT);
    // Comes back as a signal-delivery stop sent by us: resumed with itself.
    ::syscall(SYS_tgkill, stub_, stub_, killed->signal);
    return;
  }
  if (const auto* exited = std::get_if<Exited>(&member_end)) run_exit_in_stub(exited->code);
}

// exit_group(code) made by the stub itself, so its parent reads exactly
// that status: the stub is interrupted (it sits in pause()) and sent to a
// syscall instruction of its own vdso.
void StubSupervisor::run_exit_in_stub(int code) {
  auto kill_instead = [&](const char* why) {
    spdlog::warn("event=attach.stub_exit_failed pid={} code={} reason={}", stub_, code, log_quote(why));
    ::syscall(SYS_tgkill, stub_, stub_, SIGKILL);
  };
  auto gadget = find_syscall_gadget(stub_);
  if (!gadget) return kill_instead("no syscall instruction");
  const Deadline deadline = std::chrono::steady_clock::now() + kStubTimeout;
  ::ptrace(PTRACE_INTERRUPT, stub_, 0, 0);
  for (;;) {
    auto got = wait_for_tracee(stub_, deadline);
    if (!got || !got.value()) return kill_instead("the stub did not stop");
    const WaitStatus& status = *got.value();
    if (is_gone(status)) {
      stub_end_ = status;
      return;
    }
    const auto* stop = std::get_if<TraceStop>(&status);
    if (stop != nullptr && (stop->kind == TraceStop::Kind::Interrupt || stop->kind == TraceStop::Kind::GroupStop)) break;
    // A signal on its way in: dropped, the program it was for has ended.
    resume_stub(0);
  }
  user_regs_struct regs{};
  if (::ptrace(PTRACE_GETREGS, stub_, 0, &regs) != 0) return kill_instead("PTRACE_GETREGS");
  regs.rip = gadget.value();
  regs.rax = SYS_exit_group;
  regs.orig_rax = ~0ULL;
  regs.rdi = static_cast<unsigned long long>(code);
  if (::ptrace(PTRACE_SETREGS, stub_, 0, &regs) != 0) return kill_instead("PTRACE_SETREGS");
  resume_stub(0);
}

}  // namespace pat::tracer
