#include "proto/group_object.h"

#include <chrono>
#include <cmath>
#include <ctime>

namespace pat::proto {

bool is_valid_group_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name == "." || name == "..") return false;
  for (char c : name) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-';
    if (!ok) return false;
  }
  return true;
}

namespace {

bool is_uint(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_number_unsigned();
}

bool is_string_array(const nlohmann::json& value) {
  if (!value.is_array()) return false;
  for (const auto& item : value) {
    if (!item.is_string()) return false;
  }
  return true;
}

}  // namespace

std::optional<std::string> check_process_entry(const nlohmann::json& entry, const char* list) {
  if (!entry.is_object()) return std::string(list) + " entry is not an object";
  if (!is_uint(entry, "pid")) return std::string(list) + " entry without a numeric pid";
  auto argv = entry.find("argv");
  if (argv == entry.end() || !is_string_array(*argv)) return std::string(list) + " entry without argv";
  return std::nullopt;
}

std::optional<std::string> check_group_object(const nlohmann::json& group) {
  if (!group.is_object()) return "group is not an object";
  auto name = group.find("name");
  if (name == group.end() || !name->is_string()) return "group without a name";
  for (const char* key : {"owner_uid", "owner_gid", "host_pid"}) {
    if (!is_uint(group, key)) return std::string("group without a numeric ") + key;
  }
  auto created = group.find("created");
  if (created == group.end() || !created->is_string()) return "group without a created time";
  auto members = group.find("members");
  if (members == group.end() || !members->is_array()) return "group without a members array";
  for (const auto& member : *members) {
    if (auto problem = check_process_entry(member, "members")) return problem;
    auto state = member.find("state");
    if (state == member.end() || !state->is_string()) return "members entry without a state";
  }
  auto exits = group.find("recent_exits");
  if (exits == group.end() || !exits->is_array()) return "group without a recent_exits array";
  for (const auto& exit : *exits) {
    if (auto problem = check_process_entry(exit, "recent_exits")) return problem;
  }
  auto stale = group.find("stale_builds");
  if (stale != group.end()) {
    if (!stale->is_array()) return "stale_builds is not an array";
    for (const auto& entry : *stale) {
      if (!entry.is_object() || !entry.contains("build") || !entry["build"].is_string() || !entry.contains("reason") ||
          !entry["reason"].is_string()) {
        return "stale_builds entry without a build and reason";
      }
    }
  }
  return std::nullopt;
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::size_t member_count(const nlohmann::json& group) { return group.at("members").size(); }

nlohmann::json MemberEntry::to_json() const {
  nlohmann::json out = {{"pid", pid},           {"argv", argv},         {"program", program},
                        {"state", state},       {"detached", detached}, {"started", rfc3339_utc(started)},
                        {"origin", origin}};
  if (original_pid) out["original_pid"] = *original_pid;
  if (stub_pid) out["stub_pid"] = *stub_pid;
  if (cpu_seconds) out["cpu_seconds"] = *cpu_seconds;
  if (threads) out["threads"] = *threads;
  if (mapped_bytes) out["mapped_bytes"] = *mapped_bytes;
  if (resident_bytes) out["resident_bytes"] = *resident_bytes;
  if (process_state) out["process_state"] = *process_state;
  if (cwd) out["cwd"] = *cwd;
  return out;
}

nlohmann::json AttachEntry::to_json() const {
  return {{"pid", pid},
          {"original_pid", original_pid},
          {"stopped_seconds", stopped_seconds},
          {"total_seconds", total_seconds},
          {"bytes_copied", bytes_copied},
          {"bytes_copied_stopped", bytes_copied_stopped},
          {"threads", threads},
          {"fds", fds}};
}

nlohmann::json ExitEntry::to_json() const {
  nlohmann::json out = {{"pid", pid}, {"argv", argv}, {"program", program}};
  status.write_json(out);
  out["ended"] = rfc3339_utc(ended);
  out["duration_seconds"] = duration_seconds;
  return out;
}

nlohmann::json ArenaEntry::to_json() const {
  return {{"size_bytes", size_bytes},
          {"members", members},
          {"members_ending", members_ending},
          {"channels", channels},
          {"buffers", buffers},
          {"buffer_bytes", buffer_bytes},
          {"retained_free_bytes", retained_free_bytes},
          {"discarded_bytes", discarded_bytes},
          {"owed_frees", owed_frees},
          {"allocator_owner_deaths", allocator_owner_deaths},
          {"allocator_damaged", allocator_damaged}};
}

nlohmann::json MemoryEntry::to_json() const {
  nlohmann::json out = nlohmann::json::object();
  if (rss_bytes) out["rss_bytes"] = *rss_bytes;
  if (pss_bytes) out["pss_bytes"] = *pss_bytes;
  if (size_bytes) out["size_bytes"] = *size_bytes;
  if (pinned_regions) out["pinned_regions"] = *pinned_regions;
  if (arena) out["arena"] = arena->to_json();
  return out;
}

nlohmann::json StaleBuildEntry::to_json() const {
  nlohmann::json out = {{"build", build}, {"reason", reason}};
  if (group) out["group"] = *group;
  return out;
}

nlohmann::json GroupObject::to_json() const {
  nlohmann::json member_list = nlohmann::json::array(), exit_list = nlohmann::json::array(),
                 stale_list = nlohmann::json::array();
  for (const auto& member : members) member_list.push_back(member.to_json());
  for (const auto& exit : recent_exits) exit_list.push_back(exit.to_json());
  for (const auto& stale : stale_builds) stale_list.push_back(stale.to_json());
  return {{"name", name},
          {"owner_uid", owner_uid},
          {"owner_gid", owner_gid},
          {"host_pid", host_pid},
          {"created", rfc3339_utc(created)},
          {"state", state},
          {"ephemeral", ephemeral},
          {"allow_cross_mapping", allow_cross_mapping},
          {"members", std::move(member_list)},
          {"recent_exits", std::move(exit_list)},
          {"stale_builds", std::move(stale_list)},
          {"memory", memory.to_json()}};
}

nlohmann::json MemberEvent::to_json() const {
  nlohmann::json out = {{"event", event}, {"member", member.to_json()}, {"group", group.to_json()}};
  if (exit) out["exit"] = exit->to_json();
  if (attach) out["attach"] = attach->to_json();
  return out;
}

std::string rfc3339_utc(double unix_seconds) {
  auto whole = static_cast<std::time_t>(std::floor(unix_seconds));
  int millis = static_cast<int>((unix_seconds - static_cast<double>(whole)) * 1000.0);
  std::tm utc{};
  gmtime_r(&whole, &utc);
  char text[96];
  std::snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900, utc.tm_mon + 1,
                utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, millis);
  return text;
}

}  // namespace pat::proto
