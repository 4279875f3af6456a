#include "tests/libpat/test_group.h"

#include "libpat/src/member_table.h"

#include <doctest/doctest.h>

namespace pat::testing {

TestGroup::TestGroup(std::size_t bytes) {
  auto unpin = [this](std::uint64_t pin) {
    std::lock_guard guard(mutex_);
    unpinned_.push_back(pin);
  };
  host_ = dataplane::ArenaHost::create("test-group", unpin, bytes);
}

dataplane::MemberSession& TestGroup::start(std::vector<std::string> argv) {
  std::lock_guard guard(mutex_);
  pid_t pid = next_pid_++;
  REQUIRE(host_->member_started(pid, argv));
  auto slot = dataplane::MemberTable(arena()).find_alive(pid);
  REQUIRE(slot.has_value());
  auto unpin = [this](std::uint64_t pin) {
    std::lock_guard inner(mutex_);
    unpinned_.push_back(pin);
  };
  members_.push_back(std::make_unique<dataplane::MemberSession>(arena(), *slot, pid, unpin));
  return *members_.back();
}

bool TestGroup::end(dataplane::MemberSession& member) {
  member.disown();
  return host_->member_ended(member.pid());
}

std::vector<std::uint64_t> TestGroup::unpinned() const {
  std::lock_guard guard(mutex_);
  return unpinned_;
}

}  // namespace pat::testing
