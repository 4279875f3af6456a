#include "daemon/host/attach_refusal.h"

#include "base/log.h"
#include "tracer/proc_text.h"

#include <filesystem>
#include <fstream>
#include <iterator>

namespace pat::host {

using proto::ErrorCode;
using proto::ErrorReply;
using nlohmann::json;
using Kind = tracer::AttachError::Kind;

namespace {

// The program the process runs, for AddressConflict's `program`.
std::string program_of(pid_t pid) {
  std::error_code ec;
  auto path = std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec);
  return ec ? "process " + std::to_string(pid) : path.string();
}

// Whether the process has ended (gone, zombie or dead): an attach that
// failed because its target exited is the target's doing, not a fault of
// pat's, and is told as NotAttachable (bench/fault_injection.py found it
// reported as InternalError).
bool has_exited(pid_t pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
  if (!file) return true;
  std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  auto stat = tracer::parse_proc_stat(text);
  return !stat || stat->state == 'Z' || stat->state == 'X' || stat->state == 'x';
}

}  // namespace

// Every refusal of the process itself, wrong_owner included, is
// NotAttachable with its reason: PermissionDenied is kept for a caller who
// does not own the group (patd's check), so the two cannot be confused.
proto::ErrorReply attach_refusal(pid_t pid, const tracer::AttachError& error,
                                 const std::optional<ConflictHolder>& holder) {
  if (error.kind == Kind::Refused && error.refusal == tracer::AttachRefusal::AddressConflict) {
    json params = {{"program", program_of(pid)}, {"start", error.conflict.start}, {"end", error.conflict.end}};
    std::string taken_by = "something else in this group";
    if (holder) {
      params["member_pid"] = holder->pid;
      params["member_argv"] = holder->argv;
      taken_by = "member " + std::to_string(holder->pid);
    }
    return ErrorReply(ErrorCode::AddressConflict,
                      "process " + std::to_string(pid) + " uses " + hex_address(error.conflict.start) + "-" +
                          hex_address(error.conflict.end) + ", taken by " + taken_by + " (left running untouched)",
                      params);
  }
  if (error.kind == Kind::Refused) {
    return ErrorReply(ErrorCode::NotAttachable, error.message,
                      {{"pid", pid}, {"reason", tracer::to_string(error.refusal)}});
  }
  if (error.kind == Kind::Failed && has_exited(pid)) {
    return ErrorReply(ErrorCode::NotAttachable,
                      "process " + std::to_string(pid) + " exited during the attach (at step " +
                          tracer::to_string(error.step) + "); nothing of it was moved",
                      {{"pid", pid}, {"reason", tracer::to_string(tracer::AttachRefusal::NotRunning)}});
  }
  std::string message = "attaching process " + std::to_string(pid) + " failed at step " +
                        tracer::to_string(error.step) + ": " + error.message;
  return ErrorReply(ErrorCode::InternalError, message, {{"reason", message}, {"step", tracer::to_string(error.step)}});
}

}  // namespace pat::host
