#include "daemon/host/syscall_servers.h"

#include "base/log.h"

#include <poll.h>
#include <sys/eventfd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <unistd.h>

namespace pat::host {

SyscallServers::SyscallServers(asio::io_context& io, std::mutex& group_lock)
    : io_(io), group_lock_(group_lock), stop_(::eventfd(0, EFD_CLOEXEC)) {
  if (!stop_) {
    spdlog::critical("event=host.eventfd_failed error={}", log_quote(std::strerror(errno)));
    std::abort();
  }
}

SyscallServers::~SyscallServers() {
  // Level-triggered and never read: every poll, present and future, sees it.
  std::uint64_t one = 1;
  (void)!::write(stop_.get(), &one, sizeof(one));
  for (auto& [id, thread] : threads_) thread.join();
}

void SyscallServers::serve(std::shared_ptr<Member> member, std::function<void()> on_exec_started,
                           std::function<void()> on_listener_gone) {
  const std::uint64_t id = next_id_++;
  threads_.emplace(id, std::thread([this, id, member, on_exec_started = std::move(on_exec_started),
                                    on_listener_gone = std::move(on_listener_gone)]() mutable {
    run(member, on_exec_started);
    // The last thing this thread does: the io_context joins it, and only then
    // lets the listener go.
    asio::post(io_, [this, id, on_listener_gone = std::move(on_listener_gone)] {
      auto it = threads_.find(id);
      if (it == threads_.end()) return;
      it->second.join();
      threads_.erase(it);
      on_listener_gone();
    });
  }));
}

void SyscallServers::run(const std::shared_ptr<Member>& member, const std::function<void()>& on_exec_started) {
  const int listener = member->launched.listener.get();
  for (;;) {
    pollfd fds[2] = {{listener, POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("event=host.listener_poll_failed pid={} error={}", member->pid(), log_quote(std::strerror(errno)));
      return;
    }
    if (fds[1].revents != 0) return;  // the host is ending
    tracer::Outcome outcome;
    {
      std::lock_guard lock(group_lock_);
      outcome = member->syscalls->handle_one();
    }
    if (outcome == tracer::Outcome::ListenerGone) return;
    if (outcome == tracer::Outcome::ExecStarted) asio::post(io_, on_exec_started);
  }
}

}  // namespace pat::host
