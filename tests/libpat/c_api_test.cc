// The C ABI: the same capability with status codes, pat_last_error() and
// opaque objects, from a thread standing in for a member.
#include "pat/pat.h"
#include "tests/libpat/test_group.h"

#include <doctest/doctest.h>

#include <cstring>
#include <string>

using pat::testing::AsMember;
using pat::testing::TestGroup;

TEST_CASE("C ABI: buffers, a channel round trip, errors with their messages, members") {
  TestGroup group;
  auto& member = group.start({"c-member", "--flag"});
  AsMember as(member);
  CHECK(pat_in_group() == 1);
  char name[64];
  CHECK(pat_group_name(name, sizeof(name)) == PAT_OK);
  CHECK(std::string(name) == "test-group");
  CHECK(pat_group_name(name, 4) == PAT_E_TOO_LARGE);

  pat_buffer* buffer = pat_buffer_alloc(1000);
  REQUIRE(buffer != nullptr);
  CHECK(pat_buffer_size(buffer) == 1000);
  std::memcpy(pat_buffer_data(buffer), "c data", 6);
  pat_buffer* second_ref = pat_buffer_ref(buffer);
  CHECK(pat_buffer_handle(second_ref) == pat_buffer_handle(buffer));
  CHECK(pat_buffer_references(buffer) == 1);  // one member
  CHECK_FALSE(pat_buffer_is_zero_copy(buffer));

  pat_channel_options options{4, 32, 2};
  pat_channel* channel = pat_channel_open("c-channel", PAT_CHANNEL_BOTH, &options);
  REQUIRE(channel != nullptr);
  CHECK(pat_channel_send(channel, "hello", 5, &buffer, 1, -1) == PAT_OK);
  pat_buffer_release(buffer);
  pat_buffer_release(second_ref);
  CHECK(pat_channel_queued(channel) == 1);
  CHECK(group.stats().buffers == 1);  // held by the queued message

  pat_message* message = nullptr;
  CHECK(pat_channel_receive(channel, &message, 1'000'000'000) == PAT_OK);
  size_t size = 0;
  const void* bytes = pat_message_bytes(message, &size);
  CHECK(std::string(static_cast<const char*>(bytes), size) == "hello");
  CHECK(pat_message_sender(message) == member.pid());
  REQUIRE(pat_message_buffer_count(message) == 1);
  pat_buffer* got = pat_message_buffer(message, 0);
  CHECK(std::memcmp(pat_buffer_data(got), "c data", 6) == 0);
  CHECK(pat_message_buffer(message, 1) == nullptr);
  CHECK(std::string(pat_last_error()).find("pat_message_buffer") == 0);
  pat_message_free(message);
  pat_buffer_release(got);
  CHECK(group.stats().buffers == 0);

  CHECK(pat_channel_receive(channel, &message, 1'000'000) == PAT_E_TIMEOUT);
  CHECK(message == nullptr);
  CHECK(std::string(pat_last_error()) == "pat_channel_receive: nothing arrived on channel 'c-channel'");
  CHECK(pat_channel_send(channel, "far too long for thirty-two bytes", 33, nullptr, 0, -1) == PAT_E_TOO_LARGE);
  CHECK(pat_channel_close(channel) == PAT_OK);
  CHECK(pat_channel_send(channel, "x", 1, nullptr, 0, -1) == PAT_E_CLOSED);
  CHECK(std::string(pat_status_name(PAT_E_CLOSED)) == "channel closed");
  CHECK(pat_channel_receive(channel, &message, -1) == PAT_E_CLOSED);
  pat_channel_release(channel);
  CHECK(pat_channel_open(nullptr, PAT_CHANNEL_SEND, nullptr) == nullptr);
  CHECK(pat_buffer_share(nullptr, 10) == nullptr);

  pat_member_info* members = nullptr;
  size_t count = 0;
  CHECK(pat_members(&members, &count) == PAT_OK);
  REQUIRE(count == 1);
  CHECK(members[0].pid == member.pid());
  REQUIRE(members[0].argc == 2);
  CHECK(std::string(members[0].argv[1]) == "--flag");
  CHECK(members[0].argv[2] == nullptr);
  pat_members_free(members, count);
}
