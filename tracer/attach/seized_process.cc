#include "tracer/attach/seized_process.h"

#include <sys/ptrace.h>

#include <time.h>

#include <csignal>
#include <cstring>

#include "tracer/attach/proc_status.h"

namespace pat::tracer {

Status ptrace_request(int request, pid_t tid, std::uintptr_t addr, std::uintptr_t data, const char* name) {
  if (::ptrace(static_cast<__ptrace_request>(request), tid, addr, data) == -1)
    return last_error(std::string(name) + " " + std::to_string(tid));
  return ok_status();
}

Result<SeizedProcess> SeizedProcess::seize(pid_t pid, Deadline deadline) {
  SeizedProcess process(pid);
  if (auto s = process.seize_thread(pid); !s) return s.error();
  if (auto s = process.park_all(deadline); !s) return s.error();  // the destructor detaches
  return process;
}

SeizedProcess::SeizedProcess(SeizedProcess&& other) noexcept
    : pid_(other.pid_), threads_(std::move(other.threads_)), stop_held_back_(other.stop_held_back_) {
  other.threads_.clear();
}

SeizedProcess::~SeizedProcess() { detach_all(); }

std::vector<pid_t> SeizedProcess::threads() const {
  std::vector<pid_t> out;
  if (threads_.count(pid_)) out.push_back(pid_);
  for (pid_t t : threads_) {
    if (t != pid_) out.push_back(t);
  }
  return out;
}

Status SeizedProcess::seize_thread(pid_t tid) {
  if (auto s = ptrace_request(PTRACE_SEIZE, tid, 0, kOptions, "PTRACE_SEIZE"); !s) return s;
  threads_.insert(tid);
  return ptrace_request(PTRACE_INTERRUPT, tid, 0, 0, "PTRACE_INTERRUPT");
}

void SeizedProcess::forget_thread(pid_t tid) { threads_.erase(tid); }

Status SeizedProcess::set_exit_kill(pid_t tid, bool on) {
  return ptrace_request(PTRACE_SETOPTIONS, tid, 0, kOptions | (on ? PTRACE_O_EXITKILL : 0), "PTRACE_SETOPTIONS");
}

// Waits until each known thread reports its interrupt stop, then looks for
// threads created before the seize took effect (not followed by
// TRACECLONE) until /proc lists no thread we do not hold.
Status SeizedProcess::park_all(Deadline deadline) {
  std::set<pid_t> parked;
  for (;;) {
    for (pid_t tid : std::set<pid_t>(threads_)) {
      if (parked.count(tid)) continue;
      auto stop = wait_until(tid, TraceStop::Kind::Interrupt, deadline);
      if (!stop) {
        if (stop.error().code == ESRCH && tid != pid_) {  // a thread that ended meanwhile
          threads_.erase(tid);
          continue;
        }
        return stop.error();
      }
      parked.insert(tid);
    }
    auto listed = list_threads(pid_);
    if (!listed) return listed.error();
    bool all_held = true;
    for (pid_t tid : listed.value()) {
      if (threads_.count(tid)) continue;
      all_held = false;
      if (auto s = seize_thread(tid); !s && s.error().code != ESRCH) return s;
    }
    if (all_held && parked.size() == threads_.size()) return ok_status();
  }
}

Result<TraceStop> SeizedProcess::resume_until(pid_t tid, int resume_request, TraceStop::Kind wanted, Deadline deadline) {
  if (auto s = ptrace_request(resume_request, tid, 0, 0, "PTRACE resume"); !s) return s.error();
  return wait_until(tid, wanted, deadline);
}

Result<TraceStop> SeizedProcess::wait_until(pid_t tid, TraceStop::Kind wanted, Deadline deadline) {
  for (;;) {
    auto got = wait_for_tracee(tid, deadline);
    if (!got) return got.error();
    if (!got.value()) return SysError{ETIMEDOUT, "thread " + std::to_string(tid) + " did not stop in time"};
    auto stop = take(tid, *got.value(), [&](const TraceStop& s) { return s.kind == wanted; }, wanted);
    if (!stop) return stop.error();
    if (stop.value()) return *stop.value();
  }
}

Result<TraceStop> SeizedProcess::wait_until_exec_or_syscall(pid_t tid, Deadline deadline) {
  auto wanted = [](const TraceStop& s) {
    return s.kind == TraceStop::Kind::Syscall || (s.kind == TraceStop::Kind::Event && s.event == PTRACE_EVENT_EXEC);
  };
  long sleep_ns = 10'000;
  for (;;) {
    // The other threads die in de_thread(); the exec waits until each one
    // has been reaped by us, their tracer.
    for (pid_t other : std::set<pid_t>(threads_)) {
      if (other == tid) continue;
      auto got = poll_tracee(other);
      if (got && got.value() && is_gone(*got.value())) threads_.erase(other);
      if (!got && got.error().code == ECHILD) threads_.erase(other);
    }
    auto got = poll_tracee(tid);
    if (!got) return got.error();
    if (got.value()) {
      auto stop = take(tid, *got.value(), wanted, TraceStop::Kind::Syscall);
      if (!stop) return stop.error();
      if (stop.value()) return *stop.value();
      continue;
    }
    if (std::chrono::steady_clock::now() >= deadline) return SysError{ETIMEDOUT, "execve did not complete in time"};
    timespec ts{0, sleep_ns};
    ::nanosleep(&ts, nullptr);
    sleep_ns = std::min(sleep_ns * 2, 1'000'000L);
  }
}

// One reported state of `tid` while we wait for a stop that `is_wanted`:
// returns it, or handles it and returns nullopt (resuming the thread toward
// the stop wanted), or fails.
template <class Wanted>
Result<std::optional<TraceStop>> SeizedProcess::take(pid_t tid, const WaitStatus& status, Wanted is_wanted,
                                                     TraceStop::Kind wanted_kind) {
  if (is_gone(status)) {
    threads_.erase(tid);
    return SysError{ESRCH, "thread " + std::to_string(tid) + " " + describe(status)};
  }
  const auto* stop = std::get_if<TraceStop>(&status);
  if (stop == nullptr) return SysError{EINVAL, "unexpected wait status " + describe(status)};
  if (is_wanted(*stop)) return std::optional<TraceStop>{*stop};
  const int resume = wanted_kind == TraceStop::Kind::Syscall ? PTRACE_SYSCALL : PTRACE_CONT;
  switch (stop->kind) {
    case TraceStop::Kind::SignalDelivery: {
      // The thread is about to take a signal. SIGSTOP (the one signal our
      // all-blocked mask cannot hold) is kept for later; any other signal is
      // delivered now, as if we were not here. A pending PTRACE_INTERRUPT
      // still traps afterwards.
      int deliver = stop->signal;
      if (deliver == SIGSTOP) {
        stop_held_back_ = true;
        deliver = 0;
      }
      if (auto s = ptrace_request(resume, tid, 0, static_cast<std::uintptr_t>(deliver), "PTRACE resume"); !s) return s.error();
      return std::optional<TraceStop>{};
    }
    case TraceStop::Kind::Event:
      if (stop->event == PTRACE_EVENT_CLONE) {
        unsigned long child = 0;
        if (auto s = ptrace_request(PTRACE_GETEVENTMSG, tid, 0, reinterpret_cast<std::uintptr_t>(&child), "PTRACE_GETEVENTMSG"); !s)
          return s.error();
        threads_.insert(static_cast<pid_t>(child));  // auto-attached; reports its own first stop
        if (auto s = ptrace_request(resume, tid, 0, 0, "PTRACE resume"); !s) return s.error();
        return std::optional<TraceStop>{};
      }
      if (stop->event == PTRACE_EVENT_EXEC) return SysError{kExecuted, "the process called execve during the attach"};
      return SysError{EINVAL, "unexpected ptrace event " + std::to_string(stop->event)};
    case TraceStop::Kind::GroupStop: return SysError{kStoppedByJobControl, "the process was stopped by job control during the attach"};
    case TraceStop::Kind::Interrupt:
    case TraceStop::Kind::Syscall:
      // A stop we did not ask for now (a late interrupt): go on.
      if (auto s = ptrace_request(resume, tid, 0, 0, "PTRACE resume"); !s) return s.error();
      return std::optional<TraceStop>{};
  }
  return std::optional<TraceStop>{};
}

void SeizedProcess::detach_all() {
  for (pid_t tid : threads_) {
    if (::ptrace(PTRACE_DETACH, tid, 0, 0) == 0) continue;
    // ESRCH: not in a ptrace stop (still on its way to our interrupt) or
    // gone. Let it reach the stop, then let it go; a signal it was about to
    // take goes with it.
    ::ptrace(PTRACE_INTERRUPT, tid, 0, 0);
    auto got = wait_for_tracee(tid, std::chrono::steady_clock::now() + std::chrono::seconds(1));
    if (!got || !got.value()) continue;
    const auto* stop = std::get_if<TraceStop>(&*got.value());
    if (stop == nullptr) continue;  // it ended; the wait reaped it
    int deliver = stop->kind == TraceStop::Kind::SignalDelivery ? stop->signal : 0;
    ::ptrace(PTRACE_DETACH, tid, 0, deliver);
  }
  if (!threads_.empty() && stop_held_back_) ::kill(pid_, SIGSTOP);
  threads_.clear();
  stop_held_back_ = false;
}

}  // namespace pat::tracer
