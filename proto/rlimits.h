// Resource limits on the wire: io.pat.Member.Run carries the caller's limits
// as {"NOFILE": [soft, hard], ...}, -1 meaning RLIM_INFINITY, so a member
// starts with the limits of the shell that ran patctl.
#pragma once

#include <nlohmann/json.hpp>
#include <sys/resource.h>

#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace pat::proto {

struct RlimitName {
  std::string_view name;  // without the RLIMIT_ prefix
  int resource;           // RLIMIT_* from <sys/resource.h>
};

std::span<const RlimitName> rlimit_names();

// All of the calling process's limits.
std::vector<std::pair<int, rlimit>> current_rlimits();

// (resource, limit) pairs to wire form.
nlohmann::json rlimits_to_json(const std::vector<std::pair<int, rlimit>>& limits);

// Wire form to (resource, limit) pairs. Unknown names and malformed values
// throw ErrorReply(InvalidParameter) naming "rlimits".
std::vector<std::pair<int, rlimit>> parse_rlimits(const nlohmann::json& object);

}  // namespace pat::proto
