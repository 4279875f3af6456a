#include "daemon/rpc/client.h"


namespace pat::rpc {

namespace {

// Closes a socket when its timer fires first, which makes the pending
// operation on it fail. Everything is set up in ordinary functions, not in
// the coroutines that use it: GCC 12 destroys lambda captures created inside a
// coroutine frame twice in some cases (seen here as a use-after-free).
template <class Socket>
class Deadline {
 public:
  Deadline(asio::any_io_executor executor, const std::shared_ptr<Socket>& socket,
           std::optional<std::chrono::milliseconds> timeout)
      : timer_(std::move(executor)), state_(std::make_shared<State>(State{socket, false})) {
    if (!timeout) return;
    timer_.expires_after(*timeout);
    timer_.async_wait(Expiry{state_});
  }
  ~Deadline() { timer_.cancel(); }
  bool expired() const { return state_->expired; }

 private:
  struct State {
    std::weak_ptr<Socket> socket;
    bool expired;
  };
  struct Expiry {
    std::shared_ptr<State> state;
    void operator()(boost::system::error_code ec) const {
      if (ec) return;
      state->expired = true;
      if (auto socket = state->socket.lock()) socket->close();
    }
  };
  asio::steady_timer timer_;
  std::shared_ptr<State> state_;
};

}  // namespace

asio::awaitable<Connected> connect_unix(const std::string& path, std::chrono::milliseconds timeout) {
  auto executor = co_await asio::this_coro::executor;
  auto raw = std::make_shared<LocalSocket>(executor);
  raw->open();
  boost::system::error_code ec;
  {
    Deadline<LocalSocket> deadline(executor, raw, timeout);
    co_await raw->async_connect(asio::local::stream_protocol::endpoint(path),
                                asio::redirect_error(asio::use_awaitable, ec));
    if (ec) throw PeerUnavailable("connect " + path + ": " + (deadline.expired() ? "timed out" : ec.message()), ec);
  }
  auto socket = std::make_shared<FramedSocket>(std::move(*raw));
  auto peer = peer_credentials(socket->native_handle());
  if (!peer) throw PeerUnavailable(peer.error().message());
  co_return Connected{socket, std::move(*peer)};
}

void send_call(FramedSocket& socket, const proto::Call& call, std::vector<UniqueFd> fds) {
  socket.send(proto::encode(call), std::move(fds));
}

asio::awaitable<proto::Reply> read_reply(std::shared_ptr<FramedSocket> socket,
                                         std::optional<std::chrono::milliseconds> timeout) {
  Deadline<FramedSocket> deadline(co_await asio::this_coro::executor, socket, timeout);
  std::optional<Frame> frame;
  try {
    frame = co_await socket->read();
  } catch (const FramingError& e) {
    throw PeerUnavailable(e.what());
  } catch (const boost::system::system_error& e) {
    throw PeerUnavailable(deadline.expired() ? "no answer in time" : e.what());
  }
  if (!frame) throw PeerUnavailable(deadline.expired() ? "no answer in time" : "connection closed");
  auto parsed = proto::parse_reply(frame->text);
  if (auto* error = std::get_if<proto::Error>(&parsed)) throw PeerUnavailable("malformed reply: " + error->message());
  co_return std::get<proto::Reply>(std::move(parsed));
}

}  // namespace pat::rpc
