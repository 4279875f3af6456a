#include "proto/syscall_service.h"

#include <algorithm>
#include <cmath>

namespace pat::proto {

nlohmann::json SyscallService::to_json() const {
  return {{"syscall", syscall}, {"calls", calls}, {"seconds", seconds}, {"le_seconds", le_seconds},
          {"buckets", buckets}};
}

namespace {

bool valid_name(const std::string& name) {
  return !name.empty() && name.size() <= SyscallService::kMaxNameLength &&
         std::all_of(name.begin(), name.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}

}  // namespace

std::optional<SyscallService> SyscallService::from_json(const nlohmann::json& object) {
  if (!object.is_object()) return std::nullopt;
  SyscallService entry;
  try {
    entry.syscall = object.at("syscall").get<std::string>();
    if (!object.at("buckets").is_array()) return std::nullopt;
    if (!object.at("calls").is_number_unsigned() || !object.at("seconds").is_number()) return std::nullopt;
    entry.calls = object.at("calls").get<std::uint64_t>();
    entry.seconds = object.at("seconds").get<double>();
    entry.le_seconds = object.at("le_seconds").get<std::vector<double>>();
    for (const auto& bucket : object.at("buckets")) {
      if (!bucket.is_number_unsigned()) return std::nullopt;  // get<> would wrap a negative count
      entry.buckets.push_back(bucket.get<std::uint64_t>());
    }
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
  if (!valid_name(entry.syscall) || !std::isfinite(entry.seconds) || entry.seconds < 0) return std::nullopt;
  if (entry.le_seconds.size() != entry.buckets.size() || entry.buckets.size() > kMaxBuckets) return std::nullopt;
  for (std::size_t i = 0; i < entry.buckets.size(); ++i) {
    if (!std::isfinite(entry.le_seconds[i]) || entry.le_seconds[i] <= 0 || entry.buckets[i] > entry.calls) return std::nullopt;
    if (i > 0 && (entry.le_seconds[i] <= entry.le_seconds[i - 1] || entry.buckets[i] < entry.buckets[i - 1])) {
      return std::nullopt;
    }
  }
  return entry;
}

}  // namespace pat::proto
