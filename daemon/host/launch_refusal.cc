#include "daemon/host/launch_refusal.h"

#include "base/log.h"

#include <cstring>

namespace pat::host {

using proto::ErrorCode;
using proto::ErrorReply;
using nlohmann::json;
using tracer::ChildStep;
using Kind = tracer::LaunchError::Kind;

namespace {

std::string joined(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& arg : argv) {
    if (!out.empty()) out += ' ';
    out += arg;
  }
  return out;
}

ErrorReply address_conflict(const tracer::LaunchError& error, const LaunchRequestFacts& request,
                            const std::optional<ConflictHolder>& holder) {
  json params = {{"program", request.program}, {"start", error.conflict_start}, {"end", error.conflict_end}};
  std::string taken_by = "something else in this group";
  if (holder) {
    params["member_pid"] = holder->pid;
    params["member_argv"] = holder->argv;
    taken_by = "member " + std::to_string(holder->pid) + " (" + joined(holder->argv) + ")";
  }
  return ErrorReply(ErrorCode::AddressConflict,
                    request.program + " is not position-independent and needs the fixed addresses " +
                        hex_address(error.conflict_start) + "-" + hex_address(error.conflict_end) + ", taken by " + taken_by +
                        "; only one copy fits in a group's address space (for Python, run pat-python)",
                    params);
}

// A set-up step that failed. Only the working directory is the caller's to
// fix (it names one the owner may not enter: EACCES, ENOENT, ENOTDIR); every
// other step failing is the host's or the machine's problem.
ErrorReply setup_failed(const tracer::LaunchError& error, const LaunchRequestFacts& request) {
  const char* step = tracer::to_string(*error.step);
  if (error.step == ChildStep::WorkingDirectory) {
    return ErrorReply(ErrorCode::InvalidParameter,
                      "working directory " + request.cwd + ": " + std::strerror(error.error),
                      {{"parameter", "cwd"}, {"expected", "a directory the group owner can enter"}, {"step", step},
                       {"errno", error.error}});
  }
  return ErrorReply(ErrorCode::InternalError, error.message,
                    {{"reason", error.message}, {"step", step}, {"errno", error.error}});
}

}  // namespace

proto::ErrorReply launch_refusal(const tracer::LaunchError& error, const LaunchRequestFacts& request,
                                 const std::optional<ConflictHolder>& holder) {
  switch (error.kind) {
    case Kind::NotFound:
      return ErrorReply(ErrorCode::ProgramNotFound, error.message, {{"program", request.program}});
    case Kind::NotExecutable:
      return ErrorReply(ErrorCode::ProgramNotExecutable, error.message,
                        {{"program", request.program}, {"reason", error.message}});
    case Kind::AddressConflict: return address_conflict(error, request, holder);
    case Kind::SetupFailed:
      if (error.step) return setup_failed(error, request);
      break;
    case Kind::Internal: break;
  }
  return ErrorReply(ErrorCode::InternalError, error.message, {{"reason", error.message}});
}

}  // namespace pat::host
