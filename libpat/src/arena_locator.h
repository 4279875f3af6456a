// How a member finds its group's arena: the host adds
// PAT_ARENA=0x<address>:0x<size> to every member's environment at spawn
// (daemon/host/group_arena.cc). The address is the same in every member
// because they share one address space.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pat::dataplane {

inline constexpr const char* kArenaVariable = "PAT_ARENA";

struct ArenaLocation {
  std::uintptr_t address = 0;
  std::size_t size = 0;
};

std::string format_location(const ArenaLocation& location);
// nullopt unless `value` is exactly "0x<hex>:0x<hex>" with a page-aligned,
// non-zero address and size.
std::optional<ArenaLocation> parse_location(std::string_view value);

}  // namespace pat::dataplane
