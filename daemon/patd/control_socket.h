// The listening control socket: bound by patd itself, or received from
// systemd by socket activation (LISTEN_FDS).
#pragma once

#include "base/result.h"
#include "base/unique_fd.h"

#include <sys/types.h>

#include <optional>
#include <string>

namespace pat::patd {

struct SocketAccess {
  mode_t mode;                 // applied with chmod after bind
  std::optional<gid_t> group;  // chown'd to this group when set
};

// README "Socket permissions": mode 0660 and group `pat` when that group
// exists, otherwise 0600 (root only). Explicit options win.
Result<SocketAccess> resolve_socket_access(std::optional<mode_t> mode, const std::string& group_name);

// Binds and listens on `path`. Refuses when another live patd already answers
// there; removes a stale socket file left by a dead one.
Result<UniqueFd> bind_control_socket(const std::string& path, const SocketAccess& access);

}  // namespace pat::patd
