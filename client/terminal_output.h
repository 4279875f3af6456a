// How patctl shows things to a person: aligned tables, durations, and strings
// made safe for a terminal (a member's argv may hold escape sequences).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace pat::client {

// Control characters become '?', so nothing printed can drive the terminal.
std::string printable(const std::string& text);

// argv joined with spaces, printable.
std::string command_line(const nlohmann::json& argv);

// "1h 02m 03s", "4.2s".
std::string human_duration(double seconds);

// "12.3 MiB", "512 B".
std::string human_bytes(double bytes);

// "alice" for a uid with a passwd entry, else the number.
std::string user_name(unsigned uid);

class Table {
 public:
  explicit Table(std::vector<std::string> headings) : rows_{std::move(headings)} {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  // Columns padded to their widest cell; the last column is not padded.
  std::string render() const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace pat::client
