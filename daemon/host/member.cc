#include "daemon/host/member.h"

#include "proto/group_object.h"
#include "tracer/proc_stats.h"

namespace pat::host {

const char* to_string(Member::State state) {
  switch (state) {
    case Member::State::Running: return "running";
    case Member::State::Leaving: return "leaving";
    case Member::State::Execed: return "execed";
    case Member::State::Exited: return "exited";
  }
  return "unknown";
}

nlohmann::json Member::to_json(bool with_usage) const {
  nlohmann::json out = {{"pid", pid()},
                        {"argv", launched.argv},
                        {"program", launched.exe_path},
                        {"state", to_string(state)},
                        {"detached", detached},
                        {"started", proto::rfc3339_utc(started)}};
  if (!with_usage) return out;
  if (auto stats = tracer::read_task_stats(pid())) {
    out["cpu_seconds"] = stats->cpu_seconds;
    out["threads"] = stats->threads;
    out["process_state"] = std::string(1, stats->state);
    if (!stats->cwd.empty()) out["cwd"] = stats->cwd;
  }
  return out;
}

nlohmann::json ExitStatus::to_json() const {
  nlohmann::json out = nlohmann::json::object();
  if (exit_code) out["exit_code"] = *exit_code;
  if (signal) {
    out["signal"] = *signal;
    out["core_dumped"] = core_dumped;
  }
  if (core_file) out["core_file"] = *core_file;
  if (core_truncated) out["core_truncated"] = true;
  if (core_error) out["core_error"] = *core_error;
  return out;
}

nlohmann::json Member::exit_json() const {
  nlohmann::json out = {{"pid", pid()}, {"argv", launched.argv}, {"program", launched.exe_path}};
  if (exit) {
    out.update(exit->to_json());
    out["ended"] = proto::rfc3339_utc(exit->ended);
    out["duration_seconds"] = exit->ended - started;
  }
  return out;
}

}  // namespace pat::host
