// A C++ member that exchanges buffers with a Python member through libpat
// (pat/pat.hpp), for tests/python_pat: "a C/C++ member talking to a Python
// member".
//
//   buffer_echo REQUESTS REPLIES
//
// Each request on channel REQUESTS is the text "double" and one buffer of
// uint64 values; the reply on REPLIES is the text "sum=<S> address=0x<A>
// zero_copy=<Z>" (the sum of the values, the request buffer's address as
// this member sees it, whether it was shared without a copy) and a new
// arena buffer holding every value doubled. "bye" ends it; it prints
// "served <N>".
#include <pat/pat.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

namespace {

std::string reply_text(std::uint64_t sum, const pat::Buffer& request) {
  char text[128];
  std::snprintf(text, sizeof(text), "sum=%llu address=0x%llx zero_copy=%d", static_cast<unsigned long long>(sum),
                static_cast<unsigned long long>(reinterpret_cast<std::uintptr_t>(request.data())),
                request.zero_copy() ? 1 : 0);
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: buffer_echo REQUESTS REPLIES\n");
    return 2;
  }
  try {
    auto requests = pat::Channel::open(argv[1], pat::Role::Receive);
    auto replies = pat::Channel::open(argv[2], pat::Role::Send);
    int served = 0;
    for (;;) {
      auto request = requests.receive(std::chrono::seconds(60));
      if (!request) throw pat::Error(pat::Errc::Timeout, "no request within 60 s");
      if (request->text() == "bye") break;
      if (request->text() != "double" || request->buffers.size() != 1) {
        throw pat::Error(pat::Errc::InvalidArgument, "unexpected request: " + std::string(request->text()));
      }
      const pat::Buffer& in = request->buffers[0];
      std::size_t count = in.size() / sizeof(std::uint64_t);
      pat::Buffer out = pat::Buffer::allocate(count * sizeof(std::uint64_t), pat::Buffer::Fill::Uninitialized);
      std::uint64_t sum = 0;
      for (std::size_t i = 0; i < count; ++i) {
        std::uint64_t value;
        std::memcpy(&value, in.data() + i * sizeof(value), sizeof(value));
        sum += value;
        value *= 2;
        std::memcpy(out.data() + i * sizeof(value), &value, sizeof(value));
      }
      replies.send(pat::Message(reply_text(sum, in), {out}), std::chrono::seconds(60));
      ++served;
    }
    std::printf("served %d\n", served);
  } catch (const pat::Error& error) {
    std::fprintf(stderr, "buffer_echo: %s\n", error.what());
    return 1;
  }
  return 0;
}
