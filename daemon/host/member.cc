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

nlohmann::json Member::exit_json() const {
  nlohmann::json out = {{"pid", pid()}, {"argv", launched.argv}, {"program", launched.exe_path}};
  if (exit) {
    if (exit->exit_code) out["exit_code"] = *exit->exit_code;
    if (exit->signal) out["signal"] = *exit->signal;
    out["ended"] = proto::rfc3339_utc(exit->ended);
    out["duration_seconds"] = exit->ended - started;
  }
  return out;
}

}  // namespace pat::host
