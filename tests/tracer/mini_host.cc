#include "tests/tracer/mini_host.h"
#include "base/pidfd.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <vector>

extern char** environ;

namespace pat::tracer::testing {

Capture::Capture() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) == 0) {
    read_end.reset(fds[0]);
    write_end.reset(fds[1]);
  }
}

std::variant<HostedMember*, LaunchError> MiniHost::launch(const LaunchSpec& spec) {
  auto launched = launcher_.launch(spec);
  if (auto* error = std::get_if<LaunchError>(&launched)) return *error;
  HostedMember& m = members_.emplace_back();
  m.launched = std::move(std::get<LaunchedMember>(launched));
  OwnerId owner = space_.add_member(m.launched.pid, *m.launched.layout);
  m.syscalls = std::make_unique<MemberSyscalls>(m.launched, space_, owner);
  return &m;
}

void MiniHost::reap(HostedMember& m) {
  siginfo_t info{};
  if (::waitid(P_PIDFD, static_cast<id_t>(m.launched.pidfd.get()), &info, WEXITED | WNOHANG) != 0 || info.si_pid == 0) return;
  m.exited = true;
  if (info.si_code == CLD_EXITED)
    m.exit_code = info.si_status;
  else
    m.signal = info.si_status;
  // A real host would also wait for CLONE_VM children of the member; the
  // test members have none that outlive them.
  if (m.reclaim_on_exit) space_.reclaim(m.syscalls->owner());
}

void MiniHost::serve_listener(HostedMember& m) {
  switch (m.syscalls->handle_one()) {
    case Outcome::Handled: break;
    case Outcome::ExecStarted: ++m.exec_started; break;
    case Outcome::ListenerGone:
      m.listener_gone = true;
      m.launched.listener.reset();
      break;
  }
}

bool MiniHost::run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    std::vector<pollfd> fds;
    std::vector<std::function<void(short)>> handlers;
    for (HostedMember& m : members_) {
      if (!m.listener_gone) {
        fds.push_back({m.launched.listener.get(), POLLIN, 0});
        handlers.push_back([this, &m](short) { serve_listener(m); });
      }
      if (!m.exited) {
        fds.push_back({m.launched.pidfd.get(), POLLIN, 0});
        handlers.push_back([this, &m](short) { reap(m); });
      }
    }
    for (Capture* c : captures_) {
      if (c->eof) continue;
      fds.push_back({c->read_end.get(), POLLIN, 0});
      handlers.push_back([c](short) {
        char buf[4096];
        ssize_t n = ::read(c->read_end.get(), buf, sizeof(buf));
        if (n > 0) c->data.append(buf, static_cast<std::size_t>(n));
        if (n == 0) c->eof = true;
      });
    }
    int n = ::poll(fds.data(), fds.size(), static_cast<int>(std::min<long>(left.count(), 100)));
    if (n <= 0) continue;
    for (std::size_t i = 0; i < fds.size(); ++i)
      if (fds[i].revents != 0) handlers[i](fds[i].revents);
  }
  return true;
}

bool MiniHost::run_until_all_done(std::chrono::milliseconds timeout) {
  return run_until(
      [this] {
        for (const HostedMember& m : members_)
          if (!m.exited || !m.listener_gone) return false;
        for (const Capture* c : captures_)
          if (!c->eof) return false;
        return true;
      },
      timeout);
}

RunResult run_member(LaunchSpec spec, std::chrono::milliseconds timeout) {
  MiniHost host;
  Capture out, err;
  spec.stdio[1] = out.write_end.get();
  spec.stdio[2] = err.write_end.get();
  RunResult result;
  auto launched = host.launch(spec);
  out.write_end.reset();  // the member has its own copy; EOF comes when it exits
  err.write_end.reset();
  if (auto* error = std::get_if<LaunchError>(&launched)) {
    result.error = *error;
    return result;
  }
  HostedMember* m = std::get<HostedMember*>(launched);
  host.watch(out);
  host.watch(err);
  if (!host.run_until_all_done(timeout)) {
    if (!m->exited) (void)pat::pidfd_signal(m->launched.pidfd.get(), SIGKILL);
    host.run_until_all_done(std::chrono::seconds(10));
    result.err = "timed out\n";
  }
  result.exit_code = m->exit_code;
  result.signal = m->signal;
  result.out = out.data;
  result.err += err.data;
  result.exe_path = m->launched.exe_path;
  result.argv = m->launched.argv;
  return result;
}

LaunchSpec spec_for(std::string path, std::vector<std::string> argv) {
  LaunchSpec spec;
  spec.path = std::move(path);
  spec.argv = std::move(argv);
  for (char** e = environ; *e != nullptr; ++e) spec.env.emplace_back(*e);
  return spec;
}

int mapping_count() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  int n = 0;
  while (std::getline(maps, line)) ++n;
  return n;
}

}  // namespace pat::tracer::testing
