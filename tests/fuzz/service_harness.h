// Fuzz support: drives a real rpc::Service (patd's or the host's, with their
// real method handlers) the way a UnixServer session does — one frame in,
// served by Service::serve, every reply out through a real socket — and
// checks what comes back: well-formed frames, exactly one final reply
// unless the call was oneway or its caller left, and only error names of
// the vocabulary (proto/errors.cc).
#pragma once

#include "base/unique_fd.h"
#include "daemon/rpc/service.h"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace pat::fuzz {

// The harness's own input format, shared by the dispatch targets:
//   byte 0      bit 0: the caller is root (else uid 1000);
//               bits 1-2: descriptors passed with the call: 0, 3 (/dev/null),
//               4 (/dev/null x3 and a sealed memfd), 1 (/dev/null)
//   bytes 1-2   little-endian length L of the memfd's contents
//   L bytes     the memfd's contents (the run-arguments descriptor)
//   the rest    the frame (without its NUL)
struct DispatchInput {
  rpc::PeerCredentials peer;
  std::vector<UniqueFd> fds;
  std::string frame;
};
DispatchInput decode_dispatch_input(std::span<const std::uint8_t> data);

class ServiceHarness {
 public:
  explicit ServiceHarness(asio::io_context& io);

  // Serves one frame to completion (a stream is ended by its caller leaving)
  // and checks the replies; aborts on a broken invariant.
  void serve(const rpc::Service& service, DispatchInput input);

 private:
  asio::io_context& io_;
};

// Logs formatted as usual (log lines are code under test too: they quote
// hostile strings) but written nowhere, so the fuzzer's output stays its own.
void log_to_nowhere();

// A sealed memfd holding `contents`, as patctl passes run arguments.
UniqueFd sealed_memfd(std::string_view contents);

}  // namespace pat::fuzz
