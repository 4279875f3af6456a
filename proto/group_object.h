// The JSON shape of a group as patd returns it (README "JSON shapes"), and
// the checks patd applies to what a host reports: a host runs with its
// owner's privileges and may have been tampered with by its members, so its
// description is validated before patd relays or relies on it.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace pat::proto {

// [A-Za-z0-9_.-]{1,64}, and not "." or ".." (names become directory names).
bool is_valid_group_name(std::string_view name);

// nullopt when `group` has the required fields with the right types:
// name, owner_uid, owner_gid, host_pid, created, members[] (pid, argv, state),
// recent_exits[]. Otherwise what is wrong, for the log.
std::optional<std::string> check_group_object(const nlohmann::json& group);

// Member count of a checked group object.
std::size_t member_count(const nlohmann::json& group);

// UTC timestamp in RFC 3339 form, e.g. "2026-11-27T10:00:00.123Z".
std::string rfc3339_utc(double unix_seconds);

}  // namespace pat::proto
