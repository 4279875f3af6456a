#include "tracer/build_inputs.h"

#include <cerrno>
#include <cstring>

namespace pat::tracer {
namespace {

bool is_sha256_hex(std::string_view text) {
  if (text.size() != 64) return false;
  for (char c : text)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// "WORD REST": the first word and everything after the first space.
std::pair<std::string_view, std::string_view> split_word(std::string_view line) {
  std::size_t space = line.find(' ');
  if (space == std::string_view::npos) return {line, {}};
  return {line.substr(0, space), line.substr(space + 1)};
}

std::optional<std::string> take_line(std::string_view line, BuildInputs& inputs) {
  auto [keyword, rest] = split_word(line);
  if (keyword == "package") {
    if (inputs.package || rest.find(' ') == std::string_view::npos) return "bad package line";
    inputs.package = std::string(rest);
    return std::nullopt;
  }
  if (keyword == "linked" || keyword == "check") {
    auto [digest, path] = split_word(rest);
    if (!is_sha256_hex(digest) || path.empty() || path.front() != '/') return "bad " + std::string(keyword) + " line";
    inputs.files.push_back({std::string(path), std::string(digest), keyword == "check"});
    return std::nullopt;
  }
  return "unknown line \"" + std::string(keyword) + "\"";
}

std::string linked_from(const BuildInputs& inputs) {
  return inputs.package ? " (built from " + *inputs.package + ")" : "";
}

}  // namespace

std::variant<BuildInputs, std::string> parse_build_inputs(std::string_view text) {
  BuildInputs inputs;
  std::size_t number = 0;
  while (!text.empty()) {
    ++number;
    std::size_t end = text.find('\n');
    if (end == std::string_view::npos) return "build inputs: line " + std::to_string(number) + " without a newline";
    if (auto problem = take_line(text.substr(0, end), inputs))
      return "build inputs: line " + std::to_string(number) + ": " + *problem;
    text.remove_prefix(end + 1);
  }
  for (const BuildInputs::File& file : inputs.files)
    if (file.checked) return inputs;
  return std::string("build inputs: no file to check");
}

std::optional<std::string> why_stale(const BuildInputs& inputs, FileDigests& digests) {
  bool any_present = false;
  for (const BuildInputs::File& file : inputs.files) {
    if (!file.checked) continue;
    auto digest = digests.sha256_hex(file.path);
    if (const int* error = std::get_if<int>(&digest)) {
      if (*error == ENOENT) continue;
      return file.path + " cannot be read to check it (" + std::strerror(*error) + ")";
    }
    any_present = true;
    if (std::get<std::string>(digest) != file.sha256_hex)
      return file.path + " has changed since this build was linked" + linked_from(inputs) + "; rebuild pat";
  }
  if (!any_present) return "none of the files this build is checked against exists any more" + linked_from(inputs);
  return std::nullopt;
}

}  // namespace pat::tracer
