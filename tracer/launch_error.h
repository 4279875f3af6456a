// LaunchError: why a program could not be launched as a member, in words a
// user can act on, and typed: what kind of failure, and for a failed set-up
// step of the member, which step and its errno. The host maps it to the
// protocol's error names in one place (daemon/host).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace pat::tracer {

// The steps of member_child_main() (tracer/member_child.cc), in order. A
// failing step is reported to the host by number, with its errno.
enum class ChildStep : int {
  ParentDeathSignal = 1,
  ParentCheck,
  NewSession,
  SignalDefaults,
  Stdio,
  WorkingDirectory,
  CloseFds,
  ResourceLimits,
  Name,
  NoNewPrivs,
  Seccomp,
  Done,  // the listener is attached; the program starts next
};
const char* to_string(ChildStep step);

struct LaunchError {
  enum class Kind {
    NotFound,
    NotExecutable,
    AddressConflict,
    SetupFailed,  // a step of the member's set-up failed: `step`, `error`
    Internal,
  };
  Kind kind;
  std::string message;  // ONE line, e.g. "/tmp/x: not an ELF executable (bad ELF magic)"
  std::uintptr_t conflict_start = 0, conflict_end = 0;  // AddressConflict: the fixed range that is taken
  std::optional<ChildStep> step = std::nullopt;  // SetupFailed: which step
  int error = 0;                  // SetupFailed: its errno

  static LaunchError not_found(const std::string& path, const std::string& why) { return {Kind::NotFound, path + ": " + why}; }
  static LaunchError not_executable(const std::string& path, const std::string& why) {
    return {Kind::NotExecutable, path + ": " + why};
  }
  // The member's set-up step failed with `error`, in the child or in the
  // check made before it (the working directory's).
  static LaunchError setup_failed(const std::string& path, ChildStep step, int error);
  static LaunchError internal(const std::string& message) { return {Kind::Internal, message}; }
};

const char* to_string(LaunchError::Kind kind);

}  // namespace pat::tracer
