// FramedSocket: one connected AF_UNIX stream socket speaking NUL-framed JSON
// (proto/frame.h), with file descriptors passed beside messages (SCM_RIGHTS).
// Used by both ends of every pat link: patd's clients, patd <-> pat-host.
//
// Reads are coroutine calls; writes are queued and drained by one writer, so
// any handler may send at any time without interleaving frames.
#pragma once

#include "base/unique_fd.h"
#include "daemon/rpc/asio.h"
#include "proto/frame.h"

#include <algorithm>
#include <deque>
#include <list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace pat::rpc {

struct Frame {
  std::string text;            // without the NUL
  std::vector<UniqueFd> fds;   // received with it
};

// The stream broke in a way that cannot be recovered: oversized frame, too
// many fds, an I/O error. The connection must be closed.
class FramingError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Unsent bytes counted across several sockets (one user's connections to
// patd), so that many connections cannot multiply the per-socket bound.
class SendBudget {
 public:
  explicit SendBudget(std::size_t limit) : limit_(limit) {}
  bool take(std::size_t bytes) {
    if (used_ + bytes > limit_) return false;
    used_ += bytes;
    peak_ = std::max(peak_, used_);
    return true;
  }
  void give_back(std::size_t bytes) { used_ -= std::min(bytes, used_); }
  std::size_t used() const { return used_; }
  std::size_t peak() const { return peak_; }  // the most ever queued at once

 private:
  std::size_t limit_;
  std::size_t used_ = 0;
  std::size_t peak_ = 0;
};

class FramedSocket : public std::enable_shared_from_this<FramedSocket> {
 public:
  // More fds than this in one message is a framing violation. The largest
  // legitimate use is a member's stdin, stdout and stderr.
  static constexpr std::size_t kMaxFdsPerMessage = 8;
  // A peer that stops reading while we keep queueing is dropped past this.
  static constexpr std::size_t kMaxQueuedBytes = 16 << 20;

  explicit FramedSocket(LocalSocket socket, std::size_t max_frame = proto::kMaxFrameBytes);

  // The next frame and the fds that came with it; nullopt at end of stream.
  asio::awaitable<std::optional<Frame>> read();

  // Queues a complete frame (NUL included) with fds to pass along; never blocks.
  void send(std::string frame, std::vector<UniqueFd> fds = {});
  // Closes once everything queued so far is written.
  void close_after_flush();
  void close();
  bool is_open() const { return socket_.is_open(); }

  // Also count what this socket queues against `budget`; a send past it
  // closes the socket, as one past kMaxQueuedBytes does.
  void share_budget(std::shared_ptr<SendBudget> budget) { budget_ = std::move(budget); }

  // Bytes queued by send() that the peer has not taken yet.
  std::size_t unsent_bytes() const { return queued_bytes_; }
  // Returns once at most `bytes` remain unsent, or the socket is closed: how a
  // streaming call keeps its own backlog bounded instead of growing ours.
  asio::awaitable<void> drained_to(std::size_t bytes);

  LocalSocket& socket() { return socket_; }
  int native_handle() { return socket_.native_handle(); }

 private:
  struct Outgoing {
    std::string bytes;
    std::vector<UniqueFd> fds;
  };
  bool receive_available(std::vector<UniqueFd>& fds);  // false at EOF
  asio::awaitable<void> write_loop();
  void wake_drain_waiters();

  LocalSocket socket_;
  proto::FrameDecoder decoder_;
  std::vector<UniqueFd> pending_fds_;  // arrived, not yet attached to a frame
  bool eof_ = false;
  std::deque<Outgoing> outgoing_;
  std::size_t queued_bytes_ = 0;
  std::shared_ptr<SendBudget> budget_;  // see share_budget
  bool writing_ = false;
  bool close_when_flushed_ = false;
  std::list<asio::steady_timer*> drain_waiters_;  // each cancelled when a frame is written or on close
};

}  // namespace pat::rpc
