// patd's calls to one group's host over <group dir>/host.sock. The socket sits
// in a directory the group's owner controls, so before saying anything patd
// checks who is listening (SO_PEERCRED): it must run as the owner. Otherwise a
// planted link could turn patd, which is root, into a client of some other
// root-only socket. Everything a host answers is treated as untrusted.
#pragma once

#include "daemon/rpc/client.h"

#include <sys/types.h>

#include <chrono>
#include <string>

namespace pat::patd {

// How long patd waits for a host's answer to a non-streaming call.
inline constexpr std::chrono::milliseconds kHostCallTimeout{10'000};

class HostLink {
 public:
  HostLink(std::string group, std::string socket_path, uid_t owner_uid)
      : group_(std::move(group)), socket_path_(std::move(socket_path)), owner_uid_(owner_uid) {}

  // A connection whose listener runs as the owner; PeerUnavailable otherwise.
  asio::awaitable<rpc::Connected> connect() const;

  // One call, one reply. An error reply is rethrown as ErrorReply (its name is
  // kept when it belongs to the public vocabulary); an unreachable host is
  // GroupUnavailable.
  asio::awaitable<proto::json> call(std::string_view method, proto::json parameters,
                                    std::chrono::milliseconds timeout = kHostCallTimeout) const;

  // The group object, checked (proto::check_group_object).
  asio::awaitable<proto::json> describe() const;

  const std::string& group() const { return group_; }

  // Once known, connections whose listener is another process are refused too.
  void expect_host_pid(pid_t pid) { host_pid_ = pid; }

 private:
  std::string group_;
  std::string socket_path_;
  uid_t owner_uid_;
  pid_t host_pid_ = 0;
};

// Turns a host's error reply into what patd tells its own caller.
proto::ErrorReply relay_host_error(const std::string& group, const proto::Error& error);
proto::ErrorReply host_unavailable(const std::string& group, const std::string& why);

}  // namespace pat::patd
