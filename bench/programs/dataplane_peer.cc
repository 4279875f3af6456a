// dataplane_peer: both sides of bench/dataplane.py's measurements.
// As members of one pat group (libpat channels):
//   dataplane_peer pat-pong                       echo on "ping" -> "pong" until closed
//   dataplane_peer pat-ping N                     N timed round trips of an 8-byte message
//   dataplane_peer pat-receive ROUNDS read|ref    take the buffer ROUNDS times (reading it all, or not); ack each
//   dataplane_peer pat-send BYTES ROUNDS          pass one BYTES buffer by reference ROUNDS times
// As two ordinary processes (fork) over pipes, the same operations:
//   dataplane_peer pipe-pingpong N
//   dataplane_peer pipe-transfer BYTES ROUNDS read|ref
// Each prints one JSON object: the samples in microseconds. With PEER_CPU=N
// in the environment, the process (and a pipe variant's child) runs on CPU N
// only: two peers on one CPU hand over without waking another CPU.
#include <pat/pat.hpp>

#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kWarmup = 200;

double micros(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

void print_samples(const char* variant, const std::vector<double>& samples) {
  std::printf("{\"variant\": \"%s\", \"samples_us\": [", variant);
  for (std::size_t i = 0; i < samples.size(); ++i) std::printf("%s%.3f", i ? ", " : "", samples[i]);
  std::printf("]}\n");
}

// Reads every byte (as 64-bit words): what a consumer of the data pays anyway.
std::uint64_t read_all(const std::byte* data, std::size_t bytes) {
  std::uint64_t sum = 0;
  const auto* words = reinterpret_cast<const std::uint64_t*>(data);
  for (std::size_t i = 0; i < bytes / 8; ++i) sum += words[i];
  return sum;
}

volatile std::uint64_t sink;

// ---- pat --------------------------------------------------------------------

int pat_pong() {
  auto in = pat::Channel::open("ping", pat::Role::Receive);
  auto out = pat::Channel::open("pong", pat::Role::Send);
  try {
    for (;;) out.send(*in.receive());
  } catch (const pat::Error& error) {
    if (error.code() != pat::Errc::Closed) throw;
  }
  return 0;
}

int pat_ping(int rounds) {
  auto out = pat::Channel::open("ping", pat::Role::Send);
  auto in = pat::Channel::open("pong", pat::Role::Receive);
  pat::Message message("8 bytes!");
  std::vector<double> samples;
  for (int i = 0; i < kWarmup + rounds; ++i) {
    auto start = Clock::now();
    out.send(message);
    in.receive();
    if (i >= kWarmup) samples.push_back(micros(Clock::now() - start));
  }
  out.close();
  print_samples("pat_roundtrip", samples);
  return 0;
}

int pat_receive(int rounds, bool read) {
  auto in = pat::Channel::open("bulk", pat::Role::Receive);
  auto ack = pat::Channel::open("bulk.ack", pat::Role::Send);
  for (int i = 0; i < rounds; ++i) {
    auto message = in.receive();
    const pat::Buffer& buffer = message->buffers.at(0);
    if (read) sink = read_all(buffer.data(), buffer.size());
    ack.send(pat::Message("ok"));
  }
  return 0;
}

int pat_send(std::size_t bytes, int rounds, bool read) {
  auto out = pat::Channel::open("bulk", pat::Role::Send);
  auto ack = pat::Channel::open("bulk.ack", pat::Role::Receive);
  auto buffer = pat::Buffer::allocate(bytes);  // zero-filled: every page touched once, before timing
  std::vector<double> samples;
  for (int i = 0; i < rounds; ++i) {
    auto start = Clock::now();
    out.send(pat::Message("bulk", {buffer}));
    ack.receive();
    samples.push_back(micros(Clock::now() - start));
  }
  print_samples(read ? "pat_transfer_read" : "pat_transfer_ref", samples);
  return 0;
}

// ---- pipes ------------------------------------------------------------------

void write_all(int fd, const void* data, std::size_t bytes) {
  const char* at = static_cast<const char*>(data);
  while (bytes > 0) {
    ssize_t n = ::write(fd, at, bytes);
    if (n <= 0) std::_Exit(3);
    at += n;
    bytes -= static_cast<std::size_t>(n);
  }
}

void read_exactly(int fd, void* data, std::size_t bytes) {
  char* at = static_cast<char*>(data);
  while (bytes > 0) {
    ssize_t n = ::read(fd, at, bytes);
    if (n <= 0) std::_Exit(3);
    at += n;
    bytes -= static_cast<std::size_t>(n);
  }
}

struct PipePair {
  int to_child[2];
  int to_parent[2];
  PipePair() {
    if (::pipe(to_child) != 0 || ::pipe(to_parent) != 0) std::_Exit(3);
    // As large as an unprivileged process may ask (fs/pipe.c, pipe-max-size):
    // the fairest pipe there is for bulk data.
    for (int fd : {to_child[1], to_parent[1]}) ::fcntl(fd, F_SETPIPE_SZ, 1 << 20);
  }
};

int finish_child(pid_t child) {
  int status = 0;
  ::waitpid(child, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

int pipe_pingpong(int rounds) {
  PipePair pipes;
  char message[8] = {'8', ' ', 'b', 'y', 't', 'e', 's', '!'};
  pid_t child = ::fork();
  if (child == 0) {
    for (int i = 0; i < kWarmup + rounds; ++i) {
      read_exactly(pipes.to_child[0], message, sizeof(message));
      write_all(pipes.to_parent[1], message, sizeof(message));
    }
    std::_Exit(0);
  }
  std::vector<double> samples;
  for (int i = 0; i < kWarmup + rounds; ++i) {
    auto start = Clock::now();
    write_all(pipes.to_child[1], message, sizeof(message));
    read_exactly(pipes.to_parent[0], message, sizeof(message));
    if (i >= kWarmup) samples.push_back(micros(Clock::now() - start));
  }
  print_samples("pipe_roundtrip", samples);
  return finish_child(child);
}

// The receiver reads into its own buffer, touched beforehand (reused, as a
// careful program would): the copy through the kernel is what is measured.
int pipe_transfer(std::size_t bytes, int rounds, bool read) {
  PipePair pipes;
  pid_t child = ::fork();
  if (child == 0) {
    std::vector<std::byte> into(bytes, std::byte{1});
    char ack = 'k';
    for (int i = 0; i < rounds; ++i) {
      read_exactly(pipes.to_child[0], into.data(), bytes);
      if (read) sink = read_all(into.data(), bytes);
      write_all(pipes.to_parent[1], &ack, 1);
    }
    std::_Exit(0);
  }
  std::vector<std::byte> from(bytes, std::byte{2});
  std::vector<double> samples;
  for (int i = 0; i < rounds; ++i) {
    char ack;
    auto start = Clock::now();
    write_all(pipes.to_child[1], from.data(), bytes);
    read_exactly(pipes.to_parent[0], &ack, 1);
    samples.push_back(micros(Clock::now() - start));
  }
  print_samples(read ? "pipe_transfer_read" : "pipe_transfer_ref", samples);
  return finish_child(child);
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (const char* cpu = std::getenv("PEER_CPU")) {
    cpu_set_t only;
    CPU_ZERO(&only);
    CPU_SET(std::atoi(cpu), &only);
    if (::sched_setaffinity(0, sizeof(only), &only) != 0) std::perror("sched_setaffinity");
  }
  auto number = [&](int i) { return std::stoull(argv[i]); };
  try {
    if (mode == "pat-pong") return pat_pong();
    if (mode == "pat-ping" && argc == 3) return pat_ping(static_cast<int>(number(2)));
    if (mode == "pat-receive" && argc == 4) return pat_receive(static_cast<int>(number(2)), std::string(argv[3]) == "read");
    if (mode == "pat-send" && argc == 5) return pat_send(number(2), static_cast<int>(number(3)), std::string(argv[4]) == "read");
    if (mode == "pipe-pingpong" && argc == 3) return pipe_pingpong(static_cast<int>(number(2)));
    if (mode == "pipe-transfer" && argc == 5) {
      return pipe_transfer(number(2), static_cast<int>(number(3)), std::string(argv[4]) == "read");
    }
  } catch (const pat::Error& error) {
    std::fprintf(stderr, "dataplane_peer %s: %s\n", mode.c_str(), error.what());
    return 2;
  }
  std::fprintf(stderr, "usage: see the comment at the top of dataplane_peer.cc\n");
  return 64;
}
