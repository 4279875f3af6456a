// MemberLauncher: userland exec. Loads a program into the caller's (the
// host's) address space and starts it as a new member process sharing that
// address space (DESIGN "Launching a member"). Knows nothing of the daemon.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "base/unique_fd.h"
#include "proto/defaults.h"
#include "tracer/initial_stack.h"
#include "tracer/launch_error.h"
#include "tracer/member_layout.h"
#include "tracer/nonpic_build.h"
#include "tracer/seccomp_program.h"

namespace pat::tracer {

// What the host asks for. Paths are absolute (the client resolved PATH already).
struct LaunchSpec {
  std::string path;                       // program to run, absolute
  std::vector<std::string> argv;          // argv[0] as the user typed it
  std::vector<std::string> env;           // "K=V"
  int cwd_fd = -1;                        // O_PATH|O_DIRECTORY fd in the host; borrowed; must be searchable. -1: the host's cwd
  mode_t umask = proto::kDefaultUmask;
  std::vector<std::pair<int, struct rlimit>> rlimits;  // RLIMIT_* -> value; clamped to the host's hard limits
  std::array<int, 3> stdio{-1, -1, -1};   // fds in the host's table; borrowed; become 0,1,2. -1: /dev/null
  std::map<std::string, std::string> extra_env;  // overrides/extends env (e.g. PAT_GROUP)
  bool stopped = false;  // start stopped (SIGSTOP) just before the program's first instruction
};

// The member's private brk heap: where MemberSyscalls emulates its break.
struct BrkArea {
  Range reservation;             // PROT_NONE until the break grows into it
  std::uint64_t data_limit = 0;  // RLIMIT_DATA (soft) at launch; RLIM_INFINITY for none
  std::uint64_t data_size = 0;   // writable bytes of the image, counted against data_limit like the kernel's end_data - start_data
  std::uintptr_t initial_break = 0;  // 0: reservation.start. An attached process's break as it was (tracer/attach/)
};

struct LaunchedMember {
  pid_t pid = 0;
  UniqueFd pidfd;                 // from CLONE_PIDFD
  UniqueFd listener;              // the member's SECCOMP_RET_USER_NOTIF listener
  std::string exe_path;           // the file mapped as the program (after #! resolution), canonical
  std::vector<std::string> argv;  // argv after #! rewriting
  // What the kernel would show in /proc/PID/auxv and use for a core file,
  // were the auxv not per address space (it shows the host's): debuggers
  // and the core writer need the member's own.
  std::uintptr_t program_bias = 0;      // load bias of exe_path (0 for ET_EXEC)
  std::uintptr_t interpreter_base = 0;  // AT_BASE: where ld.so was mapped (0: static)
  std::vector<std::uint64_t> auxv;      // the aux vector on its stack (aux_vector_at), AT_NULL last
  UniqueFd cwd;                         // O_PATH: the directory it started in (where a relative core goes)
  std::unique_ptr<MemberLayout> layout;
  BrkArea brk;
  // Set when the program's non-PIC build was passed over as stale, so this
  // member runs the program itself (nonpic_build.h).
  std::optional<StaleBuild> stale_build;
};

// A child that was cloned but never became a member: its set-up failed, or
// it did not report in time. It has been sent SIGKILL; whoever launched it
// reaps it (MemberSupervisor, through which every wait goes).
struct UnbornChild {
  pid_t pid = 0;
  UniqueFd pidfd;
};

class MemberLauncher {
 public:
  // Builds the seccomp program once and reads the machine's auxv facts once.
  // Aborts if libseccomp cannot build the program: nothing works without it.
  MemberLauncher();

  // Synchronous: returns once the child has handed over its seccomp listener
  // (a few hundred µs; gives up after kHandoverTimeout); with spec.stopped
  // the child stops itself right after (MemberSupervisor::launch waits for
  // that). Must be called from
  // a thread that lives as long as the member (MemberSupervisor's
  // supervising thread): PR_SET_PDEATHSIG fires when the thread that created
  // the member exits, not the process. A failure after the clone leaves the
  // killed child in `unborn`, for the caller to reap.
  std::variant<LaunchedMember, LaunchError> launch(const LaunchSpec& spec, std::optional<UnbornChild>& unborn);

  static constexpr int kHandoverTimeoutMs = 5000;

 private:
  SeccompProgram seccomp_;
  MachineAuxv machine_;
  ProgramMapper programs_;
};

// The member's stack size for a given RLIMIT_STACK soft limit: unlimited means
// 8 MiB (the kernel's _STK_LIM default); clamped to [256 KiB, 1 GiB]. The
// stack is one fixed mapping (no MAP_GROWSDOWN: its growth rules are fragile
// and would let one member's stack grow into another's mappings), reserved
// with MAP_NORESERVE, so only touched pages cost memory.
std::size_t member_stack_size(rlim_t stack_limit);

}  // namespace pat::tracer
