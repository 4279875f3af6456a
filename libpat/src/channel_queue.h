// ChannelQueue: sending and receiving on one channel (ChannelSlot) as one of
// its attached members: a bounded ring of MessageSlots under the channel's
// robust lock, with futex waits on items_seq (receivers) and space_seq
// (senders). What a message carries is references: each buffer handle in a
// queued message is one counted reference, owned by the channel until a
// receiver takes it (buffer_store.h says in which order).
//
// Commit points, so that a member dying halfway leaves a usable channel:
// a send fills the slot at `tail`, counts its references, then `tail++`;
// a receive copies the slot at `head` out, then `head++`. Whoever takes the
// lock after a dead holder recomputes the waiter counts (repair()).
//
// A waiter spins for up to kSpin before it sleeps, when the peer can run
// meanwhile (polling_policy.h: more than one CPU, none of them wanted by
// another runnable task): waking a sleeper on another CPU costs about 40 µs
// on this machine class (an IPI to an idle vCPU), a reply within the spin
// costs well under one.
//
// Peer death (docs/dataplane.md "Peer death"): when the host ends a member
// that was attached, it removes the attachment, sets senders_lost_by_death
// (receivers_...) if no sender (receiver) is left attached, and wakes every
// waiter. A receive that would block then fails with PeerDied if that flag
// is set and no other member is attached as a sender; a send that would
// block, likewise on the receivers' side.
#pragma once

#include "libpat/src/arena.h"
#include "libpat/src/futex.h"
#include "libpat/src/robust_mutex.h"

#include <sys/types.h>

#include <cstddef>
#include <span>
#include <vector>

namespace pat::dataplane {

enum class ChannelStatus { Ok, TimedOut, Closed, PeerDied, Interrupted };

struct ReceivedMessage {
  std::vector<std::byte> bytes;
  std::vector<Handle> handles;  // one counted reference each, now the receiver's to record
  pid_t sender = 0;
};

class ChannelQueue {
 public:
  static constexpr std::chrono::microseconds kSpin{20};

  // Locks `channel`, repairing it if its previous holder died.
  static RobustLock lock(ChannelSlot& channel, RobustLock::Mode mode);
  // The stride of a ring slot for these limits.
  static std::size_t slot_bytes(std::uint32_t max_bytes, std::uint32_t max_buffers);

  ChannelQueue(const Arena& arena, std::size_t channel, std::size_t attachment)
      : arena_(arena), channel_(channel), attachment_(attachment) {}

  // The caller holds a reference to every handle; the message gets its own.
  // Sizes are checked by the caller against the channel's limits.
  ChannelStatus send(std::span<const std::byte> bytes, std::span<const Handle> handles, pid_t sender,
                     Deadline deadline, bool return_on_signal);
  ChannelStatus receive(ReceivedMessage& out, Deadline deadline, bool return_on_signal);
  void close();

  std::size_t queued() const;
  bool closed() const;
  ChannelSlot& slot() const;

 private:
  enum class Side { Send, Receive };
  // With the lock held (and held again on return): waits until this side
  // can proceed. Ok, or why not.
  ChannelStatus await(RobustLock& held, Side side, Deadline deadline, bool return_on_signal);
  bool ready(Side side) const;
  // Without the lock: true once this side may be able to proceed.
  bool spin_until_ready(Side side, Deadline deadline) const;
  bool peer_died(Side side) const;
  std::byte* ring_slot(std::uint64_t position) const;

  Arena arena_;
  std::size_t channel_;
  std::size_t attachment_;
};

}  // namespace pat::dataplane
