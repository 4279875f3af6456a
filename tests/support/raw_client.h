// Test support: a deliberately dumb client that writes raw bytes to patd's
// socket, for feeding it garbage and reading exactly what comes back.
#pragma once

#include "base/unique_fd.h"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace pat::testing {

class RawClient {
 public:
  explicit RawClient(const std::string& socket_path);
  bool connected() const { return fd_.valid(); }
  // Writes everything; false if the peer closed (EPIPE/ECONNRESET).
  bool write_all(const std::string& bytes);
  // The same, with `fds` passed (SCM_RIGHTS) beside the first byte.
  bool write_all(const std::string& bytes, const std::vector<int>& fds);
  // The next NUL-terminated frame (without the NUL), nullopt on EOF/timeout.
  std::optional<std::string> read_frame(std::chrono::milliseconds timeout = std::chrono::milliseconds(5'000));
  // True if the peer closed the connection within `timeout`.
  bool closed_by_peer(std::chrono::milliseconds timeout = std::chrono::milliseconds(5'000));

 private:
  UniqueFd fd_;
  std::string buffer_;
};

}  // namespace pat::testing
