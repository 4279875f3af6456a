#include "daemon/host/member.h"

#include "proto/group_object.h"
#include "tracer/proc_stats.h"

namespace pat::host {

const char* to_string(tracer::SupervisedMember::State state) {
  using State = tracer::SupervisedMember::State;
  switch (state) {
    case State::Running: return "running";
    case State::Leaving: return "leaving";
    case State::Execed: return "execed";
    case State::Exited: return "exited";
  }
  return "unknown";
}

nlohmann::json Member::to_json(bool with_usage) const {
  nlohmann::json out = {{"pid", pid()},
                        {"argv", launched().argv},
                        {"program", launched().exe_path},
                        {"state", to_string(process->state())},
                        {"detached", detached},
                        {"started", proto::rfc3339_utc(started)}};
  if (!with_usage) return out;
  if (auto stats = tracer::read_task_stats(pid())) {
    out["cpu_seconds"] = stats->cpu_seconds;
    out["threads"] = stats->threads;
  }
  return out;
}

nlohmann::json Member::exit_json(const proto::ExitStatus& status) const {
  nlohmann::json out = {{"pid", pid()}, {"argv", launched().argv}, {"program", launched().exe_path}};
  status.write_json(out);
  out["ended"] = proto::rfc3339_utc(ended);
  out["duration_seconds"] = ended - started;
  return out;
}

}  // namespace pat::host
