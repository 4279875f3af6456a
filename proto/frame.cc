#include "proto/frame.h"

#include <algorithm>
#include <cstring>

namespace pat::proto {

void FrameDecoder::feed(std::string_view bytes) {
  if (oversized_) return;  // the stream is lost; the caller is closing it
  // Drop what was handed out already before growing, so a long-lived
  // connection's buffer stays proportional to what is in flight.
  if (consumed_ > 0 && consumed_ >= buffer_.size() / 2) {
    buffer_.erase(0, consumed_);
    scanned_ -= consumed_;
    consumed_ = 0;
  }
  buffer_.append(bytes);
}

std::optional<std::string> FrameDecoder::next() {
  if (oversized_) return std::nullopt;
  std::size_t from = std::max(scanned_, consumed_);
  const void* nul = std::memchr(buffer_.data() + from, '\0', buffer_.size() - from);
  if (nul == nullptr) {
    scanned_ = buffer_.size();
    if (pending_bytes() > max_frame_) oversized_ = true;
    return std::nullopt;
  }
  std::size_t end = static_cast<const char*>(nul) - buffer_.data();
  if (end - consumed_ > max_frame_) {
    oversized_ = true;
    return std::nullopt;
  }
  std::string frame = buffer_.substr(consumed_, end - consumed_);
  consumed_ = end + 1;
  scanned_ = consumed_;
  return frame;
}

std::string encode_frame(std::string_view json_text) {
  std::string out;
  out.reserve(json_text.size() + 1);
  out.append(json_text);
  out.push_back('\0');
  return out;
}

}  // namespace pat::proto
