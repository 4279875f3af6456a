#include "proto/exit_status.h"

#include <nlohmann/json.hpp>

#include <cassert>

namespace pat::proto {

ExitStatus ExitStatus::exited(int code) { return ExitStatus(Kind::Exited, code); }
ExitStatus ExitStatus::killed(int signal, std::optional<CoreDump> core) {
  return ExitStatus(Kind::Killed, signal, std::move(core));
}

namespace {

// The core's fields of a wire form whose "core_dumped" is true; nullopt
// when one of them has the wrong type.
std::optional<CoreDump> core_from_json(const nlohmann::json& object) {
  CoreDump core;
  if (auto file = object.find("core_file"); file != object.end()) {
    if (!file->is_string()) return std::nullopt;
    core.file = file->get<std::string>();
  }
  if (auto truncated = object.find("core_truncated"); truncated != object.end()) {
    if (!truncated->is_boolean()) return std::nullopt;
    core.truncated = truncated->get<bool>();
  }
  if (auto error = object.find("core_error"); error != object.end()) {
    if (!error->is_string()) return std::nullopt;
    core.error = error->get<std::string>();
  }
  return core;
}

}  // namespace

std::optional<ExitStatus> ExitStatus::from_siginfo(const siginfo_t& info) {
  if (info.si_pid == 0) return std::nullopt;
  switch (info.si_code) {
    case CLD_EXITED: return exited(info.si_status);
    case CLD_KILLED: return killed(info.si_status);
    case CLD_DUMPED: return killed(info.si_status, CoreDump{});
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
  if (has_code) return exited(static_cast<int>(number));
  auto dumped = object.find("core_dumped");
  if (dumped == object.end()) return killed(static_cast<int>(number));
  if (!dumped->is_boolean()) return std::nullopt;
  if (!dumped->get<bool>()) return killed(static_cast<int>(number));
  auto core = core_from_json(object);
  if (!core) return std::nullopt;
  return killed(static_cast<int>(number), std::move(core));
}

int ExitStatus::exit_code() const {
  assert(is_exit());
  return value_;
}

int ExitStatus::signal() const {
  assert(is_signal());
  return value_;
}

void ExitStatus::complete_core(CoreDump core) {
  assert(core_);
  core_ = std::move(core);
}

int ExitStatus::shell_status() const { return is_exit() ? value_ : 128 + value_; }

void ExitStatus::write_json(nlohmann::json& object) const {
  if (is_exit()) {
    object["exit_code"] = value_;
    return;
  }
  object["signal"] = value_;
  object["core_dumped"] = core_.has_value();
  if (!core_) return;
  if (core_->file) object["core_file"] = *core_->file;
  if (core_->truncated) object["core_truncated"] = true;
  if (core_->error) object["core_error"] = *core_->error;
}

std::string ExitStatus::log_field() const {
  return std::string(is_exit() ? "exit_code=" : "signal=") + std::to_string(value_);
}

}  // namespace pat::proto
