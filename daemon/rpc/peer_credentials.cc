#include "daemon/rpc/peer_credentials.h"

#include <sys/socket.h>

namespace pat::rpc {

Result<PeerCredentials> peer_credentials(int socket_fd) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(socket_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return last_error("getsockopt SO_PEERCRED");
  }
  PeerCredentials peer{cred.pid, cred.uid, cred.gid, {}};
  // SO_PEERGROUPS answers ERANGE with the needed size when the buffer is short.
  std::vector<gid_t> groups(64);
  for (int attempt = 0; attempt < 4; ++attempt) {
    socklen_t bytes = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (::getsockopt(socket_fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &bytes) == 0) {
      groups.resize(bytes / sizeof(gid_t));
      peer.groups = std::move(groups);
      return peer;
    }
    if (errno != ERANGE) return last_error("getsockopt SO_PEERGROUPS");
    groups.resize(bytes / sizeof(gid_t) + 1);
  }
  return SysError{ERANGE, "getsockopt SO_PEERGROUPS"};
}

}  // namespace pat::rpc
