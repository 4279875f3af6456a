#include "libpat/src/channel_queue.h"

#include "libpat/src/buffer_store.h"
#include "libpat/src/polling_policy.h"

#include <cassert>
#include <cstring>

namespace pat::dataplane {

namespace {

constexpr std::size_t align_up(std::size_t value, std::size_t alignment) {
  return (value + alignment - 1) & ~(alignment - 1);
}

bool attached(const Attachment& a) { return a.member_slot != 0; }

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// The waiter counts are sums over the attachments; a holder that died may
// have changed one side and not the other.
void repair(ChannelSlot& channel) {
  std::uint32_t senders = 0, receivers = 0;
  for (const Attachment& a : channel.attachments) {
    if (!attached(a)) continue;
    senders += a.waiting_senders;
    receivers += a.waiting_receivers;
  }
  channel.senders_waiting = senders;
  channel.receivers_waiting = receivers;
  assert(channel.tail.load() - channel.head.load() <= channel.capacity);
}

}  // namespace

RobustLock ChannelQueue::lock(ChannelSlot& channel, RobustLock::Mode mode) {
  return RobustLock(channel.lock, mode, [&channel] { repair(channel); });
}

std::size_t ChannelQueue::slot_bytes(std::uint32_t max_bytes, std::uint32_t max_buffers) {
  return align_up(sizeof(MessageSlotHeader) + std::size_t{max_buffers} * sizeof(Handle) + max_bytes, kCacheLine);
}

ChannelSlot& ChannelQueue::slot() const { return arena_.channels().slots[channel_]; }

std::byte* ChannelQueue::ring_slot(std::uint64_t position) const {
  const ChannelSlot& c = slot();
  return arena_.at<std::byte>(c.ring) + (position % c.capacity) * c.slot_bytes;
}

bool ChannelQueue::ready(Side side) const {
  const ChannelSlot& c = slot();
  std::uint64_t head = c.head.load(std::memory_order_acquire), tail = c.tail.load(std::memory_order_acquire);
  return side == Side::Send ? tail - head < c.capacity : head != tail;
}

bool ChannelQueue::spin_until_ready(Side side, Deadline deadline) const {
  auto until = std::chrono::steady_clock::now() + kSpin;
  if (deadline && *deadline < until) until = *deadline;
  do {
    for (int i = 0; i < 64; ++i) {
      if (ready(side) || closed()) return true;
      cpu_relax();
    }
  } while (std::chrono::steady_clock::now() < until);
  return false;
}

bool ChannelQueue::peer_died(Side side) const {
  const ChannelSlot& c = slot();
  if (!(side == Side::Receive ? c.senders_lost_by_death : c.receivers_lost_by_death)) return false;
  for (std::size_t i = 0; i < kMaxAttachments; ++i) {
    const Attachment& a = c.attachments[i];
    if (i == attachment_ || !attached(a)) continue;
    if ((side == Side::Receive ? a.send_opens : a.receive_opens) > 0) return false;
  }
  return true;
}

ChannelStatus ChannelQueue::await(RobustLock& held, Side side, Deadline deadline, bool return_on_signal) {
  ChannelSlot& c = slot();
  Attachment& me = c.attachments[attachment_];
  auto& word = side == Side::Send ? c.space_seq : c.items_seq;
  auto& waiting = side == Side::Send ? c.senders_waiting : c.receivers_waiting;
  auto& my_waiting = side == Side::Send ? me.waiting_senders : me.waiting_receivers;
  bool spun = false;
  for (;;) {
    if (closed() && (side == Side::Send || c.head.load() == c.tail.load())) return ChannelStatus::Closed;
    if (ready(side)) return ChannelStatus::Ok;
    if (peer_died(side)) return ChannelStatus::PeerDied;
    if (deadline && std::chrono::steady_clock::now() >= *deadline) return ChannelStatus::TimedOut;
    if (!spun && polling_pays()) {
      spun = true;
      held.unlock();
      spin_until_ready(side, deadline);
      held = lock(c, RobustLock::Mode::Wait);
      continue;
    }
    std::uint32_t seen = word.load(std::memory_order_relaxed);
    waiting++;
    my_waiting++;
    held.unlock();
    WaitResult woke = futex_wait(word, seen, deadline);
    held = lock(c, RobustLock::Mode::Wait);
    waiting--;
    my_waiting--;
    if (woke == WaitResult::Interrupted && return_on_signal) return ChannelStatus::Interrupted;
  }
}

ChannelStatus ChannelQueue::send(std::span<const std::byte> bytes, std::span<const Handle> handles, pid_t sender,
                                 Deadline deadline, bool return_on_signal) {
  ChannelSlot& c = slot();
  assert(bytes.size() <= c.max_bytes && handles.size() <= c.max_buffers);
  RobustLock held = lock(c, RobustLock::Mode::Wait);
  if (ChannelStatus status = await(held, Side::Send, deadline, return_on_signal); status != ChannelStatus::Ok) {
    return status;
  }
  std::uint64_t tail = c.tail.load(std::memory_order_relaxed);
  std::byte* out = ring_slot(tail);
  MessageSlotHeader header{static_cast<std::uint32_t>(bytes.size()), static_cast<std::uint32_t>(handles.size()),
                           sender, 0};
  std::memcpy(out, &header, sizeof(header));
  if (!handles.empty()) std::memcpy(out + sizeof(header), handles.data(), handles.size_bytes());
  if (!bytes.empty()) {
    std::memcpy(out + sizeof(header) + std::size_t{c.max_buffers} * sizeof(Handle), bytes.data(), bytes.size());
  }
  // The message's own references, counted before it becomes visible.
  BufferStore buffers(arena_);
  for (Handle handle : handles) buffers.add_reference(handle);
  c.tail.store(tail + 1, std::memory_order_release);  // commit
  c.messages_sent++;
  bool wake = c.receivers_waiting > 0;
  if (wake) c.items_seq.fetch_add(1, std::memory_order_relaxed);
  held.unlock();
  if (wake) futex_wake(c.items_seq, 1);
  return ChannelStatus::Ok;
}

ChannelStatus ChannelQueue::receive(ReceivedMessage& out, Deadline deadline, bool return_on_signal) {
  ChannelSlot& c = slot();
  RobustLock held = lock(c, RobustLock::Mode::Wait);
  if (ChannelStatus status = await(held, Side::Receive, deadline, return_on_signal); status != ChannelStatus::Ok) {
    return status;
  }
  std::uint64_t head = c.head.load(std::memory_order_relaxed);
  const std::byte* in = ring_slot(head);
  MessageSlotHeader header;
  std::memcpy(&header, in, sizeof(header));
  assert(header.bytes <= c.max_bytes && header.buffers <= c.max_buffers);
  out.sender = header.sender_pid;
  out.handles.resize(header.buffers);
  if (header.buffers != 0) std::memcpy(out.handles.data(), in + sizeof(header), header.buffers * sizeof(Handle));
  const std::byte* payload = in + sizeof(header) + std::size_t{c.max_buffers} * sizeof(Handle);
  out.bytes.assign(payload, payload + header.bytes);
  c.head.store(head + 1, std::memory_order_release);  // commit: the references are the receiver's from here on
  c.messages_received++;
  bool wake = c.senders_waiting > 0;
  if (wake) c.space_seq.fetch_add(1, std::memory_order_relaxed);
  held.unlock();
  if (wake) futex_wake(c.space_seq, 1);
  return ChannelStatus::Ok;
}

void ChannelQueue::close() {
  ChannelSlot& c = slot();
  auto& entry = arena_.channels().entries[channel_];
  {
    RobustLock held = lock(c, RobustLock::Mode::Wait);
    if (entry.state.load() == ChannelState::Open) entry.state.store(ChannelState::Closed);
    c.items_seq.fetch_add(1, std::memory_order_relaxed);
    c.space_seq.fetch_add(1, std::memory_order_relaxed);
  }
  futex_wake(c.items_seq, kWakeAll);
  futex_wake(c.space_seq, kWakeAll);
}

std::size_t ChannelQueue::queued() const {
  ChannelSlot& c = slot();
  RobustLock held = lock(c, RobustLock::Mode::Wait);
  return c.tail.load() - c.head.load();
}

bool ChannelQueue::closed() const {
  return arena_.channels().entries[channel_].state.load(std::memory_order_acquire) == ChannelState::Closed;
}

}  // namespace pat::dataplane
