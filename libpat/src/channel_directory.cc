#include "libpat/src/channel_directory.h"

#include "libpat/src/block_allocator.h"
#include "libpat/src/channel_queue.h"
#include "libpat/src/futex.h"

#include <cassert>
#include <cstring>

namespace pat::dataplane {

namespace {

// FNV-1a, 32 bits: only to skip most entries without touching their slots.
std::uint32_t name_hash(std::string_view name) {
  std::uint32_t hash = 2166136261u;
  for (char c : name) hash = (hash ^ static_cast<unsigned char>(c)) * 16777619u;
  return hash;
}

bool has(Role role, Role part) { return (static_cast<unsigned>(role) & static_cast<unsigned>(part)) != 0; }

bool in_use(ChannelState state) { return state == ChannelState::Open || state == ChannelState::Closed; }

// Nothing happens under the directory lock that a dead holder could leave
// half-done except create(), whose entry stays Creating: abandoned entries
// are reclaimed when seen (reclaim_abandoned).
RobustLock lock_directory(ChannelTable& table, RobustLock::Mode mode) {
  return RobustLock(table.lock, mode, [] {});
}

void check_options(const ChannelOptions& options) {
  auto fail = [](const std::string& what) { throw Error(Errc::InvalidArgument, "channel options: " + what); };
  if (options.capacity == 0 || options.capacity > ChannelDirectory::kMaxCapacity) {
    fail("capacity must be 1 to " + std::to_string(ChannelDirectory::kMaxCapacity));
  }
  if (options.max_bytes > ChannelDirectory::kMaxBytes) {
    fail("max_bytes must be at most " + std::to_string(ChannelDirectory::kMaxBytes));
  }
  if (options.max_buffers > ChannelDirectory::kMaxBuffers) {
    fail("max_buffers must be at most " + std::to_string(ChannelDirectory::kMaxBuffers));
  }
}

}  // namespace

std::optional<std::size_t> ChannelDirectory::find(std::string_view name, std::uint32_t hash) const {
  ChannelTable& table = arena_.channels();
  for (std::size_t i = 0; i < kMaxChannels; ++i) {
    const DirectoryEntry& entry = table.entries[i];
    if (in_use(entry.state.load(std::memory_order_acquire)) && entry.name_hash == hash &&
        name == std::string_view(table.slots[i].name)) {
      return i;
    }
  }
  return std::nullopt;
}

// Everything is written before the entry turns Open (the commit); until
// then a dead creator leaves an entry that reclaim_abandoned() takes back.
std::size_t ChannelDirectory::create(std::string_view name, std::uint32_t hash, const ChannelOptions& options) {
  ChannelTable& table = arena_.channels();
  std::size_t index = kMaxChannels;
  for (std::size_t i = 0; i < kMaxChannels && index == kMaxChannels; ++i) {
    ChannelState state = table.entries[i].state.load(std::memory_order_acquire);
    if (state == ChannelState::Creating) reclaim_abandoned(i, RobustLock::Mode::Wait);
    if (table.entries[i].state.load(std::memory_order_acquire) == ChannelState::Free) index = i;
  }
  if (index == kMaxChannels) {
    throw Error(Errc::LimitReached, "the group has " + std::to_string(kMaxChannels) + " channels already");
  }
  DirectoryEntry& entry = table.entries[index];
  ChannelSlot& c = table.slots[index];
  entry.state.store(ChannelState::Creating, std::memory_order_release);
  c.ring = 0;
  init_robust_mutex(c.lock);
  std::memset(c.name, 0, sizeof(c.name));
  std::memcpy(c.name, name.data(), name.size());
  c.capacity = options.capacity;
  c.max_bytes = options.max_bytes;
  c.max_buffers = options.max_buffers;
  c.slot_bytes = static_cast<std::uint32_t>(ChannelQueue::slot_bytes(options.max_bytes, options.max_buffers));
  c.head.store(0);
  c.tail.store(0);
  c.senders_waiting = c.receivers_waiting = 0;
  c.senders_lost_by_death = c.receivers_lost_by_death = 0;
  c.messages_sent = c.messages_received = 0;
  std::memset(c.attachments, 0, sizeof(c.attachments));
  {
    BlockAllocator allocator(arena_);
    auto heap = allocator.lock(RobustLock::Mode::Wait);
    void* ring = heap->allocate(std::size_t{c.capacity} * c.slot_bytes);
    if (ring == nullptr) {
      entry.state.store(ChannelState::Free, std::memory_order_release);
      throw Error(Errc::OutOfMemory, "no arena memory for channel '" + std::string(name) + "'");
    }
    c.ring = arena_.offset_of(ring);
  }
  entry.name_hash = hash;
  entry.state.store(ChannelState::Open, std::memory_order_release);
  return index;
}

// The attachment's counts are written before member_slot, which commits it.
std::size_t ChannelDirectory::attach(std::size_t channel, Role role, std::size_t member) {
  ChannelSlot& c = arena_.channels().slots[channel];
  std::size_t found = kMaxAttachments;
  for (std::size_t i = 0; i < kMaxAttachments; ++i) {
    if (c.attachments[i].member_slot == member + 1) {
      found = i;
      break;
    }
    if (found == kMaxAttachments && c.attachments[i].member_slot == 0) found = i;
  }
  if (found == kMaxAttachments) {
    throw Error(Errc::LimitReached, "channel '" + std::string(c.name) + "' has " + std::to_string(kMaxAttachments) +
                                        " members attached already");
  }
  Attachment& a = c.attachments[found];
  if (a.member_slot == 0) {
    a.send_opens = a.receive_opens = a.waiting_senders = a.waiting_receivers = 0;
    a.member_slot = static_cast<std::uint32_t>(member + 1);
  }
  if (has(role, Role::Send)) {
    a.send_opens++;
    c.senders_lost_by_death = 0;
  }
  if (has(role, Role::Receive)) {
    a.receive_opens++;
    c.receivers_lost_by_death = 0;
  }
  return found;
}

ChannelDirectory::Opened ChannelDirectory::open(std::string_view name, Role role, const ChannelOptions& options,
                                                std::size_t member) {
  if (name.empty() || name.size() >= kChannelNameBytes || name.find('\0') != std::string_view::npos) {
    throw Error(Errc::InvalidArgument,
                "a channel name has 1 to " + std::to_string(kChannelNameBytes - 1) + " bytes and no NUL");
  }
  if (!has(role, Role::Both)) throw Error(Errc::InvalidArgument, "a channel is opened to send, receive or both");
  check_options(options);
  ChannelTable& table = arena_.channels();
  RobustLock directory = lock_directory(table, RobustLock::Mode::Wait);
  std::uint32_t hash = name_hash(name);
  std::optional<std::size_t> channel = find(name, hash);
  if (!channel) channel = create(name, hash, options);
  RobustLock held = ChannelQueue::lock(table.slots[*channel], RobustLock::Mode::Wait);
  try {
    return Opened{*channel, attach(*channel, role, member)};
  } catch (...) {
    destroy_if_unused(*channel, RobustLock::Mode::Wait);  // the one we may just have made
    throw;
  }
}

void ChannelDirectory::detach(const Opened& opened, Role role) {
  ChannelTable& table = arena_.channels();
  RobustLock directory = lock_directory(table, RobustLock::Mode::Wait);
  ChannelSlot& c = table.slots[opened.channel];
  RobustLock held = ChannelQueue::lock(c, RobustLock::Mode::Wait);
  Attachment& a = c.attachments[opened.attachment];
  assert(a.member_slot != 0);
  if (has(role, Role::Send)) {
    assert(a.send_opens > 0);
    a.send_opens--;
  }
  if (has(role, Role::Receive)) {
    assert(a.receive_opens > 0);
    a.receive_opens--;
  }
  if (a.send_opens == 0 && a.receive_opens == 0) a.member_slot = 0;
  destroy_if_unused(opened.channel, RobustLock::Mode::Wait);
}

bool ChannelDirectory::destroy_if_unused(std::size_t channel, RobustLock::Mode mode) {
  ChannelSlot& c = arena_.channels().slots[channel];
  if (c.head.load() != c.tail.load()) return true;  // messages wait for a receiver
  for (const Attachment& a : c.attachments) {
    if (a.member_slot != 0) return true;
  }
  return release_entry(channel, mode);
}

bool ChannelDirectory::reclaim_abandoned(std::size_t channel, RobustLock::Mode mode) {
  return release_entry(channel, mode);
}

// Frees the ring (if it was allocated) and the entry. On a damaged heap the
// ring stays allocated, and the entry is freed all the same: callers run in
// destructors and in the host, which must go on.
bool ChannelDirectory::release_entry(std::size_t channel, RobustLock::Mode mode) {
  ChannelTable& table = arena_.channels();
  ChannelSlot& c = table.slots[channel];
  if (c.ring != 0) {
    try {
      BlockAllocator allocator(arena_);
      auto heap = allocator.lock(mode);
      if (!heap) return false;
      heap->deallocate(arena_.at<void>(c.ring));
    } catch (const Error&) {
    }
    c.ring = 0;
  }
  table.entries[channel].state.store(ChannelState::Free, std::memory_order_release);
  return true;
}

bool ChannelDirectory::end_member(std::size_t member) {
  ChannelTable& table = arena_.channels();
  RobustLock directory = lock_directory(table, RobustLock::Mode::Try);
  if (!directory.held()) return false;
  bool done = true;
  for (std::size_t i = 0; i < kMaxChannels; ++i) {
    ChannelState state = table.entries[i].state.load(std::memory_order_acquire);
    if (state == ChannelState::Creating) {
      done = reclaim_abandoned(i, RobustLock::Mode::Try) && done;
      continue;
    }
    if (!in_use(state)) continue;
    ChannelSlot& c = table.slots[i];
    RobustLock held = ChannelQueue::lock(c, RobustLock::Mode::Try);
    if (!held.held()) {
      done = false;
      continue;
    }
    bool was_sender = false, was_receiver = false, sender_left = false, receiver_left = false;
    for (Attachment& a : c.attachments) {
      if (a.member_slot == member + 1) {
        was_sender = was_sender || a.send_opens > 0;
        was_receiver = was_receiver || a.receive_opens > 0;
        c.senders_waiting -= a.waiting_senders;
        c.receivers_waiting -= a.waiting_receivers;
        a.member_slot = 0;
      } else if (a.member_slot != 0) {
        sender_left = sender_left || a.send_opens > 0;
        receiver_left = receiver_left || a.receive_opens > 0;
      }
    }
    bool changed = was_sender || was_receiver;
    if (was_sender && !sender_left) c.senders_lost_by_death = 1;
    if (was_receiver && !receiver_left) c.receivers_lost_by_death = 1;
    if (changed) {
      c.items_seq.fetch_add(1, std::memory_order_relaxed);
      c.space_seq.fetch_add(1, std::memory_order_relaxed);
    }
    done = destroy_if_unused(i, RobustLock::Mode::Try) && done;
    held.unlock();
    // A destroyed channel had nobody attached, so nobody waits on it.
    if (changed) {
      futex_wake(c.items_seq, kWakeAll);
      futex_wake(c.space_seq, kWakeAll);
    }
  }
  return done;
}

std::size_t ChannelDirectory::count() const {
  std::size_t n = 0;
  for (const DirectoryEntry& entry : arena_.channels().entries) n += in_use(entry.state.load()) ? 1 : 0;
  return n;
}

}  // namespace pat::dataplane
