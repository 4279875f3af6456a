#include "proto/daemon_event.h"

#include "proto/group_object.h"

namespace pat::proto {

DaemonEvent::DaemonEvent(std::string_view kind, std::string group, std::optional<uid_t> owner_uid)
    : event(kind), time(unix_now()), group(std::move(group)), owner_uid(owner_uid) {}

nlohmann::json DaemonEvent::to_json() const {
  nlohmann::json out = {{"event", event}, {"time", rfc3339_utc(time)}};
  if (!group.empty()) out["group"] = group;
  if (owner_uid) out["owner_uid"] = *owner_uid;
  if (host_pid) out["host_pid"] = *host_pid;
  if (member) out["member"] = *member;
  if (exit) out["exit"] = *exit;
  if (attach) out["attach"] = *attach;
  if (host_exit) {
    nlohmann::json status = nlohmann::json::object();
    host_exit->write_json(status);
    out["host_exit"] = std::move(status);
  }
  if (reason) out["reason"] = *reason;
  if (error) out["error"] = *error;
  if (program) out["program"] = *program;
  if (members) out["members"] = *members;
  if (victim_pid) out["victim_pid"] = *victim_pid;
  if (missed) out["missed"] = *missed;
  return out;
}

std::optional<DaemonEvent> member_event_from_host(const std::string& group, uid_t owner,
                                                  const nlohmann::json& reply) {
  auto kind = reply.find("event");
  auto member = reply.find("member");
  if (kind == reply.end() || !kind->is_string() || member == reply.end()) return std::nullopt;
  std::string name = kind->get<std::string>();
  if (name != event::kMemberStart && name != event::kMemberAttach && name != event::kMemberExec &&
      name != event::kMemberExit)
    return std::nullopt;
  if (check_process_entry(*member, "member")) return std::nullopt;
  DaemonEvent out(name, group, owner);
  out.member = *member;
  // The usage figures belong to Group.Show, not to an event.
  for (const char* usage : {"cpu_seconds", "threads", "mapped_bytes", "resident_bytes"}) out.member->erase(usage);
  if (auto exit = reply.find("exit"); exit != reply.end()) {
    if (check_process_entry(*exit, "exit") || !ExitStatus::from_json(*exit)) return std::nullopt;
    out.exit = *exit;
  }
  if (auto attach = reply.find("attach"); attach != reply.end()) {
    if (name != event::kMemberAttach || !attach->is_object()) return std::nullopt;
    out.attach = *attach;
  }
  return out;
}

}  // namespace pat::proto
