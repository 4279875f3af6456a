// StubSupervisor: after the switch, keeps the stub (the original process,
// now running pat-attach-stub under our ptrace) and the member it stands
// for in step, so that whoever looks at the original PID sees the program:
//  - a signal sent to the stub stops it in a ptrace stop; we forward it to
//    the member and drop it at the stub, except stop signals, which stop
//    the stub too so its parent and shell see the job stopped;
//  - the member stopping or continuing stops or continues the stub;
//  - the member ending ends the stub the same way: exit_group(code) run in
//    the stub, or the same signal delivered to it;
//  - the stub killed (SIGKILL, the one signal we never see) kills the member.
// The host feeds it every wait status of the two (tracee_wait.h); all of it
// runs on the tracer thread.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>

#include "base/unique_fd.h"
#include "tracer/attach/tracee_wait.h"
#include "tracer/attach/write_tracker.h"

namespace pat::tracer {

class StubSupervisor {
 public:
  // `stub`: traced by the calling thread, stopped or running.
  // `member_pidfd`: borrowed, must outlive this object.
  StubSupervisor(pid_t stub, pid_t member, int member_pidfd);

  void on_stub_status(const WaitStatus& status);
  void on_member_status(const WaitStatus& status);

  // The task keeping the old address space (mm_keeper.h), killed already:
  // we trace it, so its death is ours to collect (poll keeper() and pass
  // its statuses here). `held` is let go once it is gone: what referred to
  // the old address space (the write tracker) is cheapest to close then.
  void watch_keeper(pid_t keeper, std::unique_ptr<WriteTracker> held);
  pid_t keeper() const { return keeper_; }
  void on_keeper_status(const WaitStatus& status);

  // The stub has dropped the old program's fds and set its name (it says
  // so with a breakpoint trap, seen here as a SIGTRAP stop).
  bool ready() const { return ready_; }
  pid_t stub() const { return stub_; }
  pid_t member() const { return member_; }
  bool stub_gone() const { return stub_end_.has_value(); }
  bool member_gone() const { return member_end_.has_value(); }
  // How the stub ended (what its parent saw).
  const std::optional<WaitStatus>& stub_end() const { return stub_end_; }
  const std::optional<WaitStatus>& member_end() const { return member_end_; }

 private:
  void forward(int sig, int resume_with);
  void end_stub_like(const WaitStatus& member_end);
  void run_exit_in_stub(int code);
  void resume_stub(int sig);
  bool member_takes_default(int sig) const;

  pid_t stub_, member_;
  int member_pidfd_;
  pid_t host_;
  pid_t keeper_ = 0;
  std::unique_ptr<WriteTracker> held_;
  bool ready_ = false;
  bool stub_stopped_ = false;
  bool ending_ = false;  // we are making the stub end: its death is ours
  std::optional<WaitStatus> stub_end_, member_end_;
};

}  // namespace pat::tracer
