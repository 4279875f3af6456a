#include "libpat/src/polling_policy.h"

#include "base/unique_fd.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <limits>

namespace pat::dataplane {

namespace {

// Unknown (no /proc) counts as "pays" with two CPUs or more: polling was
// the rule before this check, and is right on an idle machine.
bool sample() {
  cpu_set_t cpus;
  int usable = ::sched_getaffinity(0, sizeof(cpus), &cpus) == 0 ? CPU_COUNT(&cpus) : 1;
  if (usable < 2) return false;
  UniqueFd file(::open("/proc/loadavg", O_RDONLY | O_CLOEXEC));
  if (!file) return true;
  char text[128];
  ssize_t got = ::read(file.get(), text, sizeof(text));
  if (got <= 0) return true;
  auto runnable = runnable_tasks(std::string_view(text, static_cast<std::size_t>(got)));
  return !runnable || *runnable <= static_cast<unsigned>(usable);
}

}  // namespace

std::optional<unsigned> runnable_tasks(std::string_view loadavg) {
  std::size_t field = 0;
  for (int skipped = 0; skipped < 3; ++skipped) {
    field = loadavg.find(' ', field);
    if (field == std::string_view::npos) return std::nullopt;
    field = loadavg.find_first_not_of(' ', field);
    if (field == std::string_view::npos) return std::nullopt;
  }
  unsigned runnable = 0;
  const char* begin = loadavg.data() + field;
  const char* end = loadavg.data() + loadavg.size();
  auto [stop, error] = std::from_chars(begin, end, runnable);
  if (error != std::errc() || stop == end || *stop != '/') return std::nullopt;
  return runnable;
}

bool polling_pays() {
  // Relaxed is enough: a stale answer for one wait is harmless, and two
  // threads sampling at once both get a correct one.
  static std::atomic<std::int64_t> sampled_at{std::numeric_limits<std::int64_t>::min() / 2};
  static std::atomic<bool> pays{true};
  std::int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
  std::int64_t every = std::chrono::duration_cast<std::chrono::steady_clock::duration>(kPollingSampleEvery).count();
  if (now - sampled_at.load(std::memory_order_relaxed) >= every) {
    sampled_at.store(now, std::memory_order_relaxed);
    pays.store(sample(), std::memory_order_relaxed);
  }
  return pays.load(std::memory_order_relaxed);
}

}  // namespace pat::dataplane
