#include "daemon/patd/control_socket.h"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

namespace pat::patd {

Result<SocketAccess> resolve_socket_access(std::optional<mode_t> mode, const std::string& group_name) {
  SocketAccess access{mode.value_or(0600), std::nullopt};
  if (group_name.empty()) return access;
  // getgrnam_r may consult NSS; this runs once at start-up, before the event loop.
  group entry{};
  group* found = nullptr;
  std::string buffer(16384, '\0');
  int rc = ::getgrnam_r(group_name.c_str(), &entry, buffer.data(), buffer.size(), &found);
  if (rc != 0) return SysError{rc, "getgrnam " + group_name};
  if (found == nullptr) return access;  // no such group: root only, unless a mode was given
  access.group = found->gr_gid;
  if (!mode) access.mode = 0660;
  return access;
}

Result<UniqueFd> bind_control_socket(const std::string& path, const SocketAccess& access) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path)) return SysError{ENAMETOOLONG, "socket path " + path};
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);

  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!probe) return last_error("socket");
  if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) {
    return SysError{EADDRINUSE, "another patd is serving " + path};
  }
  if (errno == ECONNREFUSED) ::unlink(path.c_str());  // a dead daemon's socket file

  UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener) return last_error("socket");
  // Bind with a restrictive umask so the socket is never briefly open to all.
  mode_t old_umask = ::umask(0177);
  int rc = ::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address));
  ::umask(old_umask);
  if (rc != 0) return last_error("bind " + path);
  if (access.group && ::chown(path.c_str(), static_cast<uid_t>(-1), *access.group) != 0) {
    return last_error("chown " + path);
  }
  if (::chmod(path.c_str(), access.mode) != 0) return last_error("chmod " + path);
  if (::listen(listener.get(), SOMAXCONN) != 0) return last_error("listen " + path);
  return listener;
}

}  // namespace pat::patd
