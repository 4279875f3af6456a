// RerouteStats: counts by syscall, a cumulative histogram whose +Inf bucket
// is the count, and server threads recording at once without losing a call.
#include "tracer/reroute_stats.h"

#include <doctest/doctest.h>

#include <thread>
#include <vector>

using pat::tracer::RerouteStats;
using namespace std::chrono_literals;

namespace {

const pat::proto::SyscallService* find(const std::vector<pat::proto::SyscallService>& all, const std::string& name) {
  for (const auto& entry : all) {
    if (entry.syscall == name) return &entry;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("RerouteStats counts each syscall into the bucket of its service time") {
  RerouteStats stats;
  CHECK(stats.snapshot().empty());
  stats.record(SYS_mmap, 3us);     // in (2.5 µs, 5 µs]
  stats.record(SYS_mmap, 5us);     // on a bound: that bucket (le is "at most")
  stats.record(SYS_mmap, 2s);      // past the last bound: +Inf only
  stats.record(SYS_prctl, 1us);
  stats.record(SYS_getpid, 1us);   // never rerouted: "other"
  auto all = stats.snapshot();
  REQUIRE(all.size() == 3);
  CHECK(all[0].syscall == "mmap");
  CHECK(all[1].syscall == "prctl");
  CHECK(all[2].syscall == "other");
  const auto& mmap = all[0];
  CHECK(mmap.calls == 3);
  CHECK(mmap.seconds == doctest::Approx(2.000008));
  REQUIRE(mmap.le_seconds.size() == RerouteStats::kBucketBounds.size());
  CHECK(mmap.buckets[0] == 0);  // le 2.5 µs
  CHECK(mmap.buckets[1] == 2);  // le 5 µs
  CHECK(mmap.buckets.back() == 2);
  CHECK(find(all, "prctl")->buckets[0] == 1);
  CHECK(pat::proto::SyscallService::from_json(mmap.to_json()));  // what patd would take
}

TEST_CASE("RerouteStats loses no call when server threads record at once") {
  RerouteStats stats;
  constexpr int kThreads = 4, kCalls = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&stats] {
      for (int i = 0; i < kCalls; ++i) stats.record(i % 2 ? SYS_brk : SYS_munmap, 7us);
    });
  }
  for (auto& thread : threads) thread.join();
  auto all = stats.snapshot();
  REQUIRE(find(all, "brk") != nullptr);
  REQUIRE(find(all, "munmap") != nullptr);
  CHECK(find(all, "brk")->calls == kThreads * kCalls / 2);
  CHECK(find(all, "munmap")->buckets[2] == kThreads * kCalls / 2);  // le 10 µs
  CHECK(find(all, "munmap")->buckets[1] == 0);
}
