#include "client/commands.h"

#include "client/daemon_connection.h"
#include "client/terminal_output.h"
#include "proto/errors.h"
#include "proto/exit_status.h"
#include "proto/interface.h"

#include <cstdio>
#include <iostream>

namespace pat::client {

using nlohmann::json;

int report_refusal(const std::string& error_name, const std::string& message, int exit_code) {
  std::fprintf(stderr, "patctl: %s (%s)\n", printable(message).c_str(), printable(error_name).c_str());
  return exit_code;
}

CallOutcome call_daemon(const GlobalOptions& global, std::string_view method, json parameters) {
  try {
    auto reply = call_once(global.socket, proto::Call{std::string(method), std::move(parameters)});
    if (reply.error) {
      return {json(), report_refusal(reply.error->name, reply.error->message(), reply.error->exit_code())};
    }
    return {std::move(reply.parameters), proto::kExitOk};
  } catch (const ConnectionError& e) {
    std::fprintf(stderr, "patctl: %s\n", e.what());
    return {json(), proto::kExitPatError};
  }
}

std::optional<std::vector<json>> shown_groups(const GlobalOptions& global, const std::optional<std::string>& only,
                                              int& exit_code) {
  std::vector<std::string> names;
  if (only) {
    names.push_back(*only);
  } else {
    auto listed = call_daemon(global, proto::method::kGroupList, json::object());
    if (!listed.ok()) {
      exit_code = listed.exit_code;
      return std::nullopt;
    }
    for (const auto& group : listed.parameters.value("groups", json::array())) names.push_back(group.value("name", ""));
  }
  std::vector<json> groups;
  for (const auto& name : names) {
    auto shown = call_daemon(global, proto::method::kGroupShow, {{"name", name}});
    if (shown.ok()) {
      groups.push_back(shown.parameters["group"]);
    } else if (only) {
      exit_code = shown.exit_code;
      return std::nullopt;
    }  // a group that vanished between list and show is simply gone
  }
  return groups;
}

namespace {

void print_json(const json& value) { std::cout << value.dump(2) << '\n'; }

std::string text(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end()) return "-";
  if (it->is_string()) return printable(it->get<std::string>());
  return it->dump();
}

std::string exit_description(const json& exit) {
  auto status = proto::ExitStatus::from_json(exit);
  if (!status) return "-";
  return status->is_exit() ? "exit " + std::to_string(status->exit_code()) : "signal " + std::to_string(status->signal());
}

std::string bytes_field(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_number() ? human_bytes(it->get<double>()) : "-";
}

std::string cpu_field(const json& member) {
  auto it = member.find("cpu_seconds");
  return it != member.end() && it->is_number() ? human_duration(it->get<double>()) : "-";
}

// Attach stops a program for milliseconds: human_duration's 0.1 s steps
// would say nothing.
std::string milliseconds(double seconds) {
  char out[32];
  std::snprintf(out, sizeof(out), "%.1f ms", seconds * 1000);
  return out;
}

void print_group_details(const json& group) {
  std::cout << "Group " << text(group, "name") << '\n';
  Table summary({"  owner", user_name(group.value("owner_uid", 0u)) + " (uid " + text(group, "owner_uid") + ")"});
  summary.add({"  host pid", text(group, "host_pid")});
  summary.add({"  created", text(group, "created")});
  summary.add({"  state", text(group, "state")});
  summary.add({"  members", std::to_string(group.value("members", json::array()).size())});
  // RSS and PSS belong to the address space, i.e. to the whole group.
  const auto& memory = group.value("memory", json::object());
  summary.add({"  memory", "rss " + bytes_field(memory, "rss_bytes") + ", pss " + bytes_field(memory, "pss_bytes") +
                               ", mapped " + bytes_field(memory, "size_bytes") + " (whole group)"});
  if (auto arena = memory.find("arena"); arena != memory.end() && arena->is_object()) {
    summary.add({"  data plane", text(*arena, "buffers") + " buffers (" + bytes_field(*arena, "buffer_bytes") + "), " +
                                     text(*arena, "channels") + " channels, " + text(memory, "pinned_regions") +
                                     " pinned regions"});
  }
  for (const auto& stale : group.value("stale_builds", json::array())) {
    summary.add({"  stale build", text(stale, "build") + ": " + text(stale, "reason") +
                                      "; members run the position-independent program"});
  }
  std::cout << summary.render();
  const auto& members = group.value("members", json::array());
  if (!members.empty()) {
    std::cout << '\n';
    Table table({"PID", "STATE", "ORIGIN", "CPU", "THREADS", "MAPPED", "RESIDENT", "STARTED", "COMMAND"});
    for (const auto& member : members) {
      // An attached member shows the PID its process kept (its stub's).
      std::string origin = member.value("origin", std::string("launched"));
      if (origin == "attached") origin += " (pid " + text(member, "original_pid") + ")";
      table.add({text(member, "pid"), text(member, "state"), printable(origin), cpu_field(member), text(member, "threads"),
                 bytes_field(member, "mapped_bytes"), bytes_field(member, "resident_bytes"), text(member, "started"),
                 command_line(member.value("argv", json::array()))});
    }
    std::cout << table.render();
  }
  const auto& exits = group.value("recent_exits", json::array());
  if (!exits.empty()) {
    std::cout << "\nRecent exits\n";
    Table table({"PID", "STATUS", "ENDED", "COMMAND"});
    for (const auto& exit : exits) {
      table.add({text(exit, "pid"), exit_description(exit), text(exit, "ended"),
                 command_line(exit.value("argv", json::array()))});
    }
    std::cout << table.render();
  }
}

}  // namespace

int status_command(const GlobalOptions& global) {
  auto outcome = call_daemon(global, proto::method::kDaemonStatus, json::object());
  if (!outcome.ok()) return outcome.exit_code;
  const auto& status = outcome.parameters;
  if (global.json) {
    print_json(status);
    return 0;
  }
  Table table({"version", text(status, "version")});
  table.add({"pid", text(status, "pid")});
  table.add({"uptime", human_duration(status.value("uptime_seconds", 0.0))});
  table.add({"groups", text(status, "groups")});
  table.add({"connections", text(status, "connections")});
  table.add({"runtime dir", text(status, "runtime_dir")});
  for (const auto& stale : status.value("stale_builds", json::array())) {
    table.add({"stale build", "group " + text(stale, "group") + ": " + text(stale, "build") + ": " +
                                  text(stale, "reason")});
  }
  std::cout << "patd is running\n" << table.render();
  return 0;
}

int group_create_command(const GlobalOptions& global, const std::string& name, bool allow_cross_mapping) {
  json params = {{"name", name}};
  if (allow_cross_mapping) params["allow_cross_mapping"] = true;
  auto outcome = call_daemon(global, proto::method::kGroupCreate, params);
  if (!outcome.ok()) return outcome.exit_code;
  const auto& group = outcome.parameters["group"];
  if (global.json) {
    print_json(group);
  } else {
    std::cout << "created group " << text(group, "name") << " (host pid " << text(group, "host_pid") << ")\n";
  }
  return 0;
}

int group_list_command(const GlobalOptions& global) {
  auto outcome = call_daemon(global, proto::method::kGroupList, json::object());
  if (!outcome.ok()) return outcome.exit_code;
  const auto& groups = outcome.parameters.value("groups", json::array());
  if (global.json) {
    print_json(groups);
    return 0;
  }
  Table table({"NAME", "OWNER", "HOST PID", "MEMBERS", "CREATED"});
  for (const auto& group : groups) {
    table.add({text(group, "name"), user_name(group.value("owner_uid", 0u)), text(group, "host_pid"),
               std::to_string(group.value("members", json::array()).size()), text(group, "created")});
  }
  std::cout << table.render();
  return 0;
}

int group_show_command(const GlobalOptions& global, const std::string& name) {
  auto outcome = call_daemon(global, proto::method::kGroupShow, {{"name", name}});
  if (!outcome.ok()) return outcome.exit_code;
  const auto& group = outcome.parameters["group"];
  if (global.json) {
    print_json(group);
  } else {
    print_group_details(group);
  }
  return 0;
}

int group_destroy_command(const GlobalOptions& global, const std::string& name, bool force,
                          std::optional<long> grace_ms) {
  json params = {{"name", name}, {"force", force}};
  if (grace_ms) params["grace_ms"] = *grace_ms;
  auto outcome = call_daemon(global, proto::method::kGroupDestroy, params);
  if (!outcome.ok()) return outcome.exit_code;
  if (global.json) {
    print_json({{"destroyed", name}});
  } else {
    std::cout << "destroyed group " << printable(name) << '\n';
  }
  return 0;
}

int group_attach_command(const GlobalOptions& global, const std::string& name, const std::vector<long>& pids) {
  auto outcome = call_daemon(global, proto::method::kGroupAttach, {{"name", name}, {"pids", pids}});
  // Every refusal is 1 here, AddressConflict included (126 is run's "cannot
  // execute", which means nothing for a process already running).
  if (!outcome.ok()) return outcome.exit_code == proto::kExitPatError ? proto::kExitPatError : proto::kExitRefused;
  const auto& attached = outcome.parameters.value("attached", json::array());
  if (global.json) {
    print_json(outcome.parameters);
    return 0;
  }
  for (const auto& entry : attached) {
    std::cout << "attached process " << text(entry, "original_pid") << " to group " << printable(name)
              << " as member " << text(entry, "pid") << " (stopped " << milliseconds(entry.value("stopped_seconds", 0.0))
              << ", copied "
              << bytes_field(entry, "bytes_copied") << ")\n";
  }
  return 0;
}

}  // namespace pat::client
