// patd's calls to one group's host over <group dir>/host.sock: the one
// client of io.pat.Host. The socket sits in a directory the group's owner
// controls, so before saying anything patd checks who is listening
// (SO_PEERCRED): it must run as the owner. Otherwise a planted link could
// turn patd, which is root, into a client of some other root-only socket.
// Everything a host answers is treated as untrusted.
#pragma once

#include "daemon/rpc/client.h"
#include "daemon/rpc/service.h"
#include "proto/errors.h"
#include "proto/syscall_service.h"

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pat::patd {

// How long patd waits for a host's answer to a non-streaming call.
inline constexpr std::chrono::milliseconds kHostCallTimeout{10'000};

// One call to the host on a connection of its own, read reply by reply:
// the streaming calls (Spawn: the member's start, then its end; Watch: the
// group, then its events) and, with one reply, every other call.
class HostStream {
 public:
  HostStream(std::string group, std::shared_ptr<rpc::FramedSocket> socket)
      : group_(std::move(group)), socket_(std::move(socket)) {}

  // The next reply's parameters. An error reply is rethrown as ErrorReply
  // (its name kept when it belongs to the public vocabulary); a host that
  // went away, broke the protocol or stayed silent past `timeout` is
  // GroupUnavailable. After the last reply (finished()) there is none.
  asio::awaitable<proto::json> next(std::optional<std::chrono::milliseconds> timeout);
  // The last reply has been read: it did not say "continues".
  bool finished() const { return finished_; }

  // Hangs up; the host sees the connection close (a Spawn's member gets
  // SIGHUP).
  void close() { socket_->close(); }
  // Hangs up once `notice` fires: patd's own caller went away. Set up here,
  // outside the coroutine that streams (see rpc/asio.h).
  void close_on(rpc::DisconnectNotice& notice);

 private:
  std::string group_;
  std::shared_ptr<rpc::FramedSocket> socket_;
  bool finished_ = false;
};

// What io.pat.Host.Describe says: the group object, checked
// (proto::check_group_object), and the well-formed entries of its
// rerouted syscalls' figures (malformed ones, or none from an older host,
// are left out).
struct HostDescription {
  proto::json group;
  std::vector<proto::SyscallService> syscalls;
};

class HostLink {
 public:
  HostLink(std::string group, std::string socket_path, uid_t owner_uid)
      : group_(std::move(group)), socket_path_(std::move(socket_path)), owner_uid_(owner_uid) {}

  // A connection whose listener runs as the owner (and is the host, once its
  // pid is known); rpc::PeerUnavailable otherwise.
  asio::awaitable<rpc::Connected> connect() const;

  // Sends `method` with `fds` beside it, asking for a stream; read the
  // replies from the result. An unreachable host is GroupUnavailable.
  asio::awaitable<HostStream> stream(std::string_view method, proto::json parameters,
                                     std::vector<UniqueFd> fds = {}) const;

  // One call, one reply (errors as HostStream::next).
  asio::awaitable<proto::json> call(std::string_view method, proto::json parameters,
                                    std::chrono::milliseconds timeout = kHostCallTimeout) const;

  asio::awaitable<HostDescription> describe() const;

  const std::string& group() const { return group_; }

  // Once known, connections whose listener is another process are refused too.
  void expect_host_pid(pid_t pid) { host_pid_ = pid; }

 private:
  asio::awaitable<HostStream> send(std::string_view method, proto::json parameters, std::vector<UniqueFd> fds,
                                   bool more) const;

  std::string group_;
  std::string socket_path_;
  uid_t owner_uid_;
  pid_t host_pid_ = 0;
};

// Turns a host's error reply into what patd tells its own caller.
proto::ErrorReply relay_host_error(const std::string& group, const proto::Error& error);
proto::ErrorReply host_unavailable(const std::string& group, const std::string& why);

}  // namespace pat::patd
