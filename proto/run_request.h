// RunRequest: what io.pat.Member.Run asks for, and io.pat.Host.Spawn (the
// same request, which patd forwards to the group's host without its group
// fields). Parsed from JSON and written to JSON only here: patctl writes
// it, patd and the host parse it with the same code.
//
// argv and env travel inline as a rule. When they would make the message
// too big for a frame (kMaxFrameBytes), the caller puts
// {"argv": [...], "env": [...]} as JSON in a sealed memfd, passes it as a
// fourth descriptor after stdin, stdout and stderr, and sets
// "arguments_in_fd": true. execve accepts up to a quarter of RLIMIT_STACK
// (fs/exec.c), so a frame alone could refuse what a shell runs.
#pragma once

#include "proto/defaults.h"

#include <nlohmann/json.hpp>
#include <sys/resource.h>
#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
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

struct RunRequest {
  std::string program;      // absolute path (patctl resolved PATH already)
  RunArguments arguments;   // empty until loaded when arguments_in_fd
  bool arguments_in_fd = false;
  std::string cwd = kDefaultCwd;  // absolute
  mode_t umask = kDefaultUmask;
  std::vector<std::pair<int, rlimit>> rlimits;  // RLIMIT_* -> limits; proto/rlimits.h
  bool detach = false;
  // The member stops itself (SIGSTOP) just before its program's first
  // instruction; the first reply comes once it is stopped (patctl run
  // --stopped: attach a tracer, then SIGCONT it).
  bool stopped = false;
  // Where to run: Member.Run names a group or asks for a new one; a host's
  // Spawn has neither.
  std::optional<std::string> group;
  bool new_group = false;

  // Throws ErrorReply(InvalidParameter) naming the parameter that is wrong.
  static RunRequest parse(const nlohmann::json& params);
  nlohmann::json to_json() const;
  // The request a host gets: the same, without where to run.
  RunRequest for_host() const;

  // stdin, stdout and stderr, plus the arguments' descriptor when
  // arguments_in_fd. Throws ErrorReply(InvalidParameter) naming "fds" when
  // `received` is another count.
  std::size_t descriptor_count() const { return arguments_in_fd ? 4 : 3; }
  void check_descriptors(std::size_t received) const;

  // The arguments' descriptor's contents, and reading them back (throws
  // ErrorReply(InvalidParameter) naming "fds").
  std::string arguments_text() const;
  void load_arguments(std::string_view text);
};

}  // namespace pat::proto
