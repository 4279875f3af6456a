#include "tracer/proc_stats.h"

#include <limits.h>
#include <unistd.h>

#include "tracer/proc_text.h"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

namespace pat::tracer {

namespace {

std::optional<std::string> read_whole(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// "Name:   1234 kB" lines of /proc/PID/status and smaps_rollup, in bytes.
std::optional<std::uint64_t> kb_field(const std::string& path, std::string_view name) {
  auto text = read_whole(path);
  if (!text) return std::nullopt;
  auto kb = parse_status_number(*text, name);
  if (!kb) return std::nullopt;
  return *kb * 1024;
}

}  // namespace

std::optional<TaskStats> read_task_stats(pid_t pid) {
  auto text = read_whole("/proc/" + std::to_string(pid) + "/stat");
  if (!text) return std::nullopt;
  auto stat = parse_proc_stat(*text);
  if (!stat) return std::nullopt;
  double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  TaskStats stats;
  stats.cpu_seconds = static_cast<double>(stat->utime_ticks + stat->stime_ticks) / ticks;
  stats.threads = static_cast<int>(std::min<std::uint64_t>(stat->num_threads, INT32_MAX));
  stats.state = stat->state;
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
