#include "libpat/src/member_table.h"

#include <cassert>
#include <chrono>
#include <cstring>

namespace pat::dataplane {

namespace {

std::uint64_t unix_now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

// argv as NUL-separated strings, cut at a whole string so that a reader
// never sees half an argument.
void write_argv(MemberSlot& slot, const std::vector<std::string>& argv) {
  std::size_t used = 0;
  slot.argv_truncated = 0;
  for (const auto& arg : argv) {
    if (used + arg.size() + 1 > kArgvBytes) {
      slot.argv_truncated = 1;
      break;
    }
    std::memcpy(slot.argv + used, arg.c_str(), arg.size() + 1);
    used += arg.size() + 1;
  }
  slot.argc = static_cast<std::uint32_t>(argv.size());
  slot.argv_bytes = static_cast<std::uint32_t>(used);
}

}  // namespace

std::optional<std::size_t> MemberTable::add(pid_t pid, const std::vector<std::string>& argv) {
  for (std::size_t index = 0; index < kMaxMembers; ++index) {
    MemberSlot& slot = arena_.member(index);
    if (slot.state.load(std::memory_order_acquire) != MemberState::Free) continue;
    // Seqlock write: odd while the fields change.
    slot.sequence.fetch_add(1, std::memory_order_acq_rel);
    slot.pid = pid;
    slot.started_unix_ns = unix_now_ns();
    write_argv(slot, argv);
    slot.holder_set.store(0, std::memory_order_relaxed);
    slot.attached_session.store(0, std::memory_order_relaxed);
    slot.sequence.fetch_add(1, std::memory_order_release);
    slot.state.store(MemberState::Alive, std::memory_order_release);
    return index;
  }
  return std::nullopt;
}

void MemberTable::mark_ending(std::size_t index) {
  assert(arena_.member(index).state.load() == MemberState::Alive);
  arena_.member(index).state.store(MemberState::Ending, std::memory_order_release);
}

void MemberTable::release(std::size_t index) {
  MemberSlot& slot = arena_.member(index);
  assert(slot.state.load() == MemberState::Ending && slot.holder_set.load() == 0);
  slot.state.store(MemberState::Free, std::memory_order_release);
}

std::vector<std::size_t> MemberTable::ending() const {
  std::vector<std::size_t> out;
  for (std::size_t index = 0; index < kMaxMembers; ++index) {
    if (arena_.member(index).state.load(std::memory_order_acquire) == MemberState::Ending) out.push_back(index);
  }
  return out;
}

std::optional<std::size_t> MemberTable::find_alive(pid_t pid) const {
  for (std::size_t index = 0; index < kMaxMembers; ++index) {
    const MemberSlot& slot = arena_.member(index);
    if (slot.state.load(std::memory_order_acquire) == MemberState::Alive && slot.pid == pid) return index;
  }
  return std::nullopt;
}

std::optional<MemberRecord> MemberTable::read(std::size_t index) const {
  const MemberSlot& slot = arena_.member(index);
  for (int attempt = 0; attempt < 8; ++attempt) {
    std::uint32_t before = slot.sequence.load(std::memory_order_acquire);
    if (slot.state.load(std::memory_order_acquire) != MemberState::Alive) return std::nullopt;
    if (before % 2 != 0) continue;
    MemberRecord record{index, slot.pid, {}, slot.argv_truncated != 0};
    std::size_t used = std::min<std::size_t>(slot.argv_bytes, kArgvBytes);
    std::string joined(slot.argv, used);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (slot.sequence.load(std::memory_order_relaxed) != before) continue;
    for (std::size_t start = 0; start < joined.size();) {
      std::size_t end = joined.find('\0', start);
      if (end == std::string::npos) end = joined.size();
      record.argv.emplace_back(joined, start, end - start);
      start = end + 1;
    }
    return record;
  }
  return std::nullopt;
}

std::vector<MemberRecord> MemberTable::alive() const {
  std::vector<MemberRecord> out;
  for (std::size_t index = 0; index < kMaxMembers; ++index) {
    if (auto record = read(index)) out.push_back(std::move(*record));
  }
  return out;
}

}  // namespace pat::dataplane
