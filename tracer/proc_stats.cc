#include "tracer/proc_stats.h"

#include <limits.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace pat::tracer {

namespace {

// "Name:   1234 kB" lines of /proc/PID/status and smaps_rollup.
std::optional<std::uint64_t> kb_field(const std::string& path, const std::string& name) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + ":", 0) != 0) continue;
    std::istringstream fields(line.substr(name.size() + 1));
    std::uint64_t kb = 0;
    if (fields >> kb) return kb * 1024;
  }
  return std::nullopt;
}

}  // namespace

std::optional<TaskStats> read_task_stats(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(in, text)) return std::nullopt;
  // The command name (field 2) may hold spaces and parentheses: fields are
  // counted from the last ')'. utime, stime are fields 14, 15 and
  // num_threads field 20 (proc(5)), i.e. 12th, 13th and 18th after it.
  auto close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  long threads = 0;
  TaskStats stats;
  for (int index = 3; fields >> field; ++index) {
    if (index == 3) stats.state = field.empty() ? '?' : field.front();
    if (index == 14) utime = std::stoull(field);
    if (index == 15) stime = std::stoull(field);
    if (index == 20) {
      threads = std::stol(field);
      break;
    }
  }
  double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  stats.cpu_seconds = static_cast<double>(utime + stime) / ticks;
  stats.threads = static_cast<int>(threads);
  char cwd[PATH_MAX];
  ssize_t n = ::readlink(("/proc/" + std::to_string(pid) + "/cwd").c_str(), cwd, sizeof(cwd));
  if (n > 0) stats.cwd.assign(cwd, static_cast<std::size_t>(n));
  return stats;
}

std::string read_comm(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::string comm;
  std::getline(in, comm);
  return comm;
}

std::optional<AddressSpaceStats> read_address_space_stats(pid_t pid) {
  std::string base = "/proc/" + std::to_string(pid);
  auto size = kb_field(base + "/status", "VmSize");
  auto rss = kb_field(base + "/status", "VmRSS");
  if (!size || !rss) return std::nullopt;
  return AddressSpaceStats{*size, *rss, kb_field(base + "/smaps_rollup", "Pss").value_or(0)};
}

}  // namespace pat::tracer
