#include "proto/params.h"

namespace pat::proto {

const nlohmann::json* ParamReader::find(const char* name) const {
  if (!params_.is_object()) return nullptr;
  auto it = params_.find(name);
  if (it == params_.end() || it->is_null()) return nullptr;
  return &*it;
}

void ParamReader::fail(const char* name, const char* expected) const {
  throw ErrorReply(ErrorCode::InvalidParameter, std::string("parameter \"") + name + "\": expected " + expected,
                   {{"parameter", name}, {"expected", expected}});
}

std::vector<std::int64_t> ParamReader::pid_array(const char* name, std::size_t most) const {
  const auto* value = find(name);
  if (!value || !value->is_array() || value->empty() || value->size() > most) fail(name, "a non-empty array of pids");
  std::vector<std::int64_t> pids;
  for (const auto& item : *value) {
    if (!item.is_number_unsigned() || item.get<std::uint64_t>() < 1 || item.get<std::uint64_t>() > 0x7fffffff)
      fail(name, "positive process ids");
    auto pid = item.get<std::int64_t>();
    for (auto seen : pids) {
      if (seen == pid) fail(name, "distinct process ids");
    }
    pids.push_back(pid);
  }
  return pids;
}

std::optional<std::string> ParamReader::optional_string(const char* name) const {
  const auto* value = find(name);
  if (!value) return std::nullopt;
  if (!value->is_string()) fail(name, "a string");
  return value->get<std::string>();
}

std::string ParamReader::string(const char* name) const {
  auto value = optional_string(name);
  if (!value) fail(name, "a string");
  return *value;
}

std::optional<std::int64_t> ParamReader::optional_integer(const char* name, std::int64_t min, std::int64_t max) const {
  const auto* value = find(name);
  if (!value) return std::nullopt;
  if (!value->is_number_integer()) fail(name, "an integer");
  // Unsigned values above INT64_MAX would wrap in get<int64_t>().
  if (value->is_number_unsigned() && value->get<std::uint64_t>() > static_cast<std::uint64_t>(max)) {
    fail(name, "an integer in range");
  }
  auto number = value->get<std::int64_t>();
  if (number < min || number > max) fail(name, "an integer in range");
  return number;
}

std::int64_t ParamReader::integer(const char* name, std::int64_t min, std::int64_t max) const {
  auto value = optional_integer(name, min, max);
  if (!value) fail(name, "an integer");
  return *value;
}

bool ParamReader::boolean(const char* name, bool fallback) const {
  const auto* value = find(name);
  if (!value) return fallback;
  if (!value->is_boolean()) fail(name, "a boolean");
  return value->get<bool>();
}

std::optional<std::vector<std::string>> ParamReader::optional_string_array(const char* name) const {
  const auto* value = find(name);
  if (!value) return std::nullopt;
  if (!value->is_array()) fail(name, "an array of strings");
  std::vector<std::string> out;
  out.reserve(value->size());
  for (const auto& item : *value) {
    if (!item.is_string()) fail(name, "an array of strings");
    out.push_back(item.get<std::string>());
  }
  return out;
}

std::vector<std::string> ParamReader::string_array(const char* name) const {
  auto value = optional_string_array(name);
  if (!value) fail(name, "an array of strings");
  return *value;
}

const nlohmann::json* ParamReader::optional_object(const char* name) const {
  const auto* value = find(name);
  if (value && !value->is_object()) fail(name, "an object");
  return value;
}

void ParamReader::check_no_nul(const char* name, const std::string& value) const {
  if (value.find('\0') != std::string::npos) fail(name, "text without NUL characters");
}

std::optional<std::string> ParamReader::optional_c_string(const char* name) const {
  auto value = optional_string(name);
  if (value) check_no_nul(name, *value);
  return value;
}

std::string ParamReader::c_string(const char* name) const {
  auto value = string(name);
  check_no_nul(name, value);
  return value;
}

std::optional<std::vector<std::string>> ParamReader::optional_c_string_array(const char* name) const {
  auto values = optional_string_array(name);
  if (values) {
    for (const auto& value : *values) check_no_nul(name, value);
  }
  return values;
}

std::vector<std::string> ParamReader::c_string_array(const char* name) const {
  auto values = string_array(name);
  for (const auto& value : values) check_no_nul(name, value);
  return values;
}

}  // namespace pat::proto
