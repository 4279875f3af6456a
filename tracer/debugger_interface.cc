#include "tracer/debugger_interface.h"

#include <cassert>
#include <cstring>
#include <deque>
#include <memory>
#include <vector>

// Zero until a DebuggerInterface exists: a reader that finds no magic knows
// the host has no table (yet).
__attribute__((visibility("default"), used)) pat_debugger_interface_v1 pat_debugger_interface = {};

namespace pat::tracer {

static_assert(sizeof(pat_debug_member) == 64, "the version 1 layout");
static_assert(sizeof(pat_debugger_interface_v1) == 40, "the version 1 layout");

namespace {

std::uint64_t address_of(const void* pointer) { return reinterpret_cast<std::uint64_t>(pointer); }

// generation is odd from begin_change() to end_change(). The fences order the
// table's plain stores between the two generation stores, as a seqlock's
// writer does; readers are other processes reading our memory.
void begin_change() {
  __atomic_store_n(&pat_debugger_interface.generation, pat_debugger_interface.generation + 1, __ATOMIC_RELAXED);
  __atomic_thread_fence(__ATOMIC_RELEASE);
}

void end_change() {
  __atomic_thread_fence(__ATOMIC_RELEASE);
  __atomic_store_n(&pat_debugger_interface.generation, pat_debugger_interface.generation + 1, __ATOMIC_RELAXED);
}

}  // namespace

struct DebuggerInterface::Storage {
  std::string group;
  std::vector<pat_debug_member> members;
  // Program paths, by pid; a deque so that no string moves while listed.
  std::deque<std::pair<pid_t, std::unique_ptr<std::string>>> programs;
};

DebuggerInterface::DebuggerInterface(const std::string& group) : storage_(new Storage{group, {}, {}}) {
  assert(pat_debugger_interface.version == 0 && "one DebuggerInterface per process");
  pat_debugger_interface.generation = 1;
  std::memcpy(pat_debugger_interface.magic, "patdbg1", 8);
  pat_debugger_interface.version = 1;
  pat_debugger_interface.entry_size = sizeof(pat_debug_member);
  pat_debugger_interface.group = address_of(storage_->group.c_str());
  end_change();
}

DebuggerInterface::~DebuggerInterface() {
  begin_change();
  pat_debugger_interface = {};
  delete storage_;
}

void DebuggerInterface::add(const DebugMemberInfo& member) {
  auto& programs = storage_->programs;
  programs.emplace_back(member.pid, std::make_unique<std::string>(member.program));
  pat_debug_member entry{};
  entry.pid = member.pid;
  entry.program = address_of(programs.back().second->c_str());
  entry.load_bias = member.load_bias;
  entry.interpreter_base = member.interpreter_base;
  begin_change();
  storage_->members.push_back(entry);  // may move the array: published below
  pat_debugger_interface.members = address_of(storage_->members.data());
  pat_debugger_interface.count = static_cast<std::uint32_t>(storage_->members.size());
  end_change();
}

void DebuggerInterface::remove(pid_t pid) {
  auto& members = storage_->members;
  begin_change();
  for (std::size_t i = 0; i < members.size(); ++i) {
    if (members[i].pid != pid) continue;
    members[i] = members.back();
    members.pop_back();
    break;
  }
  pat_debugger_interface.count = static_cast<std::uint32_t>(members.size());
  end_change();
  // Its path goes once no entry points at it.
  auto& programs = storage_->programs;
  for (auto it = programs.begin(); it != programs.end(); ++it) {
    if (it->first == pid) {
      programs.erase(it);
      break;
    }
  }
}

}  // namespace pat::tracer
