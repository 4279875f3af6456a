#include "daemon/patd/control_socket.h"

#include "base/unix_socket.h"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
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
  auto probe = connect_unix_stream(path);
  if (probe) return SysError{EADDRINUSE, "another patd is serving " + path};
  if (probe.error().code == ECONNREFUSED) ::unlink(path.c_str());  // a dead daemon's socket file
  auto listener = listen_unix_stream(path, SOMAXCONN);
  if (!listener) return listener.error();
  if (access.group && ::chown(path.c_str(), static_cast<uid_t>(-1), *access.group) != 0) {
    return last_error("chown " + path);
  }
  if (::chmod(path.c_str(), access.mode) != 0) return last_error("chmod " + path);
  return listener;
}

}  // namespace pat::patd
