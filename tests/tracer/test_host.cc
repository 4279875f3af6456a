#include "tests/tracer/test_host.h"

#include "base/pidfd.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <csignal>
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

std::variant<HostedMember*, LaunchError> TestHost::launch(const LaunchSpec& spec) {
  auto launched = supervisor_.launch(spec);
  if (auto* error = std::get_if<LaunchError>(&launched)) return *error;
  HostedMember& m = members_.emplace_back();
  m.process = std::get<std::shared_ptr<SupervisedMember>>(launched);
  unreaped_[m.process->pid()] = &m;
  return &m;
}

void TestHost::member_execed(const SupervisedMember& member) { ++unreaped_.at(member.pid())->execs; }

void TestHost::member_exited(const SupervisedMember& member) {
  HostedMember& m = *unreaped_.at(member.pid());
  unreaped_.erase(member.pid());
  m.exited = true;
  const auto& end = member.end();
  if (!end.ok()) return;  // exit_code -1, signal 0: the test sees it failed
  if (end.value().is_exit()) {
    m.exit_code = end.value().exit_code();
  } else {
    m.signal = end.value().signal();
  }
}

bool TestHost::run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    std::vector<pollfd> fds{{supervisor_.event_fd(), POLLIN, 0}};
    std::vector<Capture*> polled;
    for (Capture* c : captures_) {
      if (c->eof) continue;
      fds.push_back({c->read_end.get(), POLLIN, 0});
      polled.push_back(c);
    }
    if (::poll(fds.data(), fds.size(), static_cast<int>(std::min<long>(left.count(), 100))) <= 0) continue;
    if (fds[0].revents != 0) supervisor_.dispatch();
    for (std::size_t i = 0; i < polled.size(); ++i) {
      if (fds[i + 1].revents == 0) continue;
      char buf[4096];
      ssize_t n = ::read(polled[i]->read_end.get(), buf, sizeof(buf));
      if (n > 0) polled[i]->data.append(buf, static_cast<std::size_t>(n));
      if (n == 0) polled[i]->eof = true;
    }
  }
  return true;
}

bool TestHost::run_until_all_done(std::chrono::milliseconds timeout) {
  return run_until(
      [this] {
        for (const Capture* c : captures_)
          if (!c->eof) return false;
        return supervisor_.idle();
      },
      timeout);
}

RunResult run_member(LaunchSpec spec, std::chrono::milliseconds timeout) {
  TestHost host;
  Capture out, err;
  spec.stdio[1] = out.write_end.get();
  spec.stdio[2] = err.write_end.get();
  RunResult result;
  auto launched = host.launch(spec);
  out.write_end.reset();  // the member has its own copy; EOF comes when it exits
  err.write_end.reset();
  if (auto* error = std::get_if<LaunchError>(&launched)) {
    result.error = *error;
    host.run_until_all_done(std::chrono::seconds(10));  // reaps the child a failed launch left
    return result;
  }
  HostedMember* m = std::get<HostedMember*>(launched);
  host.watch(out);
  host.watch(err);
  if (!host.run_until_all_done(timeout)) {
    if (!m->exited) (void)host.supervisor().signal(*m->process, SIGKILL);
    host.run_until_all_done(std::chrono::seconds(10));
    result.err = "timed out\n";
  }
  result.exit_code = m->exit_code;
  result.signal = m->signal;
  result.out = out.data;
  result.err += err.data;
  result.exe_path = m->launched().exe_path;
  result.argv = m->launched().argv;
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
