// Who is on the other end of a Unix socket, as the kernel vouches for it:
// SO_PEERCRED (pid, uid, gid at connect time), SO_PEERGROUPS (the
// supplementary groups, Linux 4.13+) and the peer's resource limits. Every authorisation decision in patd
// starts here; nothing a peer *says* about itself is believed.
#pragma once

#include "base/result.h"

#include <sys/resource.h>
#include <sys/types.h>

#include <utility>
#include <vector>

namespace pat::rpc {

struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  std::vector<gid_t> groups;
  // The peer's resource limits at connect time (/proc/PID/limits, then
  // checked against its SO_PEERPIDFD: the pid was not reused meanwhile).
  // Empty when the process that connected has exited. patd gives members
  // and hosts no more than these (issue 13, 1.3).
  std::vector<std::pair<int, rlimit>> rlimits;

  bool is_root() const { return uid == 0; }
};

Result<PeerCredentials> peer_credentials(int socket_fd);

}  // namespace pat::rpc
