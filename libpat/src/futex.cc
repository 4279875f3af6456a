#include "libpat/src/futex.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

namespace pat::dataplane {

namespace {

std::uint32_t* address_of(const std::atomic<std::uint32_t>& word) {
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
  return reinterpret_cast<std::uint32_t*>(const_cast<std::atomic<std::uint32_t>*>(&word));
}

}  // namespace

// FUTEX_WAIT_BITSET takes an absolute timeout on CLOCK_MONOTONIC (without
// FUTEX_CLOCK_REALTIME), so a wait interrupted and retried keeps its deadline.
WaitResult futex_wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected, Deadline deadline) {
  timespec absolute{};
  if (deadline) {
    auto since_epoch = deadline->time_since_epoch();
    if (since_epoch.count() < 0) since_epoch = {};
    auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
    absolute.tv_sec = static_cast<time_t>(seconds.count());
    absolute.tv_nsec = static_cast<long>(std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - seconds).count());
  }
  long rc = ::syscall(SYS_futex, address_of(word), FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, expected,
                      deadline ? &absolute : nullptr, nullptr, FUTEX_BITSET_MATCH_ANY);
  if (rc == 0) return WaitResult::Woken;
  switch (errno) {
    case ETIMEDOUT: return WaitResult::TimedOut;
    case EINTR: return WaitResult::Interrupted;
    default: return WaitResult::Woken;  // EAGAIN: the word changed before we slept
  }
}

void futex_wake(const std::atomic<std::uint32_t>& word, int count) {
  ::syscall(SYS_futex, address_of(word), FUTEX_WAKE | FUTEX_PRIVATE_FLAG, count, nullptr, nullptr, 0);
}

}  // namespace pat::dataplane
