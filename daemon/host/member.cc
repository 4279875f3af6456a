#include "daemon/host/member.h"


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

proto::MemberEntry Member::entry() const {
  proto::MemberEntry entry;
  entry.pid = pid();
  entry.argv = launched().argv;
  entry.program = launched().exe_path;
  entry.state = to_string(process->state());
  entry.detached = detached;
  entry.started = started;
  if (auto original = process->original_pid()) {
    entry.origin = "attached";
    entry.original_pid = entry.stub_pid = *original;
  }
  return entry;
}

proto::ExitEntry Member::exit_entry(const proto::ExitStatus& status) const {
  return {pid(), launched().argv, launched().exe_path, status, ended, ended - started};
}

}  // namespace pat::host
