#include "proto/errors.h"

#include <array>
#include <cassert>

namespace pat::proto {

namespace {

constexpr std::array kErrors = {
    ErrorInfo{ErrorCode::InterfaceNotFound, "org.varlink.service.InterfaceNotFound", kExitPatError,
              "no such interface"},
    ErrorInfo{ErrorCode::MethodNotFound, "org.varlink.service.MethodNotFound", kExitPatError, "no such method"},
    ErrorInfo{ErrorCode::MethodNotImplemented, "org.varlink.service.MethodNotImplemented", kExitPatError,
              "method not implemented"},
    // A refusal: a parameter the daemon cannot accept, such as a --cwd the
    // group owner may not enter.
    ErrorInfo{ErrorCode::InvalidParameter, "org.varlink.service.InvalidParameter", kExitRefused,
              "invalid parameter"},
    ErrorInfo{ErrorCode::ExpectedMore, "org.varlink.service.ExpectedMore", kExitPatError,
              "this method streams: call it with \"more\": true"},
    ErrorInfo{ErrorCode::InvalidMessage, "io.pat.InvalidMessage", kExitPatError, "message is not a valid call"},
    ErrorInfo{ErrorCode::PermissionDenied, "io.pat.PermissionDenied", kExitRefused, "permission denied"},
    ErrorInfo{ErrorCode::InvalidGroupName, "io.pat.InvalidGroupName", kExitRefused,
              "group names are 1-64 characters from [A-Za-z0-9_.-]"},
    ErrorInfo{ErrorCode::GroupNotFound, "io.pat.GroupNotFound", kExitRefused, "no such group"},
    ErrorInfo{ErrorCode::GroupExists, "io.pat.GroupExists", kExitRefused, "a group of that name exists"},
    ErrorInfo{ErrorCode::GroupBusy, "io.pat.GroupBusy", kExitRefused, "the group has running members"},
    ErrorInfo{ErrorCode::GroupUnavailable, "io.pat.GroupUnavailable", kExitRefused,
              "the group's host is not answering"},
    ErrorInfo{ErrorCode::MemberNotFound, "io.pat.MemberNotFound", kExitRefused, "no such member"},
    ErrorInfo{ErrorCode::ResourceExhausted, "io.pat.ResourceExhausted", kExitRefused, "a limit was reached"},
    ErrorInfo{ErrorCode::ProgramNotFound, "io.pat.ProgramNotFound", kExitNotFound, "program not found"},
    ErrorInfo{ErrorCode::ProgramNotExecutable, "io.pat.ProgramNotExecutable", kExitCannotExecute,
              "program cannot be run"},
    ErrorInfo{ErrorCode::AddressConflict, "io.pat.AddressConflict", kExitCannotExecute,
              "the program's fixed address range is taken in this group"},
    ErrorInfo{ErrorCode::NotAttachable, "io.pat.NotAttachable", kExitRefused,
              "the process cannot be moved into the group"},
    ErrorInfo{ErrorCode::InternalError, "io.pat.InternalError", kExitPatError, "internal error"},
};

}  // namespace

const ErrorInfo& error_info(ErrorCode code) {
  for (const auto& info : kErrors) {
    if (info.code == code) return info;
  }
  assert(false && "ErrorCode missing from kErrors");
  __builtin_unreachable();
}

std::optional<ErrorCode> error_code_from_name(std::string_view name) {
  for (const auto& info : kErrors) {
    if (info.name == name) return info.code;
  }
  return std::nullopt;
}

Error Error::make(ErrorCode code, std::string message, nlohmann::json parameters) {
  if (!parameters.is_object()) parameters = nlohmann::json::object();
  parameters["message"] = std::move(message);
  return Error{std::string(error_info(code).name), std::move(parameters)};
}

std::string Error::message() const {
  if (auto it = parameters.find("message"); it != parameters.end() && it->is_string()) return it->get<std::string>();
  if (auto code = error_code_from_name(name)) return std::string(error_info(*code).summary);
  return name;
}

int Error::exit_code() const {
  if (auto code = error_code_from_name(name)) return error_info(*code).exit_code;
  return kExitRefused;
}

}  // namespace pat::proto
