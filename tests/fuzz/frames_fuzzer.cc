// Fuzz target: the frame splitter and the message parser, as every pat peer
// runs them on bytes from a socket. The input is fed to a FrameDecoder in
// chunks whose sizes the input's first bytes choose (frames straddle reads);
// every frame is parsed as a call and as a reply, and what parses is
// re-encoded and must parse back to the same thing.
#include "proto/frame.h"
#include "proto/message.h"

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace {

using namespace pat::proto;

[[noreturn]] void broken(const char* what) {
  std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
  std::abort();
}

std::string without_nul(std::string frame) {
  if (frame.empty() || frame.back() != '\0') broken("encoded frame without its NUL");
  frame.pop_back();
  return frame;
}

void check_round_trip(std::string_view frame) {
  auto call = parse_call(frame);
  if (auto* parsed = std::get_if<Call>(&call)) {
    auto again = parse_call(without_nul(encode(*parsed)));
    auto* back = std::get_if<Call>(&again);
    if (back == nullptr || back->method != parsed->method || back->parameters != parsed->parameters ||
        back->more != parsed->more || back->oneway != parsed->oneway) {
      broken("a call does not survive encode and parse");
    }
  } else if (!std::get<Error>(call).is(ErrorCode::InvalidMessage)) {
    broken("a call parse error that is not InvalidMessage");
  }
  auto reply = parse_reply(frame);
  if (auto* parsed = std::get_if<Reply>(&reply)) {
    auto again = parse_reply(without_nul(encode(*parsed)));
    auto* back = std::get_if<Reply>(&again);
    if (back == nullptr || back->parameters != parsed->parameters || back->continues != parsed->continues ||
        back->error.has_value() != parsed->error.has_value()) {
      // An error reply is encoded without "continues" (errors end a call).
      if (!(back != nullptr && parsed->error && back->error)) broken("a reply does not survive encode and parse");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  // A small cap, so the fuzzer also reaches "oversized" without 1 MiB inputs.
  std::size_t cap = 64 + data[0] * 64;
  FrameDecoder decoder(cap);
  std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  std::size_t chunk = 1 + (data[0] % 17);
  std::size_t fed = 0;
  while (fed < bytes.size()) {
    std::size_t n = std::min(chunk, bytes.size() - fed);
    decoder.feed(bytes.substr(fed, n));
    fed += n;
    chunk = chunk * 3 % 61 + 1;
    while (auto frame = decoder.next()) {
      if (frame->size() > cap) broken("a frame above the cap");
      if (frame->find('\0') != std::string::npos) broken("a frame holding a NUL");
      check_round_trip(*frame);
    }
    if (decoder.oversized()) break;
  }
  return 0;
}
