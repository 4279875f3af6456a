// The calling side of a pat link, for code running inside an Asio loop (patd
// calling a group's host). Every wait is bounded unless the caller asks for a
// stream: a host that stops answering must never stall the daemon.
#pragma once

#include "daemon/rpc/asio.h"
#include "daemon/rpc/framed_socket.h"
#include "daemon/rpc/peer_credentials.h"
#include "proto/message.h"

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace pat::rpc {

// The peer could not be reached, broke the protocol, or went away.
class PeerUnavailable : public std::runtime_error {
 public:
  explicit PeerUnavailable(const std::string& what, boost::system::error_code code = {})
      : std::runtime_error(what), code_(code) {}
  // Why connect(2) failed, when that is what failed; tells "nobody listens
  // any more" (ECONNREFUSED, ENOENT) from "someone listens but is stuck".
  boost::system::error_code code() const { return code_; }

 private:
  boost::system::error_code code_;
};

struct Connected {
  std::shared_ptr<FramedSocket> socket;
  PeerCredentials peer;  // the listener's credentials (SO_PEERCRED on our end)
};

asio::awaitable<Connected> connect_unix(const std::string& path, std::chrono::milliseconds timeout);

// Sends a call; fds travel with it.
void send_call(FramedSocket& socket, const proto::Call& call, std::vector<UniqueFd> fds = {});

// The next reply on the socket. Error replies come back as a Reply with
// .error set; a closed, broken or (with a timeout) silent peer throws
// PeerUnavailable.
asio::awaitable<proto::Reply> read_reply(std::shared_ptr<FramedSocket> socket,
                                         std::optional<std::chrono::milliseconds> timeout);

}  // namespace pat::rpc
