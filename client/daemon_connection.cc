#include "client/daemon_connection.h"

#include "base/unix_socket.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace pat::client {

DaemonConnection DaemonConnection::open(const std::string& socket_path) {
  auto connected = connect_unix_stream(socket_path);
  if (!connected) {
    int code = connected.error().code;
    std::string hint = code == ENOENT || code == ECONNREFUSED ? " (is patd running?)" : "";
    throw ConnectionError("cannot reach patd at " + socket_path + ": " + std::strerror(code) + hint);
  }
  return DaemonConnection(std::move(connected.value()), socket_path);
}

void DaemonConnection::send(const proto::Call& call, std::span<const int> fds) {
  std::string frame = proto::encode(call);
  std::size_t offset = 0;
  bool fds_sent = fds.empty();
  while (offset < frame.size()) {
    iovec iov{frame.data() + offset, frame.size() - offset};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
    if (!fds_sent) {
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    ssize_t n = ::sendmsg(socket_.get(), &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw ConnectionError(std::string("sending to patd: ") + std::strerror(errno));
    fds_sent = true;
    offset += static_cast<std::size_t>(n);
  }
}

std::optional<proto::Reply> DaemonConnection::receive(std::optional<std::chrono::milliseconds> timeout, int wake_fd) {
  auto deadline = timeout ? std::chrono::steady_clock::now() + *timeout : std::chrono::steady_clock::time_point::max();
  for (;;) {
    if (auto frame = decoder_.next()) {
      auto parsed = proto::parse_reply(*frame);
      if (auto* error = std::get_if<proto::Error>(&parsed)) {
        throw ConnectionError("malformed reply from patd: " + error->message());
      }
      return std::get<proto::Reply>(std::move(parsed));
    }
    if (decoder_.oversized()) throw ConnectionError("reply from patd exceeds the frame limit");
    int wait_ms = -1;
    if (timeout) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) throw ConnectionError("patd did not answer within " + std::to_string(timeout->count()) +
                                                   " ms");
      wait_ms = static_cast<int>(left.count());
    }
    pollfd fds[2] = {{socket_.get(), POLLIN, 0}, {wake_fd, POLLIN, 0}};
    int n = ::poll(fds, wake_fd >= 0 ? 2 : 1, wait_ms);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw ConnectionError(std::string("poll: ") + std::strerror(errno));
    if (wake_fd >= 0 && (fds[1].revents & POLLIN)) return std::nullopt;
    if (n == 0 || !(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    char buffer[64 * 1024];
    ssize_t got = ::recv(socket_.get(), buffer, sizeof(buffer), 0);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw ConnectionError(std::string("reading from patd: ") + std::strerror(errno));
    if (got == 0) throw ConnectionError("patd closed the connection");
    decoder_.feed(std::string_view(buffer, static_cast<std::size_t>(got)));
  }
}

proto::Reply call_once(const std::string& socket_path, const proto::Call& call) {
  auto connection = DaemonConnection::open(socket_path);
  connection.send(call);
  return *connection.receive(kReplyTimeout);
}

}  // namespace pat::client
