#include "tracer/launch_error.h"

#include <cstring>

namespace pat::tracer {

const char* to_string(LaunchError::Kind kind) {
  switch (kind) {
    case LaunchError::Kind::NotFound: return "not_found";
    case LaunchError::Kind::NotExecutable: return "not_executable";
    case LaunchError::Kind::AddressConflict: return "address_conflict";
    case LaunchError::Kind::SetupFailed: return "setup_failed";
    case LaunchError::Kind::Internal: return "internal";
  }
  return "?";
}

const char* to_string(ChildStep step) {
  switch (step) {
    case ChildStep::ParentDeathSignal: return "prctl(PR_SET_PDEATHSIG)";
    case ChildStep::ParentCheck: return "parent check (host died during launch)";
    case ChildStep::NewSession: return "setsid";
    case ChildStep::SignalDefaults: return "rt_sigaction(SIG_DFL)";
    case ChildStep::Stdio: return "dup3(stdio)";
    case ChildStep::WorkingDirectory: return "fchdir(cwd)";
    case ChildStep::CloseFds: return "close_range";
    case ChildStep::ResourceLimits: return "prlimit";
    case ChildStep::Name: return "prctl(PR_SET_NAME)";
    case ChildStep::NoNewPrivs: return "prctl(PR_SET_NO_NEW_PRIVS)";
    case ChildStep::Seccomp: return "seccomp(SECCOMP_SET_MODE_FILTER)";
    case ChildStep::Done: return "done";
  }
  return "unknown step";
}

LaunchError LaunchError::setup_failed(const std::string& path, ChildStep step, int error) {
  LaunchError failure{Kind::SetupFailed,
                      path + ": member set-up step " + to_string(step) + " failed: " + std::strerror(error)};
  failure.step = step;
  failure.error = error;
  return failure;
}

}  // namespace pat::tracer
