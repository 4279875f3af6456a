#include "daemon/rpc/peer_credentials.h"

#include "base/pidfd.h"
#include "proto/rlimits.h"

#include <sys/socket.h>

#include <fstream>
#include <iterator>
#include <string>

namespace pat::rpc {

namespace {

// include/uapi/asm-generic/socket.h (Linux 6.5); glibc 2.36 predates it.
constexpr int kSoPeerPidfd = 77;

// The limits of the process at the other end, or none if it has exited.
// /proc/PID/limits names the process by pid, so the pid is checked afterwards
// against the peer's pidfd: alive then means the pid was still that process
// while the file was read. (prlimit(2) would need CAP_SYS_RESOURCE for
// another user's process, which a confined root may lack.)
std::vector<std::pair<int, rlimit>> peer_rlimits(int socket_fd, pid_t pid) {
  int raw_pidfd = -1;
  socklen_t len = sizeof(raw_pidfd);
  bool have_pidfd = ::getsockopt(socket_fd, SOL_SOCKET, kSoPeerPidfd, &raw_pidfd, &len) == 0;
  UniqueFd pidfd(have_pidfd ? raw_pidfd : -1);
  if (!have_pidfd && errno != ENOPROTOOPT && errno != EINVAL) return {};  // ESRCH: gone
  if (pid <= 0) return {};  // in a PID namespace patd cannot see
  std::ifstream file("/proc/" + std::to_string(pid) + "/limits");
  std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  auto limits = proto::parse_proc_limits(text);
  if (!limits) return {};
  // Before Linux 6.5 (no SO_PEERPIDFD) the pid alone is trusted.
  if (pidfd && pidfd_exited(pidfd.get())) return {};
  return *limits;
}

}  // namespace

Result<PeerCredentials> peer_credentials(int socket_fd) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(socket_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return last_error("getsockopt SO_PEERCRED");
  }
  PeerCredentials peer{cred.pid, cred.uid, cred.gid, {}, {}};
  // SO_PEERGROUPS answers ERANGE with the needed size when the buffer is short.
  std::vector<gid_t> groups(64);
  for (int attempt = 0; attempt < 4; ++attempt) {
    socklen_t bytes = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (::getsockopt(socket_fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &bytes) == 0) {
      groups.resize(bytes / sizeof(gid_t));
      peer.groups = std::move(groups);
      peer.rlimits = peer_rlimits(socket_fd, peer.pid);
      return peer;
    }
    if (errno != ERANGE) return last_error("getsockopt SO_PEERGROUPS");
    groups.resize(bytes / sizeof(gid_t) + 1);
  }
  return SysError{ERANGE, "getsockopt SO_PEERGROUPS"};
}

}  // namespace pat::rpc
