#include "daemon/rpc/framed_socket.h"

#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace pat::rpc {

FramedSocket::FramedSocket(LocalSocket socket, std::size_t max_frame)
    : socket_(std::move(socket)), decoder_(max_frame) {
  socket_.non_blocking(true);
}

// Reads whatever is available without blocking. SCM_RIGHTS fds arrive with
// the first byte of the sendmsg(2) that carried them, and the kernel never
// merges two such messages into one read (net/unix/af_unix.c,
// unix_stream_read_generic), so attaching pending fds to the next frame that
// completes keeps them with their message.
bool FramedSocket::receive_available(std::vector<UniqueFd>& fds) {
  std::array<char, 64 * 1024> data;
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
  for (;;) {
    iovec iov{data.data(), data.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = ::recvmsg(native_handle(), &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return true;
      if (errno == ECONNRESET) return false;
      throw FramingError(std::string("recvmsg: ") + std::strerror(errno));
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (std::size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        fds.emplace_back(fd);
      }
    }
    // Truncated control data means fds were dropped by the kernel: the
    // message they belonged to cannot be served correctly.
    if (msg.msg_flags & MSG_CTRUNC) throw FramingError("too many file descriptors in one message");
    if (fds.size() > kMaxFdsPerMessage) throw FramingError("too many file descriptors queued");
    if (n == 0) return false;
    decoder_.feed(std::string_view(data.data(), static_cast<std::size_t>(n)));
    if (decoder_.oversized()) throw FramingError("frame exceeds the size limit");
    if (static_cast<std::size_t>(n) < data.size()) return true;
  }
}

asio::awaitable<std::optional<Frame>> FramedSocket::read() {
  for (;;) {
    if (auto text = decoder_.next()) {
      Frame frame{std::move(*text), std::move(pending_fds_)};
      pending_fds_.clear();
      co_return frame;
    }
    if (decoder_.oversized()) throw FramingError("frame exceeds the size limit");
    if (eof_) {
      if (decoder_.pending_bytes() > 0) throw FramingError("connection closed inside a frame");
      co_return std::nullopt;
    }
    co_await socket_.async_wait(LocalSocket::wait_read, asio::use_awaitable);
    if (!receive_available(pending_fds_)) eof_ = true;
  }
}

void FramedSocket::send(std::string frame, std::vector<UniqueFd> fds) {
  if (!socket_.is_open() || close_when_flushed_) return;
  if (queued_bytes_ + frame.size() > kMaxQueuedBytes || (budget_ && !budget_->take(frame.size()))) {
    // The peer is not reading; holding more would let it grow our memory.
    close();
    return;
  }
  queued_bytes_ += frame.size();
  outgoing_.push_back(Outgoing{std::move(frame), std::move(fds)});
  if (!writing_) {
    writing_ = true;
    asio::co_spawn(socket_.get_executor(), [self = shared_from_this()] { return self->write_loop(); },
                   asio::detached);
  }
}

asio::awaitable<void> FramedSocket::write_loop() {
  while (!outgoing_.empty() && socket_.is_open()) {
    Outgoing& out = outgoing_.front();
    std::size_t offset = 0;
    bool fds_sent = out.fds.empty();
    while (offset < out.bytes.size()) {
      iovec iov{out.bytes.data() + offset, out.bytes.size() - offset};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
      if (!fds_sent) {
        std::size_t count = std::min(out.fds.size(), kMaxFdsPerMessage);
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * count);
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * count);
        for (std::size_t i = 0; i < count; ++i) {
          int fd = out.fds[i].get();
          std::memcpy(CMSG_DATA(c) + i * sizeof(int), &fd, sizeof(int));
        }
      }
      ssize_t n = ::sendmsg(native_handle(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {
        boost::system::error_code ec;
        co_await socket_.async_wait(LocalSocket::wait_write, asio::redirect_error(asio::use_awaitable, ec));
        if (ec) break;
        continue;
      }
      if (n < 0) {
        close();
        break;
      }
      fds_sent = true;
      offset += static_cast<std::size_t>(n);
    }
    if (!socket_.is_open()) break;
    queued_bytes_ -= out.bytes.size();
    if (budget_) budget_->give_back(out.bytes.size());
    outgoing_.pop_front();
    wake_drain_waiters();
  }
  writing_ = false;
  if (close_when_flushed_) close();
}

void FramedSocket::close_after_flush() {
  close_when_flushed_ = true;
  if (!writing_) close();
}

void FramedSocket::close() {
  boost::system::error_code ignored;
  socket_.shutdown(LocalSocket::shutdown_both, ignored);
  socket_.close(ignored);
  outgoing_.clear();
  if (budget_) budget_->give_back(queued_bytes_);
  queued_bytes_ = 0;
  wake_drain_waiters();
}

asio::awaitable<void> FramedSocket::drained_to(std::size_t bytes) {
  while (socket_.is_open() && queued_bytes_ > bytes) {
    asio::steady_timer timer(socket_.get_executor(), asio::steady_timer::time_point::max());
    auto it = drain_waiters_.insert(drain_waiters_.end(), &timer);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    drain_waiters_.erase(it);
  }
}

void FramedSocket::wake_drain_waiters() {
  for (auto* timer : drain_waiters_) timer->cancel();
}

}  // namespace pat::rpc
