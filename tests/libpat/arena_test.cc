// The arena as a format: made by the host, checked by members; how members
// find it (PAT_ARENA); the member table they read each other from.
#include "libpat/src/arena.h"
#include "libpat/src/arena_locator.h"
#include "libpat/src/member_table.h"
#include "tests/libpat/test_group.h"

#include <doctest/doctest.h>

#include <cstring>

using namespace pat::dataplane;
using pat::testing::AsMember;
using pat::testing::TestGroup;

TEST_CASE("a formatted arena is accepted by attach, with its group name; anything else is refused with a reason") {
  TestGroup group;
  const Arena& arena = group.arena();
  Arena attached = Arena::attach(arena.base(), arena.size());
  CHECK(std::string(attached.header().group_name) == "test-group");
  CHECK(attached.header().host_pid == ::getpid());

  CHECK_THROWS_WITH_AS(Arena::attach(arena.base(), arena.size() - kPageSize),
                       "PAT_ARENA's size does not match the arena's header", pat::Error);
  arena.header().layout_version = kLayoutVersion + 1;
  CHECK_THROWS_WITH_AS(Arena::attach(arena.base(), arena.size()),
                       doctest::Contains("come from different pat builds"), pat::Error);
  arena.header().layout_version = kLayoutVersion;
  arena.header().magic[0] = 'X';
  try {
    Arena::attach(arena.base(), arena.size());
    FAIL("attach accepted a bad magic");
  } catch (const pat::Error& error) {
    CHECK(error.code() == pat::Errc::NotInGroup);
  }
  arena.header().magic[0] = 'P';
}

TEST_CASE("PAT_ARENA: 0x<address>:0x<size>, page-aligned, nothing else") {
  ArenaLocation location{0x7f0000000000, std::size_t{64} << 30};
  CHECK(format_location(location) == "0x7f0000000000:0x1000000000");
  auto parsed = parse_location("0x7f0000000000:0x1000000000");
  REQUIRE(parsed);
  CHECK(parsed->address == location.address);
  CHECK(parsed->size == location.size);
  for (const char* bad : {"", "0x1000", "0x1000:", "7f0000000000:0x1000", "0x1000:0x1001", "0x1001:0x1000",
                          "0x0:0x1000", "0x1000:0x1000 ", "0xfffffffffffff000:0x2000", "0x1000:0xzz"}) {
    INFO(bad);
    CHECK_FALSE(parse_location(bad).has_value());
  }
}

TEST_CASE("the member table lists running members with their argv, and forgets ended ones") {
  TestGroup group;
  auto& first = group.start({"/usr/bin/python3", "-c", "print(1)"});
  std::string long_arg(1000, 'x');
  auto& second = group.start({"prog", long_arg, long_arg});
  {
    AsMember as(first);
    auto members = pat::members();
    REQUIRE(members.size() == 2);
    const auto& a = members[0].pid == first.pid() ? members[0] : members[1];
    const auto& b = members[0].pid == first.pid() ? members[1] : members[0];
    CHECK(a.argv == std::vector<std::string>{"/usr/bin/python3", "-c", "print(1)"});
    CHECK_FALSE(a.argv_truncated);
    // 1.5 KiB keeps "prog" and one copy, cut at a whole argument.
    CHECK(b.argv == std::vector<std::string>{"prog", long_arg});
    CHECK(b.argv_truncated);
    CHECK(pat::group_name() == "test-group");
  }
  CHECK(group.end(second));
  AsMember as(first);
  auto members = pat::members();
  REQUIRE(members.size() == 1);
  CHECK(members[0].pid == first.pid());
  // The ended member's slot is free again for the next one.
  CHECK(group.stats().members_ending == 0);
  auto& third = group.start({"third"});
  CHECK(third.slot_index() == second.slot_index());
}

TEST_CASE("outside a group the API says so, and which way it is not one") {
  // This test process has no PAT_ARENA (unless a developer exported one).
  if (std::getenv("PAT_ARENA") != nullptr) return;
  CHECK_FALSE(pat::in_group());
  try {
    pat::Buffer::allocate(10);
    FAIL("allocate worked outside a group");
  } catch (const pat::Error& error) {
    CHECK(error.code() == pat::Errc::NotInGroup);
    CHECK(std::string(error.what()).find("PAT_ARENA is not set") != std::string::npos);
  }
  ::setenv("PAT_ARENA", "0x7f0000000000:0x1000000000", 1);
  // The first call decided already: the answer stays the same for the process.
  CHECK_FALSE(pat::in_group());
  ::unsetenv("PAT_ARENA");
}
