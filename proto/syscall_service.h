// SyscallService: how a group's host answered one kind of rerouted syscall
// (io.pat.Host.SyscallService, in io.pat.Host.Describe's reply): how many
// calls, their total service time, and a histogram of it. The host fills it
// from tracer::RerouteStats; patd reads it back for its Prometheus metrics
// (docs/metrics.md). A host is untrusted, so from_json checks everything.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pat::proto {

struct SyscallService {
  std::string syscall;  // its name: [a-z0-9_], at most kMaxNameLength
  std::uint64_t calls = 0;
  double seconds = 0;  // the sum of their service times
  // Prometheus' cumulative buckets: buckets[i] calls took at most
  // le_seconds[i]; the bounds ascend, and calls is the +Inf bucket.
  std::vector<double> le_seconds;
  std::vector<std::uint64_t> buckets;

  static constexpr std::size_t kMaxNameLength = 32;
  static constexpr std::size_t kMaxBuckets = 32;

  nlohmann::json to_json() const;
  // nullopt when `object` is not a well-formed SyscallService.
  static std::optional<SyscallService> from_json(const nlohmann::json& object);
};

}  // namespace pat::proto
