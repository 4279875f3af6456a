// Typed access to a call's parameters. Every accessor either returns a value of
// the right type or throws ErrorReply(InvalidParameter) naming the parameter
// and what was expected, so handlers never see a malformed value.
#pragma once

#include "proto/errors.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pat::proto {

class ParamReader {
 public:
  explicit ParamReader(const nlohmann::json& parameters) : params_(parameters) {}

  std::string string(const char* name) const;
  std::optional<std::string> optional_string(const char* name) const;
  std::int64_t integer(const char* name, std::int64_t min, std::int64_t max) const;
  std::optional<std::int64_t> optional_integer(const char* name, std::int64_t min, std::int64_t max) const;
  bool boolean(const char* name, bool fallback) const;
  std::vector<std::string> string_array(const char* name) const;
  std::optional<std::vector<std::string>> optional_string_array(const char* name) const;
  const nlohmann::json* optional_object(const char* name) const;
  // 1 to `most` distinct process ids (positive integers that fit a pid_t).
  std::vector<std::int64_t> pid_array(const char* name, std::size_t most) const;

  // Strings handed to the kernel as C strings (a path, argv, env): a NUL
  // inside would silently cut them there ("/bin/sh\u0000junk" would run
  // /bin/sh), so one is refused instead.
  std::string c_string(const char* name) const;
  std::optional<std::string> optional_c_string(const char* name) const;
  std::vector<std::string> c_string_array(const char* name) const;
  std::optional<std::vector<std::string>> optional_c_string_array(const char* name) const;

 private:
  const nlohmann::json* find(const char* name) const;  // nullptr when absent or null
  [[noreturn]] void fail(const char* name, const char* expected) const;
  void check_no_nul(const char* name, const std::string& value) const;
  const nlohmann::json& params_;
};

}  // namespace pat::proto
