// Attacher: moves a running, unmodified process into the caller's address
// space (the group's) as a new member, keeping its PID through a stub
// (DESIGN "Migration", docs/attach.md). attach() runs the steps of
// AttachStep top to bottom; until the switch any failure leaves the process
// exactly as it was and untraced.
//
// Call it from the thread that will supervise the member and the stub (the
// host's main thread): ptrace requests come from the tracer thread only, and
// PR_SET_PDEATHSIG fires when the thread that created the member exits.
#pragma once

#include <sys/types.h>

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "tracer/attach/address_space_copy.h"
#include "tracer/attach/attach_error.h"
#include "tracer/attach/eligibility.h"
#include "tracer/attach/mapped_objects.h"
#include "tracer/attach/stub_supervisor.h"
#include "tracer/member_launcher.h"
#include "tracer/seccomp_program.h"

namespace pat::tracer {

struct AttachOptions {
  std::string stub_path;  // pat-attach-stub (libexec)
  OwnerCredentials owner = OwnerCredentials::of_this_process();
  // Copy memory while the process still runs, then only what changed while
  // it is stopped (docs/attach.md "Downtime"). Auto: when its private memory
  // is above precopy_threshold.
  enum class PreCopy { Auto, Always, Never } precopy = PreCopy::Auto;
  std::size_t precopy_threshold = 32 << 20;
  int precopy_passes = 3;                // after the first, while less than precopy_enough bytes remain
  std::size_t precopy_enough = 4 << 20;
  std::chrono::milliseconds stop_timeout{3000};  // for each wait on a thread
  MappedObjects::PrivilegedOpener privileged_opener;  // patd's map_files, if any
  AddressSpaceCopy::OwnerOf owner_of;                 // names the member holding a conflicting range
  // Test seams: called after each step's work (a test may kill the host
  // there), and a step made to fail after its work, to check that
  // everything before it is undone.
  std::function<void(AttachStep)> on_step;
  std::optional<AttachStep> fail_at;
};

struct AttachStats {
  std::chrono::microseconds total{0};
  std::chrono::microseconds stopped{0};   // from the first thread stopped to the member running
  std::chrono::microseconds precopy{0};
  std::chrono::microseconds final_copy{0};
  std::size_t bytes_precopied = 0;
  std::size_t bytes_copied_stopped = 0;
  std::size_t private_bytes = 0;  // the process's own pages, as seen at the last pass
  int threads = 0;
  int fds = 0;
  // How long each step took (index: AttachStep), for the logs and bench/.
  std::array<std::chrono::microseconds, kAttachStepCount + 1> step_time{};
};

struct AttachedMember {
  LaunchedMember member;  // what MemberSyscalls serves: pid, pidfd, listener, layout, brk
  pid_t original_pid = 0;  // the stub's: the process's own PID
  std::unique_ptr<StubSupervisor> stub;
  AttachStats stats;
};

class Attacher {
 public:
  // Builds the group's seccomp program; aborts if libseccomp cannot.
  explicit Attacher(AttachOptions options);

  std::variant<AttachedMember, AttachError> attach(pid_t pid);

  const AttachOptions& options() const { return options_; }
  AttachOptions& options() { return options_; }

 private:
  AttachOptions options_;
  SeccompProgram seccomp_;
};

}  // namespace pat::tracer
