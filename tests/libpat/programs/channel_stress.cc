// Member program for the channel stress test (C++ API): producers, consumers
// and a coordinator, each a separate member of one group.
//   channel_stress produce CHANNEL ID COUNT [PACE_US]
//                                             send COUNT stamped messages (PACE_US apart), report on CHANNEL.done
//   channel_stress consume CHANNEL            receive until Closed; print "got ID SEQ" per message
//   channel_stress coordinate CHANNEL P C     wait for C consumers ready and P producers done, close
#include <pat/pat.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

namespace {

using namespace std::chrono_literals;

constexpr std::size_t kBufferBytes = 4096;

struct Stamp {
  std::uint32_t producer;
  std::uint32_t sequence;
};

std::byte pattern(const Stamp& stamp, std::size_t i) { return std::byte((stamp.producer * 131 + stamp.sequence + i) & 0xff); }

int produce(const std::string& channel, std::uint32_t id, std::uint32_t count, unsigned pace_us) {
  auto out = pat::Channel::open(channel, pat::Role::Send, {.capacity = 16});
  for (std::uint32_t s = 0; s < count; ++s) {
    auto buffer = pat::Buffer::allocate(kBufferBytes, pat::Buffer::Fill::Uninitialized);
    Stamp stamp{id, s};
    for (std::size_t i = 0; i < kBufferBytes; ++i) buffer.data()[i] = pattern(stamp, i);
    std::memcpy(buffer.data(), &stamp, sizeof(stamp));
    if (!out.send(pat::Message(std::to_string(id) + ":" + std::to_string(s), {buffer}), 60s)) {
      std::fprintf(stderr, "producer %u: send timed out at %u\n", id, s);
      return 1;
    }
    if (pace_us != 0) ::usleep(pace_us);
  }
  pat::Channel::open(channel + ".done", pat::Role::Send).send(pat::Message(std::to_string(id)));
  return 0;
}

int consume(const std::string& channel) {
  // Line by line: a consumer killed mid-stream has said what it received.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  auto in = pat::Channel::open(channel, pat::Role::Receive, {.capacity = 16});
  pat::Channel::open(channel + ".ready", pat::Role::Send).send(pat::Message("ready"));
  std::size_t received = 0, damaged = 0;
  for (;;) {
    std::optional<pat::Message> message;
    try {
      message = in.receive(60s);
    } catch (const pat::Error& error) {
      if (error.code() != pat::Errc::Closed) throw;
      break;
    }
    if (!message) {
      std::fprintf(stderr, "consumer: nothing for 60 s\n");
      return 1;
    }
    Stamp stamp;
    const pat::Buffer& buffer = message->buffers.at(0);
    std::memcpy(&stamp, buffer.data(), sizeof(stamp));
    bool intact = buffer.size() == kBufferBytes &&
                  message->text() == std::to_string(stamp.producer) + ":" + std::to_string(stamp.sequence);
    for (std::size_t i = sizeof(stamp); intact && i < kBufferBytes; ++i) intact = buffer.data()[i] == pattern(stamp, i);
    damaged += intact ? 0 : 1;
    std::printf("got %u %u\n", stamp.producer, stamp.sequence);
    received++;
  }
  std::printf("closed received=%zu damaged=%zu\n", received, damaged);
  return damaged == 0 ? 0 : 1;
}

int coordinate(const std::string& channel, int producers, int consumers) {
  auto ready = pat::Channel::open(channel + ".ready", pat::Role::Receive);
  auto done = pat::Channel::open(channel + ".done", pat::Role::Receive);
  for (int i = 0; i < consumers; ++i) ready.receive();
  for (int i = 0; i < producers; ++i) done.receive();
  pat::Channel::open(channel, pat::Role::Send).close();
  std::printf("closed\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  try {
    if (mode == "produce" && (argc == 5 || argc == 6)) {
      return produce(argv[2], std::stoul(argv[3]), std::stoul(argv[4]), argc == 6 ? std::stoul(argv[5]) : 0);
    }
    if (mode == "consume" && argc == 3) return consume(argv[2]);
    if (mode == "coordinate" && argc == 5) return coordinate(argv[2], std::stoi(argv[3]), std::stoi(argv[4]));
  } catch (const pat::Error& error) {
    std::fprintf(stderr, "channel_stress %s: %s: %s\n", mode.c_str(), pat::to_string(error.code()), error.what());
    return 2;
  }
  std::fprintf(stderr, "usage: channel_stress produce|consume|coordinate ...\n");
  return 64;
}
