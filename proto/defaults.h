// What pat falls back to when a caller says nothing, defined once: patd,
// pat-host, patctl and the tracer all take their defaults from here.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <string>

namespace pat::proto {

// Where patd keeps its control socket and the groups' directories.
inline constexpr const char* kDefaultRuntimeDir = "/run/patd";
inline constexpr const char* kControlSocketName = "patd.sock";
// patctl's --socket and the pat package find patd through this variable.
inline constexpr const char* kSocketVariable = "PATD_SOCKET";
inline std::string default_control_socket() { return std::string(kDefaultRuntimeDir) + "/" + kControlSocketName; }

// A member's working directory and umask when the Run call gives none.
inline constexpr const char* kDefaultCwd = "/";
inline constexpr mode_t kDefaultUmask = 022;

// Between SIGTERM and SIGKILL when a group is destroyed with force, or its
// host is told to stop (Group.Destroy's grace_ms), and the most a caller
// may ask for.
inline constexpr std::chrono::milliseconds kDefaultGrace{5'000};
inline constexpr std::chrono::milliseconds kLongestGrace{3'600'000};

// The PATH execvp(3) assumes when the environment has none (confstr
// _CS_PATH plus /usr/local/bin, which Debian's default login PATH puts
// first): for patctl's lookup of PROG, a member's `#!/usr/bin/env NAME`,
// and the environment of a host.
inline constexpr const char* kDefaultSearchPath = "/usr/local/bin:/usr/bin:/bin";

// The most processes one Group.Attach moves: each is stopped in turn, and
// the call holds the host's loop for all of them.
inline constexpr std::size_t kMaxAttachPids = 64;

}  // namespace pat::proto
