// Who is on the other end of a Unix socket, as the kernel vouches for it:
// SO_PEERCRED (pid, uid, gid at connect time) and SO_PEERGROUPS (the
// supplementary groups, Linux 4.13+). Every authorisation decision in patd
// starts here; nothing a peer *says* about itself is believed.
#pragma once

#include "base/result.h"

#include <sys/types.h>

#include <vector>

namespace pat::rpc {

struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  std::vector<gid_t> groups;

  bool is_root() const { return uid == 0; }
};

Result<PeerCredentials> peer_credentials(int socket_fd);

}  // namespace pat::rpc
