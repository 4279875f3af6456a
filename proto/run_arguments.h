// How io.pat.Member.Run (and io.pat.Host.Spawn) carry a program's argv and
// environment. Inline in the call's parameters as a rule; when they would
// make the message too big for a frame (kMaxFrameBytes), the caller puts
// {"argv": [...], "env": [...]} as JSON in a sealed memfd, passes it as a
// fourth descriptor after stdin, stdout and stderr, and sets
// "arguments_in_fd": true. execve accepts up to a quarter of RLIMIT_STACK
// (fs/exec.c), so a frame alone could refuse what a shell runs.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace pat::proto {

// Above this many bytes of encoded call, argv and env go in a descriptor.
inline constexpr std::size_t kInlineArgumentsLimit = 512 << 10;
// The most a descriptor may hold: what a 128 MiB stack limit would let
// execve take, and a bound on what a host reads for one spawn.
inline constexpr std::size_t kMaxArgumentsBytes = 32 << 20;

struct RunArguments {
  std::vector<std::string> argv;  // not empty
  std::vector<std::string> env;   // "K=V"
};

// From {"argv": [...], "env": [...]} — the call's parameters or the fd's
// JSON. Throws ErrorReply(InvalidParameter) naming what is wrong.
RunArguments read_run_arguments(const nlohmann::json& object);

// The arguments descriptor: {"argv", "env"} as JSON in a regular file (a
// sealed memfd) of at most kMaxArgumentsBytes, read with pread from offset 0.
// Throws ErrorReply(InvalidParameter) naming "fds" and what is wrong.
RunArguments read_run_arguments_descriptor(int fd);

// Whether the call says its argv and env are in the fourth descriptor.
bool arguments_in_descriptor(const nlohmann::json& params);

// A Run or Spawn call brings stdin, stdout and stderr, plus the arguments'
// descriptor when it says so. Throws ErrorReply(InvalidParameter) naming
// "fds" when `received` is another count.
void check_run_descriptors(const nlohmann::json& params, std::size_t received);

}  // namespace pat::proto
