// UnixServer: accepts connections on a listening AF_UNIX stream socket and
// runs one Session per connection against a Service. Owns the limits that keep
// one bad client from hurting the others: a cap on connections, an idle
// timeout, a cap on calls queued per connection. Connections are served in
// the order their calls arrive; a session never blocks the event loop.
#pragma once

#include "daemon/rpc/asio.h"
#include "daemon/rpc/service.h"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>

namespace pat::rpc {

struct ServerLimits {
  std::size_t max_connections = 1024;
  // One user's share (issue 13, 1.7: one user's 1,024 idle connections
  // locked everyone else out). Root is not bound by it, and the last
  // reserved_for_root() connections are root's alone, so that an operator
  // can always connect to see what is going on.
  std::size_t max_connections_per_uid = 64;
  std::size_t reserved_for_root() const { return std::min<std::size_t>(16, max_connections / 4); }
  // Replies queued for one user's connections that the user does not read,
  // all connections together (each one is also bounded by
  // FramedSocket::kMaxQueuedBytes). Past it the connection that queues more
  // is dropped.
  std::size_t max_unsent_bytes_per_uid = 32 << 20;
  // A connection with no call running and nothing received for this long is
  // closed. Streaming calls (a member running) are never idle.
  std::chrono::milliseconds idle_timeout{60'000};
  std::size_t max_queued_calls = 32;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<FramedSocket> socket, PeerCredentials peer, const Service& service,
          const ServerLimits& limits, std::function<void()> on_closed);
  ~Session();
  void start();
  // Sends what is queued, then closes: the server is going away.
  void finish() { socket_->close_after_flush(); }

 private:
  asio::awaitable<void> read_loop();
  void start_processing();
  asio::awaitable<void> process_loop();
  void arm_idle_timer();
  void finish_if_done();

  std::shared_ptr<FramedSocket> socket_;
  PeerCredentials peer_;
  const Service& service_;
  const ServerLimits& limits_;
  std::function<void()> on_closed_;
  asio::steady_timer idle_timer_;
  std::deque<Frame> queued_;
  bool processing_ = false;
  bool reading_done_ = false;
  std::shared_ptr<DisconnectNotice> disconnect_ = std::make_shared<DisconnectNotice>();
};

class UnixServer {
 public:
  UnixServer(asio::io_context& io, LocalAcceptor acceptor, const Service& service, ServerLimits limits);
  void start();
  void stop();  // stops accepting; running sessions finish on their own
  // Stops accepting, lets every session flush its replies and close, and
  // calls `closed` once the last one is gone.
  void shut_down(std::function<void()> closed);
  std::size_t connections() const { return connections_; }
  const ServerLimits& limits() const { return limits_; }

 private:
  asio::awaitable<void> accept_loop();
  void refuse(LocalSocket socket, const char* why);
  void session_closed(uid_t uid);
  // Why a connection of `uid` is refused, or nullptr.
  const char* refusal_for(uid_t uid) const;

  struct UserShare {
    std::size_t connections = 0;
    std::shared_ptr<SendBudget> unsent;  // shared by the user's connections
  };

  asio::io_context& io_;
  LocalAcceptor acceptor_;
  const Service& service_;
  ServerLimits limits_;
  std::size_t connections_ = 0;
  std::map<uid_t, UserShare> users_;
  std::vector<std::weak_ptr<Session>> sessions_;
  std::function<void()> on_all_closed_;
};

}  // namespace pat::rpc
