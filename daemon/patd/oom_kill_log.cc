#include "daemon/patd/oom_kill_log.h"

#include "base/unique_fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>

namespace pat::patd {

namespace {

// The part of __oom_kill_process's message (mm/oom_kill.c) that names the
// victim; "Out of memory" or "Memory cgroup out of memory" comes before it.
constexpr std::string_view kKilledProcess = "out of memory: Killed process ";

std::optional<pid_t> victim_of(std::string_view message) {
  auto at = message.find(kKilledProcess);
  if (at == std::string_view::npos) return std::nullopt;
  auto digits = message.substr(at + kKilledProcess.size());
  pid_t pid = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), pid);
  if (ec != std::errc() || end == digits.data()) return std::nullopt;
  return pid;
}

// "prio,seq,usec,flags;message": the timestamp in microseconds since boot.
std::optional<long long> record_usec(std::string_view record) {
  auto first = record.find(',');
  auto second = record.find(',', first + 1);
  if (first == std::string_view::npos || second == std::string_view::npos) return std::nullopt;
  long long usec = 0;
  auto [end, ec] = std::from_chars(record.data() + second + 1, record.data() + record.size(), usec);
  if (ec != std::errc()) return std::nullopt;
  return usec;
}

}  // namespace

std::optional<OomKill> find_oom_kill(std::span<const pid_t> pids, std::chrono::steady_clock::time_point since) {
  UniqueFd kmsg(::open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!kmsg) return std::nullopt;
  const long long since_usec =
      std::chrono::duration_cast<std::chrono::microseconds>(since.time_since_epoch()).count();
  std::optional<OomKill> found;
  // One record per read(2), at most CONSOLE_EXT_LOG_MAX (8192) bytes
  // (kernel/printk/printk.c); a record overwritten while we read fails with
  // EPIPE and the next read goes on; EAGAIN: the end.
  std::array<char, 8192> buffer;
  for (;;) {
    ssize_t n = ::read(kmsg.get(), buffer.data(), buffer.size());
    if (n < 0 && (errno == EPIPE || errno == EINTR)) continue;
    if (n <= 0) break;
    std::string_view record(buffer.data(), static_cast<std::size_t>(n));
    auto semicolon = record.find(';');
    if (semicolon == std::string_view::npos) continue;
    auto message = record.substr(semicolon + 1);
    message = message.substr(0, message.find('\n'));  // continuation lines follow the message
    auto victim = victim_of(message);
    if (!victim || std::find(pids.begin(), pids.end(), *victim) == pids.end()) continue;
    auto usec = record_usec(record.substr(0, semicolon));
    if (!usec || *usec < since_usec) continue;  // an earlier process that had the same pid
    found = OomKill{*victim, std::string(message)};
  }
  return found;
}

}  // namespace pat::patd
