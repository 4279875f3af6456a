#include "tracer/syscall_servers.h"

#include "base/log.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace pat::tracer {

namespace {

UniqueFd make_eventfd() {
  UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!fd) {
    spdlog::critical("event=host.eventfd_failed error={}", log_quote(std::strerror(errno)));
    std::abort();
  }
  return fd;
}

}  // namespace

SyscallServers::SyscallServers() : stop_(make_eventfd()), events_ready_(make_eventfd()) {}

SyscallServers::~SyscallServers() {
  // Level-triggered and never read: every poll, present and future, sees it.
  std::uint64_t one = 1;
  (void)!::write(stop_.get(), &one, sizeof(one));
  for (auto& [id, thread] : threads_) thread.join();
}

SyscallServers::ServerId SyscallServers::serve(MemberSyscalls& syscalls) {
  const ServerId id = next_id_++;
  threads_.emplace(id, std::thread([this, id, &syscalls] { run(id, syscalls); }));
  return id;
}

void SyscallServers::retire(ServerId server) {
  auto it = threads_.find(server);
  if (it == threads_.end()) return;
  it->second.join();
  threads_.erase(it);
}

std::vector<SyscallServers::Event> SyscallServers::take_events() {
  std::uint64_t count;
  (void)!::read(events_ready_.get(), &count, sizeof(count));  // EAGAIN when nothing was reported: fine
  std::lock_guard lock(events_mutex_);
  return std::exchange(events_, {});
}

void SyscallServers::report(Event event) {
  {
    std::lock_guard lock(events_mutex_);
    events_.push_back(event);
  }
  std::uint64_t one = 1;
  (void)!::write(events_ready_.get(), &one, sizeof(one));
}

void SyscallServers::run(ServerId id, MemberSyscalls& syscalls) {
  const int listener = syscalls.listener();
  for (;;) {
    pollfd fds[2] = {{listener, POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("event=host.listener_poll_failed pid={} error={}", syscalls.pid(), log_quote(std::strerror(errno)));
      break;
    }
    if (fds[1].revents != 0) return;  // the owner is ending: it joins us without taking events
    Outcome outcome = syscalls.handle_one();  // takes the group lock where it must
    if (outcome == Outcome::ListenerGone) break;
    if (outcome == Outcome::ExecStarted) report({id, Event::Kind::ExecStarted});
  }
  // The last thing this thread does: the owner joins it, and only then lets
  // the listener go.
  report({id, Event::Kind::ListenerGone});
}

}  // namespace pat::tracer
