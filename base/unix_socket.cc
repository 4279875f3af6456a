#include "base/unix_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstring>

namespace pat {

namespace {

Result<sockaddr_un> address_of(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  // The path and its NUL must fit (unix(7)).
  if (path.empty() || path.size() >= sizeof(address.sun_path)) return SysError{ENAMETOOLONG, "socket path " + path};
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  return address;
}

}  // namespace

Result<UniqueFd> connect_unix_stream(const std::string& path) {
  auto address = address_of(path);
  if (!address) return address.error();
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return last_error("socket");
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address.value()), sizeof(sockaddr_un)) != 0) {
    return last_error("connect " + path);
  }
  return fd;
}

Result<UniqueFd> listen_unix_stream(const std::string& path, int backlog) {
  auto address = address_of(path);
  if (!address) return address.error();
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return last_error("socket");
  mode_t old_umask = ::umask(0177);
  int rc = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address.value()), sizeof(sockaddr_un));
  ::umask(old_umask);
  if (rc != 0) return last_error("bind " + path);
  if (::listen(fd.get(), backlog) != 0) return last_error("listen " + path);
  return fd;
}

}  // namespace pat
