#include "tracer/reroute_stats.h"

#include <algorithm>

namespace pat::tracer {

std::size_t RerouteStats::slot_of(long nr) {
  for (std::size_t i = 0; i < std::size(kReroutedSyscalls); ++i) {
    if (kReroutedSyscalls[i].nr == nr) return i;
  }
  return nr == SYS_prctl ? kSlots - 2 : kSlots - 1;
}

void RerouteStats::record(long nr, std::chrono::nanoseconds took) {
  // Relaxed: each counter is read on its own; nothing else is published by them.
  Slot& slot = slots_[slot_of(nr)];
  slot.calls.fetch_add(1, std::memory_order_relaxed);
  slot.nanoseconds.fetch_add(static_cast<std::uint64_t>(std::max<std::int64_t>(took.count(), 0)),
                             std::memory_order_relaxed);
  const double seconds = std::chrono::duration<double>(took).count();
  auto bucket = std::lower_bound(kBucketBounds.begin(), kBucketBounds.end(), seconds);
  if (bucket != kBucketBounds.end()) {
    slot.buckets[static_cast<std::size_t>(bucket - kBucketBounds.begin())].fetch_add(1, std::memory_order_relaxed);
  }
}

std::vector<proto::SyscallService> RerouteStats::snapshot() const {
  std::vector<proto::SyscallService> out;
  for (std::size_t i = 0; i < kSlots; ++i) {
    const Slot& slot = slots_[i];
    // Buckets first, the count last: a call recorded meanwhile can then
    // only make the count larger, and the +Inf bucket stays the largest.
    std::uint64_t cumulative = 0;
    proto::SyscallService entry;
    for (std::size_t b = 0; b < kBucketBounds.size(); ++b) {
      cumulative += slot.buckets[b].load(std::memory_order_relaxed);
      entry.le_seconds.push_back(kBucketBounds[b]);
      entry.buckets.push_back(cumulative);
    }
    entry.seconds = static_cast<double>(slot.nanoseconds.load(std::memory_order_relaxed)) / 1e9;
    entry.calls = std::max(slot.calls.load(std::memory_order_relaxed), cumulative);
    if (entry.calls == 0) continue;
    entry.syscall = i < std::size(kReroutedSyscalls) ? std::string(kReroutedSyscalls[i].name)
                    : i == kSlots - 2                 ? "prctl"
                                                      : "other";
    out.push_back(std::move(entry));
  }
  return out;
}

}  // namespace pat::tracer
