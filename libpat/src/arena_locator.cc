#include "libpat/src/arena_locator.h"

#include "libpat/src/arena_layout.h"

#include <charconv>

namespace pat::dataplane {

namespace {

std::string hex(std::uint64_t value) {
  char digits[17];
  auto end = std::to_chars(digits, digits + sizeof(digits), value, 16).ptr;
  return "0x" + std::string(digits, end);
}

std::optional<std::uint64_t> parse_hex(std::string_view text) {
  if (text.size() < 3 || text.substr(0, 2) != "0x") return std::nullopt;
  std::uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data() + 2, text.data() + text.size(), value, 16);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace

std::string format_location(const ArenaLocation& location) {
  return hex(location.address) + ":" + hex(location.size);
}

std::optional<ArenaLocation> parse_location(std::string_view value) {
  auto colon = value.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  auto address = parse_hex(value.substr(0, colon));
  auto size = parse_hex(value.substr(colon + 1));
  if (!address || !size || *address == 0 || *size == 0 || *address % kPageSize != 0 || *size % kPageSize != 0 ||
      *address + *size < *address) {
    return std::nullopt;
  }
  return ArenaLocation{static_cast<std::uintptr_t>(*address), static_cast<std::size_t>(*size)};
}

}  // namespace pat::dataplane
