#include "proto/rlimits.h"

#include "proto/errors.h"

#include <algorithm>
#include <array>
#include <charconv>

namespace pat::proto {

namespace {

// The second column is the row's name in /proc/PID/limits (lim_names in
// fs/proc/base.c).
constexpr std::array kRlimits = {
    RlimitName{"AS", RLIMIT_AS, "Max address space"},
    RlimitName{"CORE", RLIMIT_CORE, "Max core file size"},
    RlimitName{"CPU", RLIMIT_CPU, "Max cpu time"},
    RlimitName{"DATA", RLIMIT_DATA, "Max data size"},
    RlimitName{"FSIZE", RLIMIT_FSIZE, "Max file size"},
    RlimitName{"LOCKS", RLIMIT_LOCKS, "Max file locks"},
    RlimitName{"MEMLOCK", RLIMIT_MEMLOCK, "Max locked memory"},
    RlimitName{"MSGQUEUE", RLIMIT_MSGQUEUE, "Max msgqueue size"},
    RlimitName{"NICE", RLIMIT_NICE, "Max nice priority"},
    RlimitName{"NOFILE", RLIMIT_NOFILE, "Max open files"},
    RlimitName{"NPROC", RLIMIT_NPROC, "Max processes"},
    RlimitName{"RSS", RLIMIT_RSS, "Max resident set"},
    RlimitName{"RTPRIO", RLIMIT_RTPRIO, "Max realtime priority"},
    RlimitName{"RTTIME", RLIMIT_RTTIME, "Max realtime timeout"},
    RlimitName{"SIGPENDING", RLIMIT_SIGPENDING, "Max pending signals"},
    RlimitName{"STACK", RLIMIT_STACK, "Max stack size"},
};

long long to_wire(rlim_t value) { return value == RLIM_INFINITY ? -1 : static_cast<long long>(value); }

[[noreturn]] void invalid(const std::string& why) {
  throw ErrorReply(ErrorCode::InvalidParameter, "parameter \"rlimits\": " + why,
                   {{"parameter", "rlimits"}, {"expected", "an object of NAME: [soft, hard]"}});
}

rlim_t from_wire(const nlohmann::json& value, const std::string& name) {
  if (!value.is_number_integer()) invalid(name + " needs integer limits");
  auto number = value.get<long long>();
  if (number == -1) return RLIM_INFINITY;
  if (number < 0) invalid(name + " has a negative limit");
  return static_cast<rlim_t>(number);
}

}  // namespace

std::span<const RlimitName> rlimit_names() { return kRlimits; }

std::vector<std::pair<int, rlimit>> current_rlimits() {
  std::vector<std::pair<int, rlimit>> out;
  for (const auto& entry : kRlimits) {
    rlimit limit{};
    if (::getrlimit(static_cast<__rlimit_resource>(entry.resource), &limit) == 0) out.emplace_back(entry.resource, limit);
  }
  return out;
}

nlohmann::json rlimits_to_json(const std::vector<std::pair<int, rlimit>>& limits) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [resource, limit] : limits) {
    for (const auto& entry : kRlimits) {
      if (entry.resource == resource) out[std::string(entry.name)] = {to_wire(limit.rlim_cur), to_wire(limit.rlim_max)};
    }
  }
  return out;
}

std::vector<std::pair<int, rlimit>> within_limits(const std::vector<std::pair<int, rlimit>>& requested,
                                                  const std::vector<std::pair<int, rlimit>>& ceiling) {
  std::vector<std::pair<int, rlimit>> out;
  for (const auto& [resource, allowed] : ceiling) {
    rlimit limit = allowed;
    for (const auto& [wanted_resource, wanted] : requested) {
      if (wanted_resource != resource) continue;
      limit.rlim_max = std::min(wanted.rlim_max, allowed.rlim_max);
      limit.rlim_cur = std::min(wanted.rlim_cur, limit.rlim_max);
    }
    out.emplace_back(resource, limit);
  }
  return out;
}

std::optional<std::vector<std::pair<int, rlimit>>> parse_proc_limits(std::string_view text) {
  // Each row is "%-25s %-20s %-20s %-10s" (proc_pid_limits): the name, then
  // the soft and hard limit as a number or "unlimited".
  auto value = [](std::string_view word) -> std::optional<rlim_t> {
    if (word == "unlimited") return RLIM_INFINITY;
    rlim_t number = 0;
    auto [end, error] = std::from_chars(word.data(), word.data() + word.size(), number);
    if (error != std::errc() || end != word.data() + word.size()) return std::nullopt;
    return number;
  };
  auto next_word = [](std::string_view& rest) {
    auto start = rest.find_first_not_of(' ');
    if (start == std::string_view::npos) return std::string_view{};
    rest.remove_prefix(start);
    auto word = rest.substr(0, rest.find(' '));
    rest.remove_prefix(word.size());
    return word;
  };
  std::vector<std::pair<int, rlimit>> out;
  for (const auto& entry : kRlimits) {
    auto at = text.find(entry.proc_name);
    if (at == std::string_view::npos || (at != 0 && text[at - 1] != '\n')) return std::nullopt;
    std::string_view row = text.substr(at + entry.proc_name.size());
    row = row.substr(0, row.find('\n'));
    auto soft = value(next_word(row));
    auto hard = value(next_word(row));
    if (!soft || !hard || *soft > *hard) return std::nullopt;
    out.emplace_back(entry.resource, rlimit{*soft, *hard});
  }
  return out;
}

std::vector<std::pair<int, rlimit>> parse_rlimits(const nlohmann::json& object) {
  std::vector<std::pair<int, rlimit>> out;
  if (!object.is_object()) invalid("expected an object");
  for (const auto& [name, value] : object.items()) {
    const RlimitName* known = nullptr;
    for (const auto& entry : kRlimits) {
      if (entry.name == name) known = &entry;
    }
    if (known == nullptr) invalid("unknown limit " + name);
    if (!value.is_array() || value.size() != 2) invalid(name + " must be [soft, hard]");
    rlimit limit{from_wire(value[0], name), from_wire(value[1], name)};
    if (limit.rlim_cur > limit.rlim_max) invalid(name + " has soft above hard");
    out.emplace_back(known->resource, limit);
  }
  return out;
}

}  // namespace pat::proto
