// `patctl events`: follows io.pat.Daemon.Events until interrupted or patd
// goes away. One line per event, flushed at once so a pipe sees it as it
// happens; with --json, each reply as one JSON object per line.
#include "client/commands.h"
#include "client/daemon_connection.h"
#include "client/terminal_output.h"
#include "proto/daemon_event.h"
#include "proto/errors.h"
#include "proto/exit_status.h"
#include "proto/interface.h"

#include <cstdio>
#include <iostream>

namespace pat::client {

using nlohmann::json;

namespace {

// 'text' (built by appending: GCC 12 reports a false -Wrestrict for
// "'" + std::string).
std::string quoted(const std::string& text) {
  std::string out(1, '\'');
  out += text;
  out += '\'';
  return out;
}

// "key=value" for each field an event of this kind carries, in a fixed order.
std::string event_details(const json& event) {
  std::string out;
  auto add = [&out](const std::string& key, const std::string& value) {
    if (!out.empty()) out += ' ';
    out += key + "=" + value;
  };
  auto scalar = [](const json& value) { return value.is_string() ? printable(value.get<std::string>()) : value.dump(); };
  if (auto member = event.find("member"); member != event.end() && member->is_object()) {
    if (member->contains("pid")) add("pid", scalar((*member)["pid"]));
    if (member->contains("argv")) add("command", quoted(command_line((*member)["argv"])));
  }
  if (auto exit = event.find("exit"); exit != event.end()) {
    if (auto status = proto::ExitStatus::from_json(*exit)) {
      add(status->is_exit() ? "exit_code" : "signal",
          std::to_string(status->is_exit() ? status->exit_code() : status->signal()));
    }
  }
  if (auto host_exit = event.find("host_exit"); host_exit != event.end()) {
    if (auto status = proto::ExitStatus::from_json(*host_exit)) {
      add(status->is_exit() ? "host_exit_code" : "host_signal",
          std::to_string(status->is_exit() ? status->exit_code() : status->signal()));
    }
  }
  for (const char* key : {"host_pid", "program", "error", "members", "victim_pid", "missed", "reason"}) {
    auto it = event.find(key);
    if (it == event.end()) continue;
    add(key, std::string_view(key) == "reason" ? quoted(scalar(*it)) : scalar(*it));
  }
  return out;
}

void print_event(const json& event, bool as_json) {
  if (as_json) {
    std::cout << event.dump() << std::endl;
    return;
  }
  std::string kind = event.value("event", "");
  if (kind == proto::event::kSubscribed) return;  // only says the stream is live
  std::printf("%s %-15s %s %s\n", printable(event.value("time", "")).c_str(), printable(kind).c_str(),
              printable(event.value("group", "-")).c_str(), event_details(event).c_str());
  std::fflush(stdout);
}

}  // namespace

int events_command(const GlobalOptions& global, const EventsOptions& options) {
  json parameters = json::object();
  if (options.group) parameters["group"] = *options.group;
  try {
    auto connection = DaemonConnection::open(global.socket);
    connection.send(proto::Call{std::string(proto::method::kDaemonEvents), std::move(parameters), true});
    for (;;) {
      auto reply = connection.receive(std::nullopt);
      if (reply->error) return report_refusal(reply->error->name, reply->error->message(), reply->error->exit_code());
      print_event(reply->parameters, global.json);
      if (!reply->continues) return proto::kExitOk;
    }
  } catch (const ConnectionError& e) {
    std::fprintf(stderr, "patctl: %s\n", e.what());
    return proto::kExitPatError;
  }
}

}  // namespace pat::client
