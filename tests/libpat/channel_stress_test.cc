// Many producers and consumers on one small channel, each a member (thread)
// of its own: every message arrives exactly once, intact, and every buffer
// is freed at the end.
#include "tests/libpat/test_group.h"

#include <doctest/doctest.h>

#include <cstring>
#include <latch>
#include <set>
#include <thread>

using namespace std::chrono_literals;
using pat::Channel;
using pat::Message;
using pat::testing::AsMember;
using pat::testing::TestGroup;

namespace {

struct Stamp {
  std::uint32_t producer;
  std::uint32_t sequence;
};

}  // namespace

TEST_CASE("MPMC stress: 4 producers, 4 consumers, 20,000 messages with buffers, every one accounted for") {
  constexpr int kProducers = 4, kConsumers = 4, kPerProducer = 5000;
  TestGroup group;
  std::vector<pat::dataplane::MemberSession*> producers, consumers;
  for (int i = 0; i < kProducers; ++i) producers.push_back(&group.start({"producer", std::to_string(i)}));
  for (int i = 0; i < kConsumers; ++i) consumers.push_back(&group.start({"consumer", std::to_string(i)}));
  // Small capacity: both sides block often.
  pat::ChannelOptions options{.capacity = 8, .max_bytes = 64, .max_buffers = 2};

  std::vector<std::vector<Stamp>> received(kConsumers);
  std::vector<int> damaged(kConsumers, 0);
  // Every consumer has its end open before the first message is sent. A
  // consumer thread the scheduler starts late (seen at a load of 20 on 2
  // CPUs: 6 runs in 900) would otherwise open "stress" after the others had
  // drained and left the closed channel, which destroys it (docs/dataplane.md
  // "Channels"): its open made a new, empty channel that nobody sends on, and
  // its receive timed out after 30 s with all 20,000 messages delivered.
  std::latch consumers_open(kConsumers);
  std::vector<std::thread> threads;
  for (int c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&, c] {
      AsMember as(*consumers[c]);
      auto in = Channel::open("stress", pat::Role::Receive, options);
      consumers_open.count_down();
      for (;;) {
        std::optional<Message> message;
        try {
          message = in.receive(30s);
        } catch (const pat::Error& error) {
          CHECK(error.code() == pat::Errc::Closed);
          return;
        }
        REQUIRE(message);
        Stamp stamp;
        REQUIRE(message->buffers.size() == 1);
        std::memcpy(&stamp, message->buffers[0].data(), sizeof(stamp));
        std::string expected = std::to_string(stamp.producer) + ":" + std::to_string(stamp.sequence);
        if (message->text() != expected || message->buffers[0].size() != 256 ||
            message->buffers[0].data()[255] != std::byte(stamp.sequence & 0xff)) {
          damaged[c]++;
        }
        received[c].push_back(stamp);
      }
    });
  }
  consumers_open.wait();
  std::vector<std::thread> producing;
  for (int p = 0; p < kProducers; ++p) {
    producing.emplace_back([&, p] {
      AsMember as(*producers[p]);
      auto out = Channel::open("stress", pat::Role::Send, options);
      for (int s = 0; s < kPerProducer; ++s) {
        auto buffer = pat::Buffer::allocate(256, pat::Buffer::Fill::Uninitialized);
        Stamp stamp{static_cast<std::uint32_t>(p), static_cast<std::uint32_t>(s)};
        std::memcpy(buffer.data(), &stamp, sizeof(stamp));
        buffer.data()[255] = std::byte(s & 0xff);
        REQUIRE(out.send(Message(std::to_string(p) + ":" + std::to_string(s), {buffer}), 30s));
      }
    });
  }
  for (auto& t : producing) t.join();
  {
    AsMember as(*producers[0]);
    Channel::open("stress", pat::Role::Send).close();
  }
  for (auto& t : threads) t.join();

  std::set<std::pair<std::uint32_t, std::uint32_t>> seen;
  std::size_t total = 0;
  for (int c = 0; c < kConsumers; ++c) {
    CHECK(damaged[c] == 0);
    total += received[c].size();
    for (const Stamp& stamp : received[c]) seen.emplace(stamp.producer, stamp.sequence);
    // Each consumer sees each producer's messages in the order sent.
    std::vector<int> last(kProducers, -1);
    for (const Stamp& stamp : received[c]) {
      CHECK(static_cast<int>(stamp.sequence) > last[stamp.producer]);
      last[stamp.producer] = static_cast<int>(stamp.sequence);
    }
    MESSAGE("consumer " << c << " received " << received[c].size());
  }
  CHECK(total == std::size_t{kProducers} * kPerProducer);
  CHECK(seen.size() == std::size_t{kProducers} * kPerProducer);
  CHECK(group.stats().buffers == 0);
  CHECK(group.stats().channels == 0);
}

TEST_CASE("MPMC with a producer killed midway: the rest still flows, nothing leaks once everyone is gone") {
  TestGroup group;
  auto& doomed = group.start({"doomed"});
  auto& steady = group.start({"steady"});
  auto& consumer = group.start({"consumer"});
  std::optional<Channel> doomed_end;
  {
    AsMember as(doomed);
    doomed_end = Channel::open("mixed", pat::Role::Send, {.capacity = 4});
    for (int i = 0; i < 3; ++i) CHECK(doomed_end->send(Message("doomed", {pat::Buffer::allocate(512)})));
  }
  // The feeder is attached before doomed ends: otherwise a feeder thread
  // started late leaves no sender attached after the death, and the
  // consumer's receive fails with PeerDied instead of waiting for it.
  std::latch feeder_open(1);
  std::thread feeder([&] {
    AsMember as(steady);
    auto out = Channel::open("mixed", pat::Role::Send);
    feeder_open.count_down();
    for (int i = 0; i < 200; ++i) REQUIRE(out.send(Message("steady", {pat::Buffer::allocate(512)}), 10s));
    out.close();
  });
  feeder_open.wait();
  std::this_thread::sleep_for(10ms);
  CHECK(group.end(doomed));
  int from_doomed = 0, from_steady = 0;
  {
    AsMember as(consumer);
    auto in = Channel::open("mixed", pat::Role::Receive);
    try {
      for (;;) {
        auto message = in.receive(10s);
        REQUIRE(message);
        (message->text() == "doomed" ? from_doomed : from_steady)++;
      }
    } catch (const pat::Error& error) {
      CHECK(error.code() == pat::Errc::Closed);
    }
  }
  feeder.join();
  CHECK(from_doomed == 3);
  CHECK(from_steady == 200);
  doomed_end.reset();
  CHECK(group.stats().buffers == 0);
}
