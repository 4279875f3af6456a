#include "client/terminal_output.h"

#include <pwd.h>

#include <algorithm>
#include <cstdio>

namespace pat::client {

std::string printable(const std::string& text) {
  std::string out = text;
  for (char& c : out) {
    auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) c = '?';
  }
  return out;
}

std::string command_line(const nlohmann::json& argv) {
  std::string out;
  if (!argv.is_array()) return out;
  for (const auto& arg : argv) {
    if (!arg.is_string()) continue;
    if (!out.empty()) out += ' ';
    out += printable(arg.get<std::string>());
  }
  return out;
}

std::string human_duration(double seconds) {
  char text[64];
  if (seconds < 60) {
    std::snprintf(text, sizeof(text), "%.1fs", seconds);
    return text;
  }
  auto total = static_cast<long long>(seconds);
  long long days = total / 86400, hours = total / 3600 % 24, minutes = total / 60 % 60, secs = total % 60;
  if (days > 0) {
    std::snprintf(text, sizeof(text), "%lldd %02lldh %02lldm", days, hours, minutes);
  } else if (hours > 0) {
    std::snprintf(text, sizeof(text), "%lldh %02lldm %02llds", hours, minutes, secs);
  } else {
    std::snprintf(text, sizeof(text), "%lldm %02llds", minutes, secs);
  }
  return text;
}

std::string human_bytes(double bytes) {
  static const char* const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (bytes >= 1024 && unit < 4) {
    bytes /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof(text), unit == 0 ? "%.0f %s" : "%.1f %s", bytes, units[unit]);
  return text;
}

std::string user_name(unsigned uid) {
  passwd entry{};
  passwd* found = nullptr;
  char buffer[4096];
  if (::getpwuid_r(uid, &entry, buffer, sizeof(buffer), &found) == 0 && found != nullptr) return found->pw_name;
  return std::to_string(uid);
}

std::string Table::render() const {
  std::vector<std::size_t> widths;
  for (const auto& row : rows_) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows_) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      out += row[i];
      if (i + 1 < row.size()) out += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    out += '\n';
  }
  return out;
}

}  // namespace pat::client
