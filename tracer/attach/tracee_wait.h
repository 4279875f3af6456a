// The one place in the attach machinery that waits for tasks (waitpid(2)):
// the threads it traces, the member it created, the stub it supervises.
// ptrace stops can only be collected by the tracer, and a wait anywhere else
// could consume them, so nothing else in tracer/attach/ calls wait*().
// Each wait names the task it wants (never P_ALL: the host has other
// children whose statuses belong to its own supervisor).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <variant>

#include "base/result.h"

namespace pat::tracer {

// The task is gone: exit(2) or exit_group(2) with `code`.
struct Exited {
  int code = 0;
};
// The task is gone: killed by `signal`.
struct Killed {
  int signal = 0;
  bool core_dumped = false;
};
// A ptrace stop (ptrace(2), "Stopped states"). Only tracees report these.
struct TraceStop {
  enum class Kind {
    SignalDelivery,  // the tracee is about to take `signal`; the tracer decides
    GroupStop,       // job-control stop (PTRACE_EVENT_STOP with a stop signal)
    Interrupt,       // PTRACE_EVENT_STOP from PTRACE_INTERRUPT, or a new auto-attached thread
    Event,           // PTRACE_EVENT_CLONE, _EXEC, _EXIT...: `event`
    Syscall,         // syscall entry or exit (PTRACE_O_TRACESYSGOOD)
  };
  Kind kind = Kind::Interrupt;
  int signal = 0;
  int event = 0;
};
// An untraced child stopped by a signal (WUNTRACED).
struct JobStop {
  int signal = 0;
};
// An untraced child resumed by SIGCONT (WCONTINUED).
struct Continued {};

// What one waitpid(2) reported. Exactly one of these, never "neither exited
// nor signalled".
using WaitStatus = std::variant<Exited, Killed, TraceStop, JobStop, Continued>;

// Decodes a raw status. `traced`: the task is our tracee, so a stop is a
// ptrace stop (a stop of an untraced child is a job-control stop).
WaitStatus decode_wait_status(int raw, bool traced);

bool is_gone(const WaitStatus& status);
std::string describe(const WaitStatus& status);  // "exited 3", "killed by SIGKILL", "ptrace stop: interrupt"...

using Deadline = std::chrono::steady_clock::time_point;

// The next state change of tracee `tid`, waiting until `deadline`: nullopt if
// nothing came in time. ECHILD: not ours (any more). Polls with a short
// back-off rather than blocking: a task stuck in an uninterruptible sleep
// must not hang the host.
Result<std::optional<WaitStatus>> wait_for_tracee(pid_t tid, Deadline deadline);

// Never blocks: a pending state change of tracee `tid`, or nullopt.
Result<std::optional<WaitStatus>> poll_tracee(pid_t tid);

// Never blocks: a pending state change of our untraced child `pid` (exit,
// job-control stop, continue), or nullopt.
Result<std::optional<WaitStatus>> poll_child(pid_t pid);

// Blocks until our child `pid` (a half-built member being discarded, already
// sent SIGKILL) is gone, and reaps it.
void reap_killed_child(pid_t pid);

}  // namespace pat::tracer
