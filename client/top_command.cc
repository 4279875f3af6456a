// `patctl top`: members of every group you can see, busiest first, refreshed
// like top(1). CPU% is the change in each member's own cpu_seconds between
// two looks; memory is what the member owns (the group's RSS is shown once
// per group, since the kernel keeps it per address space).
#include "client/commands.h"
#include "client/terminal_output.h"
#include "proto/interface.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <iostream>
#include <map>
#include <thread>

namespace pat::client {

using nlohmann::json;

namespace {

struct Row {
  std::string group;
  long pid;
  double cpu_percent;
  json member;
};

volatile std::sig_atomic_t stop_requested = 0;
void request_stop(int) { stop_requested = 1; }

void render(const std::vector<json>& groups, const std::vector<Row>& rows, double interval, bool clear) {
  if (clear) std::cout << "\033[H\033[2J";
  std::size_t members = 0;
  Table summary({"GROUP", "MEMBERS", "RSS (group)", "HOST PID"});
  for (const auto& group : groups) {
    auto count = group.value("members", json::array()).size();
    members += count;
    const auto& memory = group.value("memory", json::object());
    summary.add({printable(group.value("name", "")), std::to_string(count),
                 memory.contains("rss_bytes") ? human_bytes(memory["rss_bytes"].get<double>()) : "-",
                 std::to_string(group.value("host_pid", 0))});
  }
  std::cout << "patctl top: " << groups.size() << " groups, " << members << " members, every " << interval
            << " s (Ctrl-C quits)\n\n"
            << summary.render() << '\n';
  Table table({"PID", "GROUP", "CPU%", "CPU TIME", "THREADS", "RESIDENT", "STATE", "COMMAND"});
  for (const auto& row : rows) {
    char percent[16];
    std::snprintf(percent, sizeof(percent), "%.1f", row.cpu_percent);
    const auto& m = row.member;
    table.add({std::to_string(row.pid), printable(row.group), percent,
               human_duration(m.value("cpu_seconds", 0.0)), std::to_string(m.value("threads", 0)),
               m.contains("resident_bytes") ? human_bytes(m["resident_bytes"].get<double>()) : "-",
               printable(m.value("state", "")), command_line(m.value("argv", json::array()))});
  }
  std::cout << table.render() << std::flush;
}

}  // namespace

int top_command(const GlobalOptions& global, const TopOptions& options) {
  std::signal(SIGINT, request_stop);
  std::signal(SIGTERM, request_stop);
  const bool clear = !global.json && !options.once && ::isatty(STDOUT_FILENO);
  std::map<long, double> last_cpu;  // pid -> cpu_seconds at the previous look
  auto last_time = std::chrono::steady_clock::now();
  for (int iteration = 0; !stop_requested; ++iteration) {
    int exit_code = 0;
    auto groups = shown_groups(global, options.group, exit_code);
    if (!groups) return exit_code;
    auto now = std::chrono::steady_clock::now();
    double elapsed = std::chrono::duration<double>(now - last_time).count();
    std::vector<Row> rows;
    std::map<long, double> cpu;
    for (const auto& group : *groups) {
      for (const auto& member : group.value("members", json::array())) {
        long pid = member.value("pid", 0L);
        double seconds = member.value("cpu_seconds", 0.0);
        cpu[pid] = seconds;
        auto before = last_cpu.find(pid);
        double percent = before == last_cpu.end() || elapsed <= 0 ? 0.0 : 100.0 * (seconds - before->second) / elapsed;
        rows.push_back({group.value("name", ""), pid, std::max(percent, 0.0), member});
      }
    }
    std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.cpu_percent > b.cpu_percent; });
    // The first look has no CPU% yet; with --once, look twice.
    bool first = iteration == 0;
    last_cpu = std::move(cpu);
    last_time = now;
    if (!(first && options.once)) {
      if (global.json) {
        json snapshot = {{"groups", *groups}, {"members", json::array()}};
        for (const auto& row : rows) {
          json entry = row.member;
          entry["group"] = row.group;
          entry["cpu_percent"] = row.cpu_percent;
          snapshot["members"].push_back(std::move(entry));
        }
        std::cout << snapshot.dump() << std::endl;
      } else {
        render(*groups, rows, options.interval, clear);
      }
      if (options.once) return 0;
    }
    auto wake = now + std::chrono::duration<double>(first && options.once ? 0.5 : options.interval);
    while (!stop_requested && std::chrono::steady_clock::now() < wake) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  return 0;
}

}  // namespace pat::client
