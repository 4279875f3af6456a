// `patctl ps`: the members of your groups as ps(1) would show them if the
// kernel could. ps itself reads a member's command line, environment and RSS
// from the group's shared address space (so every member shows the group's
// title and the group's RSS); the host knows each member's own argv, and
// measures its cwd (per process) and the memory it owns (its ledger).
#include "client/commands.h"
#include "client/terminal_output.h"

#include <iostream>

namespace pat::client {

using nlohmann::json;

namespace {

std::string bytes_or_dash(const json& member, const char* key) {
  auto it = member.find(key);
  return it != member.end() && it->is_number() ? human_bytes(it->get<double>()) : "-";
}

}  // namespace

int ps_command(const GlobalOptions& global, const PsOptions& options) {
  int exit_code = 0;
  auto groups = shown_groups(global, options.group, exit_code);
  if (!groups) return exit_code;
  json members = json::array();
  for (const auto& group : *groups) {
    for (auto member : group.value("members", json::array())) {
      member["group"] = group.value("name", "");
      members.push_back(std::move(member));
    }
  }
  if (global.json) {
    std::cout << members.dump(2) << '\n';
    return 0;
  }
  Table table({"PID", "GROUP", "STAT", "RSS", "TIME", "CWD", "COMMAND"});
  for (const auto& m : members) {
    auto cpu = m.find("cpu_seconds");
    table.add({std::to_string(m.value("pid", 0L)), printable(m.value("group", "")),
               printable(m.value("process_state", "-")), bytes_or_dash(m, "resident_bytes"),
               cpu != m.end() && cpu->is_number() ? human_duration(cpu->get<double>()) : "-",
               printable(m.value("cwd", "-")), command_line(m.value("argv", json::array()))});
  }
  std::cout << table.render() << std::flush;
  return 0;
}

}  // namespace pat::client
