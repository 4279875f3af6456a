// Reading the variables of the sd-daemon protocols (NOTIFY_SOCKET, LISTEN_FDS,
// ...): each is taken exactly once and removed, and numbers are parsed
// strictly. Internal to pat_sd.
#pragma once

#include <charconv>
#include <optional>
#include <string>

namespace pat::sd {

// The variable's value, or nothing when unset; either way the variable is gone
// from the environment afterwards, so that no child of patd (pat-host, the
// members, their children) inherits a message meant for patd. Not
// thread-safe, like unsetenv(3) itself.
std::optional<std::string> take_environment_variable(const char* name);

// A whole string as a decimal number: no spaces, no '+', no suffix, no empty
// string. Signed types accept a leading '-'; callers check the range.
template <class T>
std::optional<T> parse_decimal(const std::string& text) {
  T value{};
  const char* end = text.data() + text.size();
  auto [stop, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc() || stop != end) return std::nullopt;
  return value;
}

}  // namespace pat::sd
