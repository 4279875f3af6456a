// ExitStatus: how a process ended, exactly one of "exited with code N" and
// "killed by signal N". There is no third state to forget: the constructor
// is private and the factories make one or the other. The one type for
// members (tracer/member_supervisor.h reaps them), for hosts (patd reaps the
// hosts it started) and for the wire, where it is written and read only
// here: `exit_code` xor `signal` in Run's last reply and in every
// recent_exits entry (README "JSON shapes").
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <signal.h>

#include <optional>
#include <string>

namespace pat::proto {

class ExitStatus {
 public:
  static ExitStatus exited(int code);
  static ExitStatus killed(int signal);
  // From what waitid(2) filled in: CLD_EXITED gives the exit code, CLD_KILLED
  // and CLD_DUMPED the signal. nullopt for everything that is not an end
  // (CLD_STOPPED, CLD_TRAPPED, CLD_CONTINUED, and si_pid 0: WNOHANG found
  // nothing).
  static std::optional<ExitStatus> from_siginfo(const siginfo_t& info);
  // From a JSON object carrying exactly one of "exit_code" and "signal" as an
  // integer; nullopt otherwise.
  static std::optional<ExitStatus> from_json(const nlohmann::json& object);

  bool is_exit() const { return kind_ == Kind::Exited; }
  bool is_signal() const { return kind_ == Kind::Killed; }
  int exit_code() const;  // only when is_exit()
  int signal() const;     // only when is_signal()
  // What a shell reports: the exit code, or 128 + the signal.
  int shell_status() const;

  // Adds "exit_code" or "signal" to `object`.
  void write_json(nlohmann::json& object) const;
  // "exit_code=N" or "signal=N": the field of a log line.
  std::string log_field() const;

  bool operator==(const ExitStatus&) const = default;

 private:
  enum class Kind { Exited, Killed };
  ExitStatus(Kind kind, int value) : kind_(kind), value_(value) {}
  Kind kind_;
  int value_;
};

}  // namespace pat::proto
