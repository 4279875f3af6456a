// ExitStatus: how a process ended, exactly one of "exited with code N" and
// "killed by signal N". There is no third state to forget: the constructor
// is private and the factories make one or the other. The one type for
// members (tracer/member_supervisor.h reaps them), for hosts (patd reaps the
// hosts it started) and for the wire, where it is written and read only
// here: `exit_code` xor `signal` in Run's last reply and in every
// recent_exits entry (README "JSON shapes"), and with a signal whether the
// kernel dumped core and what became of the member's own core.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <signal.h>

#include <optional>
#include <string>
#include <utility>

namespace pat::proto {

// A core the kernel dumped (WCOREDUMP), as the host completed the member's
// own from it (tracer/core_file.h): where it is, or why there is none.
struct CoreDump {
  std::optional<std::string> file;   // the member's own core, absolute
  bool truncated = false;            // file stops at the member's RLIMIT_CORE
  std::optional<std::string> error;  // why there is no file although the kernel dumped

  bool operator==(const CoreDump&) const = default;
};

class ExitStatus {
 public:
  static ExitStatus exited(int code);
  // `core`: the kernel dumped core (CLD_DUMPED).
  static ExitStatus killed(int signal, std::optional<CoreDump> core = std::nullopt);
  // From what waitid(2) filled in: CLD_EXITED gives the exit code, CLD_KILLED
  // and CLD_DUMPED the signal (CLD_DUMPED with an empty CoreDump). nullopt for everything that is not an end
  // (CLD_STOPPED, CLD_TRAPPED, CLD_CONTINUED, and si_pid 0: WNOHANG found
  // nothing).
  static std::optional<ExitStatus> from_siginfo(const siginfo_t& info);
  // From a JSON object carrying exactly one of "exit_code" and "signal" as an
  // integer, with a signal optionally "core_dumped" (bool) and, when it is
  // true, "core_file", "core_truncated" and "core_error"; nullopt when any of
  // these is malformed.
  static std::optional<ExitStatus> from_json(const nlohmann::json& object);

  bool is_exit() const { return kind_ == Kind::Exited; }
  bool is_signal() const { return kind_ == Kind::Killed; }
  int exit_code() const;  // only when is_exit()
  int signal() const;     // only when is_signal()
  // Set when the kernel dumped core; only when is_signal().
  const std::optional<CoreDump>& core() const { return core_; }
  // What became of the dumped core; only when core() is set.
  void complete_core(CoreDump core);
  // What a shell reports: the exit code, or 128 + the signal.
  int shell_status() const;

  // Adds "exit_code", or "signal" with "core_dumped" and the core's fields
  // that apply, to `object`.
  void write_json(nlohmann::json& object) const;
  // "exit_code=N" or "signal=N": the field of a log line.
  std::string log_field() const;

  bool operator==(const ExitStatus&) const = default;

 private:
  enum class Kind { Exited, Killed };
  ExitStatus(Kind kind, int value, std::optional<CoreDump> core = std::nullopt)
      : kind_(kind), value_(value), core_(std::move(core)) {}
  Kind kind_;
  int value_;
  std::optional<CoreDump> core_;
};

}  // namespace pat::proto
