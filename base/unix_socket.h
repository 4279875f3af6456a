// AF_UNIX stream sockets by path: the one place that fills a sockaddr_un.
#pragma once

#include "base/result.h"
#include "base/unique_fd.h"

#include <string>

namespace pat {

// A blocking connected socket (close-on-exec).
Result<UniqueFd> connect_unix_stream(const std::string& path);

// A listening socket bound at `path`, created with mode 0600 (bound under a
// 0177 umask, so it is never briefly open to anyone else; callers widen it
// with chmod). Not thread-safe: umask is per process; call it before threads.
Result<UniqueFd> listen_unix_stream(const std::string& path, int backlog);

}  // namespace pat
