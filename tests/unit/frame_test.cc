// Framing: NUL-terminated frames, split anywhere, capped in size.
#include "proto/frame.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using pat::proto::encode_frame;
using pat::proto::FrameDecoder;

TEST_CASE("frames split at NUL, however the bytes arrive") {
  std::string stream = encode_frame("{\"a\":1}") + encode_frame("{\"b\":2}") + encode_frame("{}");
  for (std::size_t chunk = 1; chunk <= stream.size(); ++chunk) {
    FrameDecoder decoder;
    std::vector<std::string> frames;
    for (std::size_t at = 0; at < stream.size(); at += chunk) {
      decoder.feed(std::string_view(stream).substr(at, chunk));
      while (auto frame = decoder.next()) frames.push_back(*frame);
    }
    CAPTURE(chunk);
    REQUIRE(frames.size() == 3);
    CHECK(frames[0] == "{\"a\":1}");
    CHECK(frames[1] == "{\"b\":2}");
    CHECK(frames[2] == "{}");
    CHECK(decoder.pending_bytes() == 0);
    CHECK_FALSE(decoder.oversized());
  }
}

TEST_CASE("a truncated frame stays pending and yields nothing") {
  FrameDecoder decoder;
  decoder.feed("{\"method\":\"io.pat.Gro");
  CHECK_FALSE(decoder.next().has_value());
  CHECK(decoder.pending_bytes() == 21);
  CHECK_FALSE(decoder.oversized());
  decoder.feed("up.List\"}");
  decoder.feed(std::string_view("\0", 1));
  auto frame = decoder.next();
  REQUIRE(frame.has_value());
  CHECK(*frame == "{\"method\":\"io.pat.Group.List\"}");
}

TEST_CASE("an empty frame is a frame (the parser rejects it, not the framer)") {
  FrameDecoder decoder;
  decoder.feed(std::string_view("\0\0", 2));
  CHECK(decoder.next() == std::string());
  CHECK(decoder.next() == std::string());
  CHECK_FALSE(decoder.next().has_value());
}

TEST_CASE("unterminated input over the cap marks the stream oversized") {
  FrameDecoder decoder(64);
  decoder.feed(std::string(64, 'x'));
  CHECK_FALSE(decoder.next().has_value());
  CHECK_FALSE(decoder.oversized());  // exactly at the cap is still allowed
  decoder.feed("x");
  CHECK_FALSE(decoder.next().has_value());
  CHECK(decoder.oversized());
  // Once lost, always lost: a later NUL does not resynchronise.
  decoder.feed(std::string_view("\0{}\0", 4));
  CHECK_FALSE(decoder.next().has_value());
  CHECK(decoder.oversized());
}

TEST_CASE("a complete frame over the cap is refused too") {
  FrameDecoder decoder(8);
  decoder.feed(encode_frame("{\"k\":\"0123456789\"}"));
  CHECK_FALSE(decoder.next().has_value());
  CHECK(decoder.oversized());
}

TEST_CASE("a frame at exactly the cap passes") {
  FrameDecoder decoder(8);
  decoder.feed(encode_frame("12345678"));
  CHECK(decoder.next() == std::string("12345678"));
}

TEST_CASE("the default cap is 1 MiB and 10 MiB of garbage trips it") {
  FrameDecoder decoder;
  std::string mib(1 << 20, 'g');
  bool tripped = false;
  for (int i = 0; i < 10 && !tripped; ++i) {
    decoder.feed(mib);
    CHECK_FALSE(decoder.next().has_value());
    tripped = decoder.oversized();
  }
  CHECK(tripped);
  CHECK(decoder.pending_bytes() <= (2u << 20));  // memory stays bounded
}

TEST_CASE("the buffer does not grow without bound on a long-lived stream") {
  FrameDecoder decoder;
  std::string frame = encode_frame(std::string(1000, 'a'));
  for (int i = 0; i < 10000; ++i) {
    decoder.feed(frame);
    REQUIRE(decoder.next().has_value());
  }
  CHECK(decoder.pending_bytes() == 0);
}
