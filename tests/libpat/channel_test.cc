// Channels through the public API, threads standing in for members: order,
// references carried by messages, timeouts, close, and peer death.
#include "tests/libpat/test_group.h"

#include <doctest/doctest.h>

#include <atomic>

#include <chrono>
#include <cstring>
#include <future>
#include <thread>

using namespace std::chrono_literals;
using pat::Channel;
using pat::Errc;
using pat::Message;
using pat::testing::AsMember;
using pat::testing::TestGroup;

namespace {

// Runs `body` as `member` on its own thread.
template <class Body>
auto as_member_async(pat::dataplane::MemberSession& member, Body body) {
  return std::async(std::launch::async, [&member, body] {
    AsMember as(member);
    return body();
  });
}

Errc error_of(auto&& call) {
  try {
    call();
  } catch (const pat::Error& error) {
    return error.code();
  }
  FAIL("no pat::Error");
  return Errc::SystemError;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

TEST_CASE("messages arrive in order with their bytes, buffers and sender; queued messages hold their buffers") {
  TestGroup group;
  auto& sender = group.start();
  auto& receiver = group.start();
  std::uint64_t handle = 0;
  {
    AsMember as(sender);
    auto channel = Channel::open("orders", pat::Role::Send);
    auto buffer = pat::Buffer::allocate(1 << 16);
    std::memset(buffer.data(), 'b', buffer.size());
    handle = buffer.handle();
    CHECK(channel.send(Message("first", {buffer})));
    CHECK(channel.send(Message("second", {buffer, buffer})));
    CHECK(channel.send(Message("third")));
    CHECK(buffer.references() == 4);  // the sender, and one per reference queued
    CHECK(channel.queued() == 3);
  }
  // The sender detached and dropped its Buffer: the queued messages keep it.
  CHECK(group.stats().buffers == 1);
  CHECK(group.stats().channels == 1);
  AsMember as(receiver);
  auto channel = Channel::open("orders", pat::Role::Receive);
  auto first = channel.receive(1s);
  REQUIRE(first);
  CHECK(first->text() == "first");
  CHECK(first->sender == sender.pid());
  REQUIRE(first->buffers.size() == 1);
  CHECK(first->buffers[0].handle() == handle);
  CHECK(first->buffers[0].data()[100] == std::byte{'b'});
  auto second = channel.receive(1s);
  REQUIRE(second);
  CHECK(second->text() == "second");
  CHECK(second->buffers.size() == 2);
  CHECK(second->buffers[0].references() == 1);  // everything is the receiver's now: it counts once
  auto third = channel.receive(1s);
  REQUIRE(third);
  CHECK(third->buffers.empty());
  first.reset();
  second.reset();
  CHECK(group.stats().buffers == 0);
}

TEST_CASE("receive with a timeout on an empty channel returns nothing after the timeout; send on a full one too") {
  TestGroup group;
  AsMember as(group.start());
  auto channel = Channel::open("slow", pat::Role::Both, {.capacity = 2, .max_bytes = 16, .max_buffers = 1});
  auto start = std::chrono::steady_clock::now();
  CHECK_FALSE(channel.receive(50ms).has_value());
  double waited = seconds_since(start);
  CHECK(waited >= 0.050);
  CHECK(waited < 2.0);
  CHECK(channel.send(Message("1")));
  CHECK(channel.send(Message("2")));
  start = std::chrono::steady_clock::now();
  CHECK_FALSE(channel.send(Message("3"), 30ms));
  CHECK(seconds_since(start) >= 0.030);
  CHECK(channel.receive(0ns)->text() == "1");
  CHECK(channel.limits().capacity == 2);
  CHECK(error_of([&] { channel.send(Message("seventeen bytes!!")); }) == Errc::TooLarge);
}

TEST_CASE("a blocked receiver is woken by a send from another member") {
  TestGroup group;
  auto& a = group.start();
  auto& b = group.start();
  AsMember as(a);
  auto channel = Channel::open("wake");
  // The send comes 100 ms after the receiver is about to wait (not after it
  // was merely scheduled to start), so `waited` is at least that long.
  std::atomic<bool> receiving{false};
  auto waiting = as_member_async(b, [&receiving] {
    auto in = Channel::open("wake");
    auto start = std::chrono::steady_clock::now();
    receiving = true;
    auto message = in.receive(10s);
    return std::make_pair(message ? std::string(message->text()) : "", seconds_since(start));
  });
  while (!receiving) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(100ms);
  CHECK(channel.send(Message("ping")));
  auto [text, waited] = waiting.get();
  CHECK(text == "ping");
  CHECK(waited >= 0.09);
  CHECK(waited < 5.0);
}

TEST_CASE("close: receivers drain what is queued, then get Closed; senders get Closed; blocked waiters wake") {
  TestGroup group;
  auto& a = group.start();
  auto& b = group.start();
  AsMember as(a);
  auto channel = Channel::open("closing");
  auto blocked = as_member_async(b, [] {
    auto in = Channel::open("closing", pat::Role::Receive);
    try {
      in.receive(10s);
      return Errc::SystemError;  // got a message: not expected
    } catch (const pat::Error& error) {
      return error.code();
    }
  });
  std::this_thread::sleep_for(50ms);
  channel.close();
  CHECK(blocked.get() == Errc::Closed);
  // Closed, with messages: they still come out (sent before the close here
  // is impossible, so reopen the scenario on a fresh channel).
  auto drain = Channel::open("drain");
  CHECK(drain.send(Message("one")));
  CHECK(drain.send(Message("two", {pat::Buffer::allocate(10)})));
  drain.close();
  CHECK(drain.closed());
  CHECK(error_of([&] { drain.send(Message("late")); }) == Errc::Closed);
  CHECK(drain.receive(1s)->text() == "one");
  CHECK(drain.receive(1s)->text() == "two");
  CHECK(error_of([&] { drain.receive(1s); }) == Errc::Closed);
  CHECK(group.stats().buffers == 0);
}

TEST_CASE("PeerDied: a receiver waiting on a channel whose only sender died; its queued message comes first") {
  TestGroup group;
  auto& sender = group.start();
  auto& receiver = group.start();
  std::optional<Channel> out;
  {
    AsMember as(sender);
    out = Channel::open("fragile", pat::Role::Send);
    CHECK(out->send(Message("last words", {pat::Buffer::allocate(100)})));
  }
  auto waiting = as_member_async(receiver, [] {
    auto in = Channel::open("fragile", pat::Role::Receive);
    std::vector<std::string> got;
    for (;;) {
      try {
        auto message = in.receive(10s);
        if (!message) return std::make_pair(got, Errc::Timeout);
        got.emplace_back(message->text());
      } catch (const pat::Error& error) {
        return std::make_pair(got, error.code());
      }
    }
  });
  std::this_thread::sleep_for(100ms);  // the receiver has the message and waits for more
  CHECK(group.end(sender));            // killed without closing
  auto [got, error] = waiting.get();
  CHECK(got == std::vector<std::string>{"last words"});
  CHECK(error == Errc::PeerDied);
  out.reset();  // the dead sender's Channel object: inert
  CHECK(group.stats().buffers == 0);
}

TEST_CASE("PeerDied only when no sender is left: a live one keeps receivers waiting; a new one clears it") {
  TestGroup group;
  auto& dead = group.start();
  auto& alive = group.start();
  auto& receiver = group.start();
  std::optional<Channel> dead_end, alive_end;
  {
    AsMember as(dead);
    dead_end = Channel::open("two-senders", pat::Role::Send);
  }
  {
    AsMember as(alive);
    alive_end = Channel::open("two-senders", pat::Role::Send);
  }
  AsMember as(receiver);
  auto in = Channel::open("two-senders", pat::Role::Receive);
  CHECK(group.end(dead));
  CHECK_FALSE(in.receive(50ms).has_value());  // waits: a sender is still attached
  {
    AsMember as_alive(alive);
    alive_end.reset();  // detaches cleanly: no PeerDied, a new sender may come
  }
  CHECK_FALSE(in.receive(50ms).has_value());
  auto& late = group.start();
  std::optional<Channel> late_end;
  {
    AsMember as_late(late);
    late_end = Channel::open("two-senders", pat::Role::Send);
  }
  CHECK(group.end(late));
  CHECK(error_of([&] { in.receive(1s); }) == Errc::PeerDied);
  dead_end.reset();
  late_end.reset();
}

TEST_CASE("PeerDied for a sender blocked on a full channel whose receivers died") {
  TestGroup group;
  auto& sender = group.start();
  auto& receiver = group.start();
  std::optional<Channel> receiving;
  {
    AsMember as(receiver);
    receiving = Channel::open("full", pat::Role::Receive, {.capacity = 1});
  }
  auto blocked = as_member_async(sender, [] {
    auto out = Channel::open("full", pat::Role::Send);
    out.send(Message("fills it"));
    try {
      out.send(Message("blocks"), 10s);
      return Errc::SystemError;
    } catch (const pat::Error& error) {
      return error.code();
    }
  });
  std::this_thread::sleep_for(100ms);
  CHECK(group.end(receiver));
  CHECK(blocked.get() == Errc::PeerDied);
  receiving.reset();
}

TEST_CASE("a receiver that dies holding received buffers, and messages it never took, leak nothing") {
  TestGroup group;
  auto& sender = group.start();
  auto& receiver = group.start();
  {
    AsMember as(sender);
    auto out = Channel::open("leaky");
    for (int i = 0; i < 5; ++i) CHECK(out.send(Message("m", {pat::Buffer::allocate(1000)})));
  }
  CHECK(group.stats().buffers == 5);
  std::optional<Message> taken;
  std::optional<Channel> in;
  {
    AsMember as(receiver);
    in = Channel::open("leaky");
    taken = in->receive(1s);
    REQUIRE(taken);
  }
  CHECK(group.end(receiver));
  // The one it took is freed; four wait in the channel for another receiver.
  CHECK(group.stats().buffers == 4);
  CHECK(group.stats().channels == 1);
  auto& next = group.start();
  {
    AsMember as(next);
    auto again = Channel::open("leaky");
    for (int i = 0; i < 4; ++i) CHECK(again.receive(1s).has_value());
  }
  CHECK(group.stats().buffers == 0);
  CHECK(group.stats().channels == 0);  // empty and nobody attached: gone
  taken.reset();
  in.reset();
}

TEST_CASE("channel names and options are checked") {
  TestGroup group;
  AsMember as(group.start());
  CHECK(error_of([] { Channel::open(""); }) == Errc::InvalidArgument);
  CHECK(error_of([] { Channel::open(std::string(128, 'n')); }) == Errc::InvalidArgument);
  CHECK(error_of([] { Channel::open("zero", pat::Role::Both, {.capacity = 0}); }) == Errc::InvalidArgument);
  CHECK(error_of([] { Channel::open("huge", pat::Role::Both, {.max_bytes = 2 << 20}); }) == Errc::InvalidArgument);
  auto send_only = Channel::open("roles", pat::Role::Send);
  CHECK(error_of([&] { send_only.receive(0ns); }) == Errc::InvalidArgument);
  auto receive_only = Channel::open("roles", pat::Role::Receive);
  CHECK(error_of([&] { receive_only.send(Message("x")); }) == Errc::InvalidArgument);
  Channel moved = std::move(send_only);
  CHECK(error_of([&] { send_only.send(Message("x")); }) == Errc::InvalidArgument);
  auto first = Channel::open("same", pat::Role::Both, {.capacity = 5});
  auto second = Channel::open("same", pat::Role::Both, {.capacity = 99});  // the creator's limits win
  CHECK(second.limits().capacity == 5);
  CHECK(group.stats().channels == 2);
}
