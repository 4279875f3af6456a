#include "tracer/proc_text.h"

#include <charconv>

namespace pat::tracer {

namespace {

bool blank(char c) { return c == ' ' || c == '\t'; }

// An unsigned decimal number at the start of `text` (after blanks), and what
// follows it; nothing if there is no digit or it does not fit.
std::optional<std::uint64_t> leading_number(std::string_view& text) {
  while (!text.empty() && blank(text.front())) text.remove_prefix(1);
  std::uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end == text.data()) return std::nullopt;
  text.remove_prefix(static_cast<std::size_t>(end - text.data()));
  return value;
}

}  // namespace

std::optional<ProcStat> parse_proc_stat(std::string_view text) {
  auto close = text.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view rest = text.substr(close + 1);
  // After ")" come fields 3 (state) onwards, separated by blanks.
  ProcStat stat;
  for (int index = 3; index <= 20; ++index) {
    while (!rest.empty() && blank(rest.front())) rest.remove_prefix(1);
    std::size_t length = 0;
    while (length < rest.size() && !blank(rest[length]) && rest[length] != '\n') ++length;
    if (length == 0) return std::nullopt;  // the line ended before field 20
    std::string_view field = rest.substr(0, length);
    rest.remove_prefix(length);
    if (index == 3) stat.state = field.front();
    if (index != 14 && index != 15 && index != 20) continue;
    auto value = leading_number(field);
    if (!value || !field.empty()) return std::nullopt;
    if (index == 14) stat.utime_ticks = *value;
    if (index == 15) stat.stime_ticks = *value;
    if (index == 20) stat.num_threads = *value;
  }
  return stat;
}

std::optional<std::uint64_t> parse_status_number(std::string_view text, std::string_view name) {
  while (!text.empty()) {
    std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    if (line.size() <= name.size() || line.substr(0, name.size()) != name || line[name.size()] != ':') continue;
    line.remove_prefix(name.size() + 1);
    return leading_number(line);
  }
  return std::nullopt;
}

}  // namespace pat::tracer
