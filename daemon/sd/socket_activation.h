// Socket activation, the receiving side of sd_listen_fds(3): patd takes its
// already-listening control socket from systemd (patd.socket) through
// LISTEN_PID / LISTEN_FDS / LISTEN_FDNAMES, without libsystemd.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace pat::sd {

// SD_LISTEN_FDS_START (sd-daemon.h): passed fds are numbered from 3 upwards,
// right after stdin, stdout and stderr.
inline constexpr int kListenFdsStart = 3;

struct ListenFd {
  UniqueFd fd;
  // The socket unit's FileDescriptorName= (default: the unit's name,
  // "patd.socket"); "unknown" when LISTEN_FDNAMES is absent, as in
  // sd_listen_fds_with_names(3).
  std::string name;
};

// The fds passed to this process, in the order the socket unit lists them,
// each with FD_CLOEXEC set. Follows sd_listen_fds(3) case by case:
//   - LISTEN_PID or LISTEN_FDS unset, or LISTEN_PID names another process
//     (the variables were inherited, the fds were meant for someone else):
//     no fds, not an error;
//   - LISTEN_PID or LISTEN_FDS not a number, LISTEN_FDS <= 0 (systemd never
//     sets 0: it leaves the variables out), a passed fd not open, or
//     LISTEN_FDNAMES naming a different number of fds than LISTEN_FDS: error;
//   - LISTEN_PIDFDID (systemd 258+, guards against pid reuse) is checked
//     against this process's pidfd inode when the kernel has pidfs (6.9+).
// On every path, success or not, all four variables are removed from the
// environment so that no child (pat-host, members) inherits them; so call it
// once, at start-up, before any thread exists (unsetenv(3) is not
// thread-safe). On error no fd is taken: nothing is closed.
Result<std::vector<ListenFd>> named_listen_fds_from_environment();

// The same, names dropped: what patd uses, since patd.socket passes one socket.
Result<std::vector<UniqueFd>> listen_fds_from_environment();

// True when `fd` is a listening AF_UNIX SOCK_STREAM socket, i.e. what patd
// can accept() control connections on. A wrong socket unit (ListenDatagram=,
// a TCP port, Accept=yes handing over a connected socket) gives false, so that
// patd refuses it with a clear message instead of failing at the first
// accept(2). Any fd that is not a socket, or not open, gives false too.
bool is_unix_stream_listener(int fd);

}  // namespace pat::sd
