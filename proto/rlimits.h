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
  std::string_view proc_name;  // its row in /proc/PID/limits
};

std::span<const RlimitName> rlimit_names();

// All of the calling process's limits.
std::vector<std::pair<int, rlimit>> current_rlimits();

// (resource, limit) pairs to wire form.
nlohmann::json rlimits_to_json(const std::vector<std::pair<int, rlimit>>& limits);

// The limits a member of `caller` gets for `requested` (issue 13, 1.3):
// every resource of `ceiling` (the caller's own limits, as the kernel
// reports them), with a requested soft and hard limit lowered to the
// caller's hard limit, and the caller's own where nothing was requested. A
// request can lower its limits, never raise them above what the caller
// could give itself with setrlimit(2).
std::vector<std::pair<int, rlimit>> within_limits(const std::vector<std::pair<int, rlimit>>& requested,
                                                  const std::vector<std::pair<int, rlimit>>& ceiling);

// The limits in the text of /proc/PID/limits (proc(5)), which anyone may
// read, unlike prlimit(2) on another user's process (that needs
// CAP_SYS_RESOURCE). Nothing when any limit is missing or malformed.
std::optional<std::vector<std::pair<int, rlimit>>> parse_proc_limits(std::string_view text);

// Wire form to (resource, limit) pairs. Unknown names and malformed values
// throw ErrorReply(InvalidParameter) naming "rlimits".
std::vector<std::pair<int, rlimit>> parse_rlimits(const nlohmann::json& object);

}  // namespace pat::proto
