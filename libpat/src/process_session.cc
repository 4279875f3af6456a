#include "libpat/src/process_session.h"

#include "libpat/src/arena_locator.h"
#include "libpat/src/hostcall.h"
#include "libpat/src/member_table.h"
#include "pat/pat.hpp"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <mutex>

namespace pat::dataplane {

namespace {

// Never destroyed: Buffers in static objects may be released after exit()
// has started running destructors.
struct ProcessSession {
  // Set once, by the first look that finds the group; read without the lock
  // on every call.
  std::atomic<MemberSession*> session{nullptr};
  std::mutex looking;   // guards looked and why_not
  bool looked = false;  // a look found no group (cleared by look_again())
  std::string why_not;  // why not, then
  std::atomic<bool> forked{false};
};

ProcessSession& process_session() {
  static auto* state = new ProcessSession;
  return *state;
}

void forked_child() {
  ProcessSession& state = process_session();
  state.forked = true;
  if (MemberSession* session = state.session.load()) session->disown();
}

void unpin_through_host(std::uint64_t pin_id) { hostcall::unpin(pin_id); }

std::string attach(ProcessSession& state) {
  const char* value = std::getenv(kArenaVariable);
  if (value == nullptr) return "not in a pat group: PAT_ARENA is not set (start the program with patctl run)";
  auto location = parse_location(value);
  if (!location) return std::string("not in a pat group: PAT_ARENA=") + value + " is malformed";
  if (hostcall::ping() < 0) {
    return "not in a pat group: no pat host answers this process (PAT_ARENA is set, so it may be a fork child "
           "or an exec'd program of a member: those live outside the group's address space)";
  }
  try {
    Arena arena = Arena::attach(reinterpret_cast<void*>(location->address), location->size);
    pid_t pid = ::getpid();
    auto slot = MemberTable(arena).find_alive(pid);
    if (!slot) {
      return "not in a pat group's data plane: the group's member table has no entry for pid " + std::to_string(pid) +
             " (it had " + std::to_string(kMaxMembers) + " members when this one started)";
    }
    std::uint64_t empty = 0, mine = reinterpret_cast<std::uint64_t>(&state);
    if (!arena.member(*slot).attached_session.compare_exchange_strong(empty, mine)) {
      return "libpat is loaded twice in this process (for example libpat.so beside the pat Python package's "
             "own copy): only the first copy may use the group's data plane";
    }
    state.session.store(new MemberSession(arena, *slot, pid, unpin_through_host), std::memory_order_release);
  } catch (const Error& error) {
    return error.what();
  }
  ::pthread_atfork(nullptr, nullptr, forked_child);
  return {};
}

thread_local MemberSession* thread_override = nullptr;

}  // namespace

ThreadMemberOverride::ThreadMemberOverride(MemberSession& session) : previous_(thread_override) {
  thread_override = &session;
}

ThreadMemberOverride::~ThreadMemberOverride() { thread_override = previous_; }

MemberSession& this_member() {
  if (thread_override) return *thread_override;
  ProcessSession& state = process_session();
  if (state.forked) {
    throw Error(Errc::NotInGroup, "not in a pat group: this process is a fork child of a member; it has a copy of "
                                  "the group's memory, not the group's");
  }
  if (MemberSession* session = state.session.load(std::memory_order_acquire)) return *session;
  std::lock_guard lock(state.looking);
  if (!state.looked) {
    state.looked = true;
    state.why_not = attach(state);
  }
  if (MemberSession* session = state.session.load(std::memory_order_acquire)) return *session;
  throw Error(Errc::NotInGroup, state.why_not);
}

void look_again() {
  ProcessSession& state = process_session();
  std::lock_guard lock(state.looking);
  state.looked = false;
}

}  // namespace pat::dataplane
