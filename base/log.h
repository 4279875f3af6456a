// Operator logs: spdlog to stderr, one line per event, key=value fields.
// Every line starts with `event=<name>`; lines about a group carry `group=`,
// lines about a process carry `pid=`. Example:
//   2026-11-27T10:00:00.123 info event=member.exit group=g pid=4242 exit_code=0
#pragma once

#include <spdlog/spdlog.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace pat {

// Configures the default logger: stderr, ISO timestamps, level from
// `level_name` ("debug", "info", ...). `component` names the program (patd,
// pat-host) at the start of each line.
void setup_logging(std::string_view component, std::string_view level_name);

// Quotes a value for a key=value log field when it holds spaces, quotes or
// control characters, so that every line stays machine-splittable.
std::string log_quote(std::string_view value);

// An address as log lines and messages write it: "0x7f5fca3f6000".
std::string hex_address(std::uintptr_t value);

}  // namespace pat
