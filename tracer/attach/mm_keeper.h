// MmKeeper: keeps an attached process's old address space alive across the
// switch's execve. Without it the execve tears the old address space down
// before returning, while the program is stopped: 336 ms for 1 GiB on this
// project's machines, three times the whole stop budget. The keeper is a
// task the process itself creates (injected clone(CLONE_VM), exit signal 0)
// and that we trace from birth (PTRACE_O_TRACECLONE), so it never runs a
// single instruction: it only holds a reference to the address space. Once
// the member runs, the keeper is killed and the address space is freed in
// its exit, while everything else goes on; the stub, its parent after the
// execve, reaps it.
#pragma once

#include <sys/types.h>

#include "base/result.h"
#include "tracer/attach/seized_process.h"

namespace pat::tracer {

class MmKeeper {
 public:
  // From the process's main thread, parked in `process`.
  static Result<MmKeeper> start(SeizedProcess& process, std::uint64_t gadget, Deadline deadline);
  MmKeeper(MmKeeper&& o) noexcept : pid_(o.pid_) { o.pid_ = 0; }
  MmKeeper& operator=(MmKeeper&&) = delete;
  // Kills it if it is still ours (best effort: a failed attach calls discard()).
  ~MmKeeper();

  pid_t pid() const { return pid_; }

  // After the switch: SIGKILL. It reports its death to us (its tracer),
  // who must reap it (tracee_wait.h); then the stub, its parent, does.
  pid_t let_go();
  // Before the switch, when the attach fails: kills it and reaps it, as its
  // tracer and then (an injected wait4) as the process's child, so the
  // process is left without a trace of it.
  Status discard(SeizedProcess& process, std::uint64_t gadget, Deadline deadline);

 private:
  explicit MmKeeper(pid_t pid) : pid_(pid) {}
  pid_t pid_ = 0;
};

}  // namespace pat::tracer
