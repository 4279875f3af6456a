// Waiting on a word in the arena across members: futex(2). Members share one
// mm, so FUTEX_PRIVATE_FLAG is correct and cheaper: a private futex's key is
// (mm, address) (kernel/futex/core.c get_futex_key()), the same for every
// member of the group.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

namespace pat::dataplane {

using Deadline = std::optional<std::chrono::steady_clock::time_point>;  // nullopt: forever

enum class WaitResult {
  Woken,        // woken, or the word had already changed: look again
  TimedOut,
  Interrupted,  // a signal handler ran (EINTR)
};

// Sleeps while `word` == `expected`, until woken or `deadline`
// (CLOCK_MONOTONIC, which steady_clock is on Linux).
WaitResult futex_wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected, Deadline deadline);
// Wakes up to `count` waiters of `word`.
void futex_wake(const std::atomic<std::uint32_t>& word, int count);
inline constexpr int kWakeAll = 0x7fffffff;  // INT_MAX, as futex(2) suggests for "all"

}  // namespace pat::dataplane
