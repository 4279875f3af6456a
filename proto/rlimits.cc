#include "proto/rlimits.h"

#include "proto/errors.h"

#include <algorithm>
#include <array>

namespace pat::proto {

namespace {

constexpr std::array kRlimits = {
    RlimitName{"AS", RLIMIT_AS},           RlimitName{"CORE", RLIMIT_CORE},
    RlimitName{"CPU", RLIMIT_CPU},         RlimitName{"DATA", RLIMIT_DATA},
    RlimitName{"FSIZE", RLIMIT_FSIZE},     RlimitName{"LOCKS", RLIMIT_LOCKS},
    RlimitName{"MEMLOCK", RLIMIT_MEMLOCK}, RlimitName{"MSGQUEUE", RLIMIT_MSGQUEUE},
    RlimitName{"NICE", RLIMIT_NICE},       RlimitName{"NOFILE", RLIMIT_NOFILE},
    RlimitName{"NPROC", RLIMIT_NPROC},     RlimitName{"RSS", RLIMIT_RSS},
    RlimitName{"RTPRIO", RLIMIT_RTPRIO},   RlimitName{"RTTIME", RLIMIT_RTTIME},
    RlimitName{"SIGPENDING", RLIMIT_SIGPENDING}, RlimitName{"STACK", RLIMIT_STACK},
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
