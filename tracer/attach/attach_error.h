// The steps of an attach, in their order (tracer/attach/attacher.cc runs them
// top to bottom; docs/attach.md explains each), and how an attach fails: a
// refusal (the process cannot be attached, with the reason) or a failure
// along the way. Before the switch, either leaves the process as it was.
#pragma once

#include <sys/types.h>

#include <string>

#include "tracer/attach/eligibility.h"
#include "tracer/member_layout.h"

namespace pat::tracer {

enum class AttachStep : int {
  Inspect = 1,      // /proc checks, nothing touched
  OpenProcess,      // pidfd, /proc/PID/mem, the mappings
  MapLayout,        // every mapping made again at its address in the group
  PreCopy,          // memory copied while the process runs (soft-dirty cleared first)
  Seize,            // every thread stopped under ptrace
  FinalCopy,        // layout changes and pages written since: copied while stopped
  CaptureThreads,   // registers, FPU state, masks, rseq, robust lists, sigaltstack, clear_child_tid
  CaptureProcess,   // dispositions, timers, brk, fds, cwd, limits, pending signals
  BuildMember,      // the member task and its threads, parked
  LoadRegisters,    // each member thread given its thread's registers; TIDs in glibc updated
  Switch,           // the process execs the stub: the point of no return
  Release,          // the member runs, the stub runs
};
const char* to_string(AttachStep step);
inline constexpr int kAttachStepCount = static_cast<int>(AttachStep::Release);

struct AttachError {
  enum class Kind {
    Refused,  // cannot be attached: `refusal` says why
    Failed,   // a step failed (ENOMEM, the process exited, ...)
    Lost,     // a failure after the switch: the member could not start; the stub was killed
  };
  Kind kind = Kind::Failed;
  AttachStep step = AttachStep::Inspect;
  AttachRefusal refusal = AttachRefusal::NotFound;  // for Refused
  std::string message;                              // one line
  Range conflict{};                                 // AddressConflict: the range taken
  pid_t conflict_owner = 0;                         // ...and the member holding it (0: the host, or unknown)

  static AttachError refused(AttachStep step, const Refusal& r) { return {Kind::Refused, step, r.reason, r.message, {}, 0}; }
  static AttachError failed(AttachStep step, std::string message) {
    return {Kind::Failed, step, AttachRefusal::NotFound, std::move(message), {}, 0};
  }
};

}  // namespace pat::tracer
