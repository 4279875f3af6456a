// bench_brk: the price of a rerouted syscall. Times brk(0) natively in this
// process, then inside a member whose brk goes through seccomp user
// notification to this process acting as its host, and prints both side by
// side (DESIGN "Rerouted syscalls" quotes ~0.22 µs vs ~15 µs).
#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "base/unique_fd.h"
#include "tracer/member_supervisor.h"

using namespace pat::tracer;

namespace {

constexpr int kBatches = 5;

double native_brk_us(long calls) {
  double best = 1e30;
  for (int b = 0; b < kBatches; ++b) {
    auto start = std::chrono::steady_clock::now();
    for (long i = 0; i < calls; ++i) ::syscall(SYS_brk, 0);
    std::chrono::duration<double, std::micro> took = std::chrono::steady_clock::now() - start;
    best = std::min(best, took.count() / static_cast<double>(calls));
  }
  return best;
}

// Launches the brk_loop member through the host's own supervisor (its
// syscall server threads answer the member) and runs the supervisor until
// the member has been reaped; returns what it printed.
std::string run_rerouted(long calls) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) std::abort();
  pat::UniqueFd out_read(pipe_fds[0]), out_write(pipe_fds[1]);
  LaunchSpec spec;
  spec.path = BENCH_BRK_LOOP;
  spec.argv = {"brk_loop", std::to_string(calls), std::to_string(kBatches)};
  spec.stdio[1] = out_write.get();
  spec.stdio[2] = STDERR_FILENO;
  MemberObserver nobody;
  MemberSupervisor supervisor(false, nobody);
  auto launched = supervisor.launch(spec);
  out_write.reset();
  if (auto* error = std::get_if<LaunchError>(&launched)) {
    std::fprintf(stderr, "bench_brk: launch failed: %s\n", error->message.c_str());
    std::exit(1);
  }
  std::string output;
  bool eof = false;
  while (!supervisor.idle() || !eof) {
    pollfd fds[2] = {{supervisor.event_fd(), POLLIN, 0}, {eof ? -1 : out_read.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) <= 0) continue;
    if (fds[0].revents) supervisor.dispatch();
    if (fds[1].revents) {
      char buf[256];
      ssize_t n = ::read(out_read.get(), buf, sizeof(buf));
      if (n > 0) output.append(buf, static_cast<std::size_t>(n));
      eof = n <= 0;
    }
  }
  return output;
}

}  // namespace

int main(int argc, char** argv) {
  long native_calls = argc > 1 ? std::atol(argv[1]) : 200000;
  long rerouted_calls = argc > 2 ? std::atol(argv[2]) : 5000;
  double native = native_brk_us(native_calls);
  std::string printed = run_rerouted(rerouted_calls);
  double rerouted = std::strtod(printed.c_str(), nullptr);
  if (rerouted <= 0) {
    std::fprintf(stderr, "bench_brk: the member printed %s\n", printed.c_str());
    return 1;
  }
  std::printf("brk(0) native:   %8.3f us/call (best of %d x %ld)\n", native, kBatches, native_calls);
  std::printf("brk(0) rerouted: %8.3f us/call (best of %d x %ld, seccomp user notification to this host)\n", rerouted,
              kBatches, rerouted_calls);
  std::printf("ratio:           %8.1fx\n", rerouted / native);
  return 0;
}
