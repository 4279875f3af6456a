// Framing of the control protocol: every message is one JSON text followed by
// a NUL byte (varlink's framing). Pure byte handling, no I/O.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace pat::proto {

// Largest message either side accepts. A peer that sends more without a NUL
// is broken or hostile; only its own connection is closed.
inline constexpr std::size_t kMaxFrameBytes = 1 << 20;

// Splits a byte stream into frames. Feed bytes as they arrive, then take
// frames until next() returns nothing.
class FrameDecoder {
 public:
  explicit FrameDecoder(std::size_t max_frame = kMaxFrameBytes) : max_frame_(max_frame) {}

  void feed(std::string_view bytes);

  // The next complete frame, without its NUL.
  std::optional<std::string> next();

  // True once the buffered, unterminated tail exceeds the cap. The stream can
  // never resynchronise after that: the caller closes the connection.
  bool oversized() const { return oversized_; }

  // Bytes received but not yet part of a complete frame.
  std::size_t pending_bytes() const { return buffer_.size() - consumed_; }

 private:
  std::size_t max_frame_;
  std::string buffer_;
  std::size_t consumed_ = 0;  // prefix of buffer_ already returned
  std::size_t scanned_ = 0;   // prefix of buffer_ known to hold no NUL
  bool oversized_ = false;
};

// Appends the terminating NUL.
std::string encode_frame(std::string_view json_text);

}  // namespace pat::proto
