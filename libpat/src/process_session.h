// This process's MemberSession when it is a real member of a pat group: made
// on first use from PAT_ARENA (arena_locator.h), after PAT_HOSTCALL_PING has
// confirmed that a host answers (so the address is only read when it is
// known to be mapped), and disowned in a fork(2) child, which has a copy of
// the group's memory rather than the group's.
#pragma once

#include "libpat/src/member_session.h"

namespace pat::dataplane {

// Throws pat::Error(NotInGroup) saying why this process is not a member.
// What the first look found is kept; look_again() lets the next call look
// once more (a process moved into a group while it runs: pat.join()).
MemberSession& this_member();
void look_again();

// For unit tests, whose threads stand in for members: while one of these
// lives, this_member() on its thread returns `session`.
class ThreadMemberOverride {
 public:
  explicit ThreadMemberOverride(MemberSession& session);
  ~ThreadMemberOverride();
  ThreadMemberOverride(const ThreadMemberOverride&) = delete;
  ThreadMemberOverride& operator=(const ThreadMemberOverride&) = delete;

 private:
  MemberSession* previous_;
};

}  // namespace pat::dataplane
