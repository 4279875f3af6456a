#include "tests/fuzz/service_harness.h"

#include "proto/frame.h"
#include "proto/message.h"
#include "proto/rlimits.h"

#include <fcntl.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace pat::fuzz {

namespace {

[[noreturn]] void broken(const std::string& what) {
  std::fprintf(stderr, "fuzz invariant broken: %s\n", what.c_str());
  std::abort();
}

UniqueFd dev_null() {
  UniqueFd fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!fd) broken("open /dev/null");
  return fd;
}

// Everything the peer end of the socket holds, split into frames.
std::vector<std::string> drain(int fd) {
  proto::FrameDecoder decoder(64 << 20);
  char buffer[65536];
  for (;;) {
    ssize_t n = ::recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT);
    if (n <= 0) break;
    decoder.feed(std::string_view(buffer, static_cast<std::size_t>(n)));
  }
  std::vector<std::string> frames;
  while (auto frame = decoder.next()) frames.push_back(std::move(*frame));
  if (decoder.pending_bytes() != 0) broken("a reply without its NUL");
  return frames;
}

}  // namespace

void log_to_nowhere() {
  auto logger = std::make_shared<spdlog::logger>("fuzz", std::make_shared<spdlog::sinks::null_sink_mt>());
  logger->set_level(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::trace);
}

UniqueFd sealed_memfd(std::string_view contents) {
  UniqueFd fd(::memfd_create("fuzz-run-arguments", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) broken("memfd_create");
  for (std::size_t done = 0; done < contents.size();) {
    ssize_t n = ::write(fd.get(), contents.data() + done, contents.size() - done);
    if (n <= 0) broken("write memfd");
    done += static_cast<std::size_t>(n);
  }
  if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) != 0) {
    broken("seal memfd");
  }
  return fd;
}

DispatchInput decode_dispatch_input(std::span<const std::uint8_t> data) {
  DispatchInput input;
  std::uint8_t flags = data.empty() ? 0 : data[0];
  data = data.subspan(std::min<std::size_t>(1, data.size()));
  std::size_t memfd_size = 0;
  if (data.size() >= 2) {
    memfd_size = data[0] | (std::size_t{data[1]} << 8);
    data = data.subspan(2);
  }
  memfd_size = std::min(memfd_size, data.size());
  std::string_view memfd_contents(reinterpret_cast<const char*>(data.data()), memfd_size);
  data = data.subspan(memfd_size);
  input.frame.assign(reinterpret_cast<const char*>(data.data()), data.size());

  input.peer.pid = ::getpid();
  input.peer.uid = (flags & 1) ? 0 : 1000;
  input.peer.gid = input.peer.uid;
  input.peer.rlimits = proto::current_rlimits();  // as the kernel reports them for a live peer
  static constexpr int kDescriptors[4] = {0, 3, 4, 1};
  int descriptors = kDescriptors[(flags >> 1) & 3];
  for (int i = 0; i < std::min(descriptors, 3); ++i) input.fds.push_back(dev_null());
  if (descriptors == 4) input.fds.push_back(sealed_memfd(memfd_contents));
  return input;
}

ServiceHarness::ServiceHarness(asio::io_context& io) : io_(io) {}

void ServiceHarness::serve(const rpc::Service& service, DispatchInput input) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) broken("socketpair");
  UniqueFd peer_end(pair[1]);
  auto socket = std::make_shared<rpc::FramedSocket>(LocalSocket(io_, asio::local::stream_protocol(), pair[0]));
  auto disconnect = std::make_shared<rpc::DisconnectNotice>();

  // What serve() will see, parsed the same way, to know which replies to expect.
  auto parsed = proto::parse_call(input.frame);
  const auto* call = std::get_if<proto::Call>(&parsed);
  bool oneway = call != nullptr && call->oneway;

  bool done = false;
  asio::co_spawn(io_, service.serve(rpc::Frame{std::move(input.frame), std::move(input.fds)}, input.peer, socket,
                                    disconnect),
                 [&done](std::exception_ptr error) {
                   if (error) broken("Service::serve let an exception out");
                   done = true;
                 });
  // Let the call run as far as it goes on its own; a stream then waits for
  // its caller, who leaves, as patctl does when it is killed.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  io_.restart();
  while (!done && io_.poll() > 0) {
  }
  if (!done) disconnect->fire();
  while (!done) {
    io_.run_one_for(std::chrono::milliseconds(100));
    if (std::chrono::steady_clock::now() > deadline) broken("a call did not finish within 20 s of its caller leaving");
  }
  io_.restart();
  while (io_.poll() > 0) {
  }  // the replies' writer

  auto frames = drain(peer_end.get());
  std::size_t finals = 0;
  for (const auto& frame : frames) {
    auto reply = proto::parse_reply(frame);
    auto* ok = std::get_if<proto::Reply>(&reply);
    if (ok == nullptr) broken("a reply that does not parse: " + frame.substr(0, 200));
    if (ok->error && !proto::error_code_from_name(ok->error->name)) broken("unknown error name " + ok->error->name);
    if (ok->error && ok->continues) broken("an error that continues");
    if (!ok->continues) ++finals;
  }
  if (oneway && !frames.empty() && call != nullptr) broken("a oneway call got a reply");
  if (!oneway && !disconnect->fired() && finals != 1) {
    broken("expected one final reply, got " + std::to_string(finals));
  }
  if (finals > 1) broken("more than one final reply");
  socket->close();
}

}  // namespace pat::fuzz
