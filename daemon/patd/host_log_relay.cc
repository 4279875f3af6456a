#include "daemon/patd/host_log_relay.h"

#include "base/log.h"

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <array>
#include <chrono>

namespace pat::patd {

namespace asio = boost::asio;

namespace {

// Longer lines are cut: a host line is a few hundred bytes at most.
constexpr std::size_t kMaxLineBytes = 4096;
// The rate a host may log at before lines are dropped: a busy host logs a
// few lines per member start and exit, far below this.
constexpr double kLinesPerSecond = 200;
constexpr double kBurstLines = 1000;

// A token bucket: each line takes a token; tokens come back at
// kLinesPerSecond up to kBurstLines.
class LineBudget {
 public:
  bool take() {
    auto now = std::chrono::steady_clock::now();
    tokens_ = std::min(kBurstLines, tokens_ + std::chrono::duration<double>(now - refilled_).count() * kLinesPerSecond);
    refilled_ = now;
    if (tokens_ < 1) return false;
    tokens_ -= 1;
    return true;
  }

 private:
  double tokens_ = kBurstLines;
  std::chrono::steady_clock::time_point refilled_ = std::chrono::steady_clock::now();
};

spdlog::level::level_enum level_of(std::string_view name) {
  if (name == "warning") return spdlog::level::warn;
  if (name == "error") return spdlog::level::err;
  if (name == "critical") return spdlog::level::critical;
  if (name == "debug") return spdlog::level::debug;
  if (name == "trace") return spdlog::level::trace;
  return spdlog::level::info;
}

}  // namespace

HostLogLine parse_host_log_line(std::string_view line) {
  constexpr std::string_view kComponent = " pat-host: ";
  auto time_end = line.find(' ');
  auto component = line.find(kComponent);
  if (time_end == std::string_view::npos || component == std::string_view::npos || component <= time_end) {
    return {"info", std::string(line)};
  }
  std::string level(line.substr(time_end + 1, component - time_end - 1));
  if (level != "info" && level != "warning" && level != "error" && level != "critical" && level != "debug" &&
      level != "trace") {
    return {"info", std::string(line)};
  }
  return {std::move(level), std::string(line.substr(component + kComponent.size()))};
}

asio::awaitable<void> relay_host_log(asio::io_context& io, UniqueFd log, std::string group, pid_t host_pid) {
  asio::posix::stream_descriptor pipe(io, log.release());
  LineBudget budget;
  std::uint64_t dropped = 0;
  std::string pending;
  bool cutting = false;  // inside a line already cut at kMaxLineBytes
  std::array<char, 4096> buffer;
  auto emit = [&](std::string_view line, bool cut) {
    if (!budget.take()) {
      ++dropped;
      return;
    }
    if (dropped != 0) {
      spdlog::warn("event=host.log_dropped group={} host_pid={} lines={}", group, host_pid, dropped);
      dropped = 0;
    }
    auto parsed = parse_host_log_line(line);
    spdlog::log(level_of(parsed.level), "event=host.log group={} host_pid={} text={}{}", group, host_pid,
                log_quote(parsed.text), cut ? " truncated=true" : "");
  };
  for (;;) {
    boost::system::error_code ec;
    std::size_t n = co_await pipe.async_read_some(asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
    for (std::size_t i = 0; i < n; ++i) {
      char c = buffer[i];
      if (c == '\n') {
        if (!cutting) emit(pending, false);
        pending.clear();
        cutting = false;
      } else if (!cutting) {
        pending.push_back(c);
        if (pending.size() == kMaxLineBytes) {
          emit(pending, true);
          pending.clear();
          cutting = true;
        }
      }
    }
    if (ec) break;  // EOF: every writer has gone
  }
  if (!pending.empty() && !cutting) emit(pending, false);
  if (dropped != 0) spdlog::warn("event=host.log_dropped group={} host_pid={} lines={}", group, host_pid, dropped);
}

}  // namespace pat::patd
