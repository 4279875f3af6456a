// patctl's connection to patd: blocking, one call at a time, with the
// caller's file descriptors passed beside a call when asked (SCM_RIGHTS).
#pragma once

#include "base/unique_fd.h"
#include "proto/frame.h"
#include "proto/message.h"

#include <chrono>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>

namespace pat::client {

// patd is unreachable or broke the protocol: patctl exits 125.
class ConnectionError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

class DaemonConnection {
 public:
  // Throws ConnectionError naming the socket and why.
  static DaemonConnection open(const std::string& socket_path);

  void send(const proto::Call& call, std::span<const int> fds = {});
  // The next reply; waits at most `timeout` (forever when nullopt). A closed
  // connection, a malformed reply or the timeout throw ConnectionError.
  // When `wake_fd` becomes readable first (patctl's signal pipe), returns
  // nullopt so the caller can act and wait again.
  std::optional<proto::Reply> receive(std::optional<std::chrono::milliseconds> timeout,
                                      int wake_fd = -1);

  int fd() const { return socket_.get(); }

 private:
  explicit DaemonConnection(UniqueFd socket, std::string path) : socket_(std::move(socket)), path_(std::move(path)) {}
  UniqueFd socket_;
  std::string path_;
  proto::FrameDecoder decoder_;
};

// One call, one reply, within the default timeout.
proto::Reply call_once(const std::string& socket_path, const proto::Call& call);

inline constexpr std::chrono::milliseconds kReplyTimeout{60'000};

}  // namespace pat::client
