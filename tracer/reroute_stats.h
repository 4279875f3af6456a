// RerouteStats: a group's rerouted syscalls as its syscall servers answered
// them: how many of each, and a histogram of the time from taking the
// notification (SECCOMP_IOCTL_NOTIF_RECV) to answering it (NOTIF_SEND),
// waiting for the group lock included. Every server thread records into
// it at once, so it is atomics only: no lock, nothing a rerouted call could
// wait for. The host reports a snapshot in io.pat.Host.Describe; patd
// serves it as pat_rerouted_syscall_duration_seconds (docs/metrics.md).
#pragma once

#include "proto/syscall_service.h"
#include "tracer/rerouted_syscalls.h"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <vector>

namespace pat::tracer {

class RerouteStats {
 public:
  // Upper bounds of the histogram's buckets, in seconds. A rerouted call
  // costs ~5 µs when nothing waits (seccomp_program.cc); the upper buckets
  // catch calls that waited for the group lock or mapped a large file.
  static constexpr std::array<double, 12> kBucketBounds = {2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4,
                                                           2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2, 1e-1};

  void record(long nr, std::chrono::nanoseconds took);
  // Every syscall answered at least once, in kReroutedSyscalls' order, then
  // prctl (the hostcalls). Not a consistent cut: a call being recorded may
  // be in the count but not yet in the sum.
  std::vector<proto::SyscallService> snapshot() const;

 private:
  // One per rerouted syscall, then prctl, then any other number (the filter
  // and the server disagreeing: counted, never expected).
  static constexpr std::size_t kSlots = std::size(kReroutedSyscalls) + 2;
  static std::size_t slot_of(long nr);

  struct Slot {
    std::atomic<std::uint64_t> calls{0};
    std::atomic<std::uint64_t> nanoseconds{0};
    std::array<std::atomic<std::uint64_t>, kBucketBounds.size()> buckets{};  // not cumulative here
  };
  std::array<Slot, kSlots> slots_;
};

}  // namespace pat::tracer
