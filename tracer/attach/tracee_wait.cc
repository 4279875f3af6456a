#include "tracer/attach/tracee_wait.h"

#include <sched.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>

#include <cerrno>
#include <csignal>
#include <cstring>

namespace pat::tracer {
namespace {

bool is_stop_signal(int sig) { return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU; }

// ptrace(2): with PTRACE_O_TRACESYSGOOD a syscall stop reports SIGTRAP|0x80;
// an event stop carries the event in bits 16-23.
TraceStop decode_trace_stop(int raw) {
  const int sig = WSTOPSIG(raw);
  const int event = (raw >> 16) & 0xff;
  if (sig == (SIGTRAP | 0x80)) return TraceStop{TraceStop::Kind::Syscall, SIGTRAP, 0};
  if (event == PTRACE_EVENT_STOP) {
    return is_stop_signal(sig) ? TraceStop{TraceStop::Kind::GroupStop, sig, event}
                               : TraceStop{TraceStop::Kind::Interrupt, sig, event};
  }
  if (event != 0) return TraceStop{TraceStop::Kind::Event, sig, event};
  return TraceStop{TraceStop::Kind::SignalDelivery, sig, 0};
}

Result<std::optional<WaitStatus>> wait_nohang(pid_t pid, int flags, bool traced) {
  int raw = 0;
  pid_t got;
  do got = ::waitpid(pid, &raw, flags | WNOHANG | __WALL);
  while (got < 0 && errno == EINTR);
  if (got < 0) return last_error("waitpid " + std::to_string(pid));
  if (got == 0) return std::optional<WaitStatus>{};
  return std::optional<WaitStatus>{decode_wait_status(raw, traced)};
}

}  // namespace

WaitStatus decode_wait_status(int raw, bool traced) {
  if (WIFEXITED(raw)) return Exited{WEXITSTATUS(raw)};
  if (WIFSIGNALED(raw)) return Killed{WTERMSIG(raw), WCOREDUMP(raw) != 0};
  if (WIFCONTINUED(raw)) return Continued{};
  // WIFSTOPPED is all that is left (wait(2)).
  if (traced) return decode_trace_stop(raw);
  return JobStop{WSTOPSIG(raw)};
}

bool is_gone(const WaitStatus& status) {
  return std::holds_alternative<Exited>(status) || std::holds_alternative<Killed>(status);
}

std::string describe(const WaitStatus& status) {
  struct Describer {
    std::string operator()(const Exited& e) const { return "exited " + std::to_string(e.code); }
    std::string operator()(const Killed& k) const {
      return std::string("killed by ") + sigabbrev_np(k.signal) + (k.core_dumped ? " (core dumped)" : "");
    }
    std::string operator()(const TraceStop& t) const {
      const char* sig = sigabbrev_np(t.signal & 0x7f);
      switch (t.kind) {
        case TraceStop::Kind::SignalDelivery: return std::string("ptrace stop: signal SIG") + (sig ? sig : "?");
        case TraceStop::Kind::GroupStop: return std::string("ptrace stop: group stop SIG") + (sig ? sig : "?");
        case TraceStop::Kind::Interrupt: return "ptrace stop: interrupt";
        case TraceStop::Kind::Event: return "ptrace stop: event " + std::to_string(t.event);
        case TraceStop::Kind::Syscall: return "ptrace stop: syscall";
      }
      return "ptrace stop";
    }
    std::string operator()(const JobStop& s) const { return std::string("stopped by SIG") + sigabbrev_np(s.signal); }
    std::string operator()(const Continued&) const { return "continued"; }
  };
  return std::visit(Describer{}, status);
}

Result<std::optional<WaitStatus>> poll_tracee(pid_t tid) { return wait_nohang(tid, 0, true); }

Result<std::optional<WaitStatus>> poll_child(pid_t pid) { return wait_nohang(pid, WUNTRACED | WCONTINUED, false); }

Result<std::optional<WaitStatus>> wait_for_tracee(pid_t tid, Deadline deadline) {
  // A stop we asked for usually comes within tens of microseconds: spin
  // with sched_yield for a while (the tracee runs on another CPU), then poll
  // every 25 us. The thread's timer slack (50 us by default, prctl(2)
  // PR_SET_TIMERSLACK) is lowered meanwhile, or each sleep would last three
  // times longer; a doubling back-off cost up to a millisecond per stop.
  constexpr auto kSpin = std::chrono::microseconds(50);
  const auto spin_until = std::chrono::steady_clock::now() + kSpin;
  for (;;) {
    auto got = poll_tracee(tid);
    if (!got || got.value()) return got;
    if (std::chrono::steady_clock::now() >= spin_until) break;
    ::sched_yield();
  }
  const long slack = ::prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
  ::prctl(PR_SET_TIMERSLACK, 1000, 0, 0, 0);
  Result<std::optional<WaitStatus>> result = std::optional<WaitStatus>{};
  for (;;) {
    result = poll_tracee(tid);
    if (!result || result.value() || std::chrono::steady_clock::now() >= deadline) break;
    timespec ts{0, 25'000};
    ::nanosleep(&ts, nullptr);
  }
  if (slack > 0) ::prctl(PR_SET_TIMERSLACK, slack, 0, 0, 0);
  return result;
}

void reap_killed_child(pid_t pid) {
  int raw;
  while (::waitpid(pid, &raw, __WALL) < 0 && errno == EINTR) {
  }
}

}  // namespace pat::tracer
