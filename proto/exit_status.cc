#include "proto/exit_status.h"

#include <nlohmann/json.hpp>

#include <cassert>

namespace pat::proto {

ExitStatus ExitStatus::exited(int code) { return ExitStatus(Kind::Exited, code); }
ExitStatus ExitStatus::killed(int signal) { return ExitStatus(Kind::Killed, signal); }

std::optional<ExitStatus> ExitStatus::from_siginfo(const siginfo_t& info) {
  if (info.si_pid == 0) return std::nullopt;
  switch (info.si_code) {
    case CLD_EXITED: return exited(info.si_status);
    case CLD_KILLED:
    case CLD_DUMPED: return killed(info.si_status);
    default: return std::nullopt;
  }
}

std::optional<ExitStatus> ExitStatus::from_json(const nlohmann::json& object) {
  if (!object.is_object()) return std::nullopt;
  auto code = object.find("exit_code");
  auto signal = object.find("signal");
  bool has_code = code != object.end() && !code->is_null();
  bool has_signal = signal != object.end() && !signal->is_null();
  if (has_code == has_signal) return std::nullopt;
  const auto& value = has_code ? *code : *signal;
  if (!value.is_number_integer()) return std::nullopt;
  auto number = value.get<long long>();
  if (number < 0 || number > 255) return std::nullopt;  // an exit code is 8 bits; signals end at SIGRTMAX (64)
  return has_code ? exited(static_cast<int>(number)) : killed(static_cast<int>(number));
}

int ExitStatus::exit_code() const {
  assert(is_exit());
  return value_;
}

int ExitStatus::signal() const {
  assert(is_signal());
  return value_;
}

int ExitStatus::shell_status() const { return is_exit() ? value_ : 128 + value_; }

void ExitStatus::write_json(nlohmann::json& object) const { object[is_exit() ? "exit_code" : "signal"] = value_; }

std::string ExitStatus::log_field() const {
  return std::string(is_exit() ? "exit_code=" : "signal=") + std::to_string(value_);
}

}  // namespace pat::proto
