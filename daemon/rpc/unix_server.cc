#include "daemon/rpc/unix_server.h"

#include "base/log.h"

#include <malloc.h>
#include <spdlog/spdlog.h>

namespace pat::rpc {

namespace {

// Unread replies of one user, at their peak, past which the heap is
// trimmed when the user's last connection closes.
constexpr std::size_t kTrimAfterUnsentBytes = 1 << 20;

}  // namespace

Session::Session(std::shared_ptr<FramedSocket> socket, PeerCredentials peer, const Service& service,
                 const ServerLimits& limits, std::function<void()> on_closed)
    : socket_(std::move(socket)),
      peer_(std::move(peer)),
      service_(service),
      limits_(limits),
      on_closed_(std::move(on_closed)),
      idle_timer_(socket_->socket().get_executor()) {}

Session::~Session() {
  if (on_closed_) on_closed_();
}

void Session::start() {
  arm_idle_timer();
  asio::co_spawn(socket_->socket().get_executor(), [self = shared_from_this()] { return self->read_loop(); },
                 asio::detached);
}

void Session::arm_idle_timer() {
  idle_timer_.expires_after(limits_.idle_timeout);
  idle_timer_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    auto self = weak.lock();
    if (ec || !self) return;
    if (self->processing_ || !self->queued_.empty()) {
      self->arm_idle_timer();  // a call is running: not idle
      return;
    }
    spdlog::debug("event=connection.idle_timeout peer_pid={} peer_uid={}", self->peer_.pid, self->peer_.uid);
    self->socket_->close();
  });
}

asio::awaitable<void> Session::read_loop() {
  auto self = shared_from_this();
  try {
    while (auto frame = co_await socket_->read()) {
      arm_idle_timer();
      if (queued_.size() >= limits_.max_queued_calls) {
        spdlog::warn("event=connection.dropped reason=too_many_queued_calls peer_pid={} peer_uid={}", peer_.pid,
                     peer_.uid);
        socket_->close();
        break;
      }
      queued_.push_back(std::move(*frame));
      if (!processing_) start_processing();
    }
  } catch (const FramingError& e) {
    // Only this connection is lost; the daemon serves everyone else.
    spdlog::warn("event=connection.dropped reason={} peer_pid={} peer_uid={}", log_quote(e.what()), peer_.pid,
                 peer_.uid);
    socket_->close();
  } catch (const boost::system::system_error&) {
    // closed under us (idle timeout, shutdown): nothing to report
  }
  reading_done_ = true;
  disconnect_->fire();
  idle_timer_.cancel();
  finish_if_done();
}

void Session::start_processing() {
  processing_ = true;
  asio::co_spawn(socket_->socket().get_executor(), [self = shared_from_this()] { return self->process_loop(); },
                 asio::detached);
}

asio::awaitable<void> Session::process_loop() {
  auto self = shared_from_this();
  while (!queued_.empty()) {
    Frame frame = std::move(queued_.front());
    queued_.pop_front();
    co_await service_.serve(std::move(frame), peer_, socket_, disconnect_);
    arm_idle_timer();
  }
  processing_ = false;
  finish_if_done();
}

void Session::finish_if_done() {
  // Calls already received are still answered after the peer stops sending
  // (a client may shut down its write side and wait for the reply).
  if (reading_done_ && !processing_) socket_->close_after_flush();
}

UnixServer::UnixServer(asio::io_context& io, LocalAcceptor acceptor, const Service& service, ServerLimits limits)
    : io_(io), acceptor_(std::move(acceptor)), service_(service), limits_(limits) {}

void UnixServer::session_closed(uid_t uid) {
  --connections_;
  auto user = users_.find(uid);
  if (user != users_.end() && --user->second.connections == 0) {
    // A user's unread replies can have grown the heap by tens of MiB: give
    // the pages back now that nothing holds them. Only then: trimming walks
    // the heap, and most users' last connection closes after every patctl.
    bool grew_heap = user->second.unsent && user->second.unsent->peak() >= kTrimAfterUnsentBytes;
    users_.erase(user);
    if (grew_heap) ::malloc_trim(0);
  }
  if (connections_ == 0 && on_all_closed_) std::exchange(on_all_closed_, nullptr)();
}

void UnixServer::start() { asio::co_spawn(io_, accept_loop(), asio::detached); }

void UnixServer::stop() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
}

void UnixServer::shut_down(std::function<void()> closed) {
  stop();
  on_all_closed_ = std::move(closed);
  for (auto& weak : sessions_) {
    if (auto session = weak.lock()) session->finish();
  }
  if (connections_ == 0 && on_all_closed_) std::exchange(on_all_closed_, nullptr)();
}

const char* UnixServer::refusal_for(uid_t uid) const {
  if (uid == 0) return nullptr;
  if (connections_ + limits_.reserved_for_root() >= limits_.max_connections) {
    return "too many connections to the daemon";
  }
  auto user = users_.find(uid);
  if (user != users_.end() && user->second.connections >= limits_.max_connections_per_uid) {
    return "too many connections from this user";
  }
  return nullptr;
}

void UnixServer::refuse(LocalSocket socket, const char* why) {
  auto framed = std::make_shared<FramedSocket>(std::move(socket));
  framed->send(proto::encode_error(proto::Error::make(proto::ErrorCode::ResourceExhausted, why,
                                                       {{"what", "connections"}})));
  framed->close_after_flush();
}

asio::awaitable<void> UnixServer::accept_loop() {
  for (;;) {
    boost::system::error_code ec;
    LocalSocket socket = co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
    if (ec) {
      // EMFILE and friends: wait a little instead of spinning, keep serving.
      spdlog::warn("event=accept.failed error={}", log_quote(ec.message()));
      asio::steady_timer pause(io_, std::chrono::milliseconds(50));
      co_await pause.async_wait(asio::use_awaitable);
      continue;
    }
    if (connections_ >= limits_.max_connections) {
      spdlog::warn("event=connection.refused reason=max_connections limit={}", limits_.max_connections);
      refuse(std::move(socket), "too many connections to the daemon");
      continue;
    }
    auto peer = peer_credentials(socket.native_handle());
    if (!peer) {
      spdlog::warn("event=connection.refused reason={}", log_quote(peer.error().message()));
      continue;
    }
    if (const char* why = refusal_for(peer->uid)) {
      spdlog::warn("event=connection.refused reason={} peer_pid={} peer_uid={}", log_quote(why), peer->pid,
                   peer->uid);
      refuse(std::move(socket), why);
      continue;
    }
    ++connections_;
    uid_t uid = peer->uid;
    auto& user = users_[uid];
    ++user.connections;
    if (!user.unsent) user.unsent = std::make_shared<SendBudget>(limits_.max_unsent_bytes_per_uid);
    auto framed = std::make_shared<FramedSocket>(std::move(socket));
    if (uid != 0) framed->share_budget(user.unsent);
    auto session =
        std::make_shared<Session>(framed, std::move(*peer), service_, limits_, [this, uid] { session_closed(uid); });
    std::erase_if(sessions_, [](const std::weak_ptr<Session>& weak) { return weak.expired(); });
    sessions_.push_back(session);
    session->start();
  }
}

}  // namespace pat::rpc
