// Parsers for the text of /proc files (proc(5)), apart from the reading, so
// that they can be tested and fuzzed on any text. The kernel writes these
// files, but a parser still never throws, reads out of bounds or trusts a
// number to fit: on anything unexpected it returns nothing.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace pat::tracer {

// The fields of /proc/PID/stat that pat uses. comm (field 2) may hold
// blanks and parentheses, so fields are counted from the last ')'.
struct ProcStat {
  char state = '?';               // field 3: R, S, D, T, t, Z...
  std::uint64_t utime_ticks = 0;  // field 14
  std::uint64_t stime_ticks = 0;  // field 15
  std::uint64_t num_threads = 0;  // field 20
};
std::optional<ProcStat> parse_proc_stat(std::string_view text);

// The number in a "Name:<blanks>N[ kB]" line of /proc/PID/status or
// smaps_rollup (the first such line; a unit after the number is ignored).
std::optional<std::uint64_t> parse_status_number(std::string_view text, std::string_view name);

}  // namespace pat::tracer
