// The one vocabulary of errors that can reach a user. Each error has its wire
// name (varlink style, reverse domain), its patctl exit code and a short
// summary; daemon, host and client all map through this table and nowhere else.
#pragma once

#include <nlohmann/json.hpp>

#include <exception>
#include <optional>
#include <string>
#include <string_view>

namespace pat::proto {

enum class ErrorCode {
  // varlink's own (org.varlink.service): the call itself is wrong
  InterfaceNotFound,
  MethodNotFound,
  MethodNotImplemented,
  InvalidParameter,
  ExpectedMore,
  // io.pat: the message could not be read as a call at all
  InvalidMessage,
  // io.pat: the daemon refused
  PermissionDenied,
  InvalidGroupName,
  GroupNotFound,
  GroupExists,
  GroupBusy,
  GroupUnavailable,
  MemberNotFound,
  ResourceExhausted,
  // io.pat: the program to run
  ProgramNotFound,
  ProgramNotExecutable,
  AddressConflict,
  // io.pat: a process to attach
  NotAttachable,
  // io.pat: a bug or an environment problem on the daemon's side
  InternalError,
};

// patctl exit codes (README "Exit codes").
inline constexpr int kExitOk = 0;
inline constexpr int kExitRefused = 1;
inline constexpr int kExitPatError = 125;       // usage, unreachable daemon, protocol mismatch
inline constexpr int kExitCannotExecute = 126;  // as the shell: found but not runnable
inline constexpr int kExitNotFound = 127;       // as the shell: command not found

struct ErrorInfo {
  ErrorCode code;
  std::string_view name;  // on the wire
  int exit_code;          // what patctl exits with
  std::string_view summary;
};

const ErrorInfo& error_info(ErrorCode code);
std::optional<ErrorCode> error_code_from_name(std::string_view name);

// An error reply: {"error": name, "parameters": {..., "message": "..."}}.
// `message` is one human-readable line; the other parameters are structured.
struct Error {
  std::string name;
  nlohmann::json parameters = nlohmann::json::object();

  static Error make(ErrorCode code, std::string message, nlohmann::json parameters = nlohmann::json::object());

  std::string message() const;  // parameters.message, or the summary of a known name
  int exit_code() const;        // kExitRefused for names this build does not know
  bool is(ErrorCode code) const { return name == error_info(code).name; }
};

// Thrown by request handlers for any refusal; the dispatcher turns it into an
// error reply. Never escapes a connection.
class ErrorReply : public std::exception {
 public:
  explicit ErrorReply(Error error) : error_(std::move(error)) {}
  ErrorReply(ErrorCode code, std::string message, nlohmann::json parameters = nlohmann::json::object())
      : error_(Error::make(code, std::move(message), std::move(parameters))) {}
  const Error& error() const { return error_; }
  const char* what() const noexcept override { return error_.name.c_str(); }

 private:
  Error error_;
};

}  // namespace pat::proto
