#include "daemon/sd/socket_activation.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <optional>
#include <utility>

#include "base/pidfd.h"
#include "daemon/sd/environment.h"

namespace pat::sd {

namespace {

// include/uapi/linux/magic.h, Linux 6.9+ (newer than Debian 12's headers):
// the file system pidfds live on once pidfs exists. Only there is a pidfd's
// inode number unique to one process for the lifetime of the system.
constexpr long kPidFsMagic = 0x50494446;

// This process's pidfd inode number (the id systemd passes as LISTEN_PIDFDID),
// or nothing on kernels without pidfs, where all pidfds share one anonymous
// inode and the number identifies nothing.
std::optional<std::uint64_t> own_pidfd_inode() {
  auto opened = pidfd_open(::getpid());
  if (!opened) return std::nullopt;
  const UniqueFd& pidfd = opened.value();
  struct statfs fs {};
  struct stat st {};
  if (::fstatfs(pidfd.get(), &fs) != 0 || fs.f_type != kPidFsMagic) return std::nullopt;
  if (::fstat(pidfd.get(), &st) != 0) return std::nullopt;
  return static_cast<std::uint64_t>(st.st_ino);
}

// LISTEN_FDNAMES is ':'-separated and empty fields count (a::b is three
// names), as libsystemd splits it; an empty variable holds no names at all.
std::vector<std::string> split_names(const std::string& text) {
  std::vector<std::string> names;
  if (text.empty()) return names;
  std::size_t from = 0;
  while (true) {
    std::size_t colon = text.find(':', from);
    names.push_back(text.substr(from, colon - from));
    if (colon == std::string::npos) break;
    from = colon + 1;
  }
  return names;
}

// The variables, read and removed in one go, before anything can fail.
struct ListenEnvironment {
  std::optional<std::string> pid, pidfd_id, fds, names;
};

ListenEnvironment take_listen_environment() {
  ListenEnvironment env;
  env.pid = take_environment_variable("LISTEN_PID");
  env.pidfd_id = take_environment_variable("LISTEN_PIDFDID");
  env.fds = take_environment_variable("LISTEN_FDS");
  env.names = take_environment_variable("LISTEN_FDNAMES");
  return env;
}

// How many fds were passed to us: 0 when the variables are absent or meant for
// another process (sd_listen_fds(3)'s order of checks).
Result<int> passed_fd_count(const ListenEnvironment& env) {
  if (!env.pid) return 0;
  auto pid = parse_decimal<pid_t>(*env.pid);
  if (!pid || *pid <= 0) return SysError{EINVAL, "LISTEN_PID=" + *env.pid + ": not a pid"};
  if (*pid != ::getpid()) return 0;

  if (env.pidfd_id) {
    auto id = parse_decimal<std::uint64_t>(*env.pidfd_id);
    if (!id) return SysError{EINVAL, "LISTEN_PIDFDID=" + *env.pidfd_id + ": not a number"};
    // Same pid, different process: the pid was reused after the fds' owner
    // died. Without pidfs there is nothing to compare; the pid check stands.
    std::optional<std::uint64_t> own = own_pidfd_inode();
    if (own && *own != *id) return 0;
  }

  if (!env.fds) return 0;
  auto count = parse_decimal<int>(*env.fds);
  if (!count || *count <= 0 || *count > INT_MAX - kListenFdsStart) {
    return SysError{EINVAL, "LISTEN_FDS=" + *env.fds + ": not a positive fd count"};
  }
  return *count;
}

}  // namespace

Result<std::vector<ListenFd>> named_listen_fds_from_environment() {
  ListenEnvironment env = take_listen_environment();
  Result<int> count = passed_fd_count(env);
  if (!count) return count.error();
  int n = *count;
  if (n == 0) return std::vector<ListenFd>{};

  // FD_CLOEXEC on every passed fd first, as sd_listen_fds(3) does: these are
  // patd's listening sockets and no host or member may inherit them.
  for (int fd = kListenFdsStart; fd < kListenFdsStart + n; ++fd) {
    int flags = ::fcntl(fd, F_GETFD);
    if (flags < 0 || ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) {
      return last_error("LISTEN_FDS=" + *env.fds + ": fd " + std::to_string(fd));
    }
  }

  std::vector<std::string> names;
  if (env.names) {
    names = split_names(*env.names);
    if (names.size() != static_cast<std::size_t>(n)) {
      return SysError{EINVAL, "LISTEN_FDNAMES=" + *env.names + ": " + std::to_string(names.size()) +
                                  " names for LISTEN_FDS=" + *env.fds};
    }
  } else {
    names.assign(n, "unknown");
  }

  // Ownership is taken only now that nothing can fail, so that an error never
  // closes an fd the caller may still want to report on.
  std::vector<ListenFd> passed;
  passed.reserve(n);
  for (int i = 0; i < n; ++i) {
    passed.push_back(ListenFd{UniqueFd(kListenFdsStart + i), std::move(names[i])});
  }
  return passed;
}

Result<std::vector<UniqueFd>> listen_fds_from_environment() {
  Result<std::vector<ListenFd>> named = named_listen_fds_from_environment();
  if (!named) return named.error();
  std::vector<UniqueFd> fds;
  fds.reserve(named->size());
  for (ListenFd& passed : *named) fds.push_back(std::move(passed.fd));
  return fds;
}

bool is_unix_stream_listener(int fd) {
  // socket(7): SO_DOMAIN (Linux 2.6.32+), SO_TYPE and SO_ACCEPTCONN are
  // read-only and fail with ENOTSOCK on anything that is not a socket.
  auto option = [fd](int name) -> std::optional<int> {
    int value = 0;
    socklen_t length = sizeof(value);
    if (::getsockopt(fd, SOL_SOCKET, name, &value, &length) != 0 || length != sizeof(value)) {
      return std::nullopt;
    }
    return value;
  };
  return option(SO_DOMAIN) == AF_UNIX && option(SO_TYPE) == SOCK_STREAM && option(SO_ACCEPTCONN) == 1;
}

}  // namespace pat::sd
