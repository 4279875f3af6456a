// `patctl debug PID [-- GDB-ARGS]`: gdb attached to a member, seeing the
// member's program and libraries rather than pat-host's. `patctl debug
// --core CORE`: gdb on a member's core with the program the core names
// (pat-python's may be a fixed-address build the user never typed).
//
// gdb reads a process's program and link map through /proc/PID/exe and
// /proc/PID/auxv, which are the group's (pat-host's). pat-host's gdb
// extension (tracer/gdb/pat-host-gdb.py, installed beside pat-host) reads
// the host's member table and loads the member's program at its load bias.
// Sourced with -iex, it is in place before gdb attaches, so it works in
// batch mode too (`patctl debug PID -- -batch -ex bt`). docs/debugging.md.
#include "base/self_location.h"
#include "client/commands.h"
#include "client/terminal_output.h"
#include "proto/errors.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace pat::client {

using nlohmann::json;

namespace {

// The group `pid` is a member of, among those the caller may see.
std::optional<std::string> group_of(const std::vector<json>& groups, long pid) {
  for (const auto& group : groups) {
    for (const auto& member : group.value("members", json::array())) {
      if (member.value("pid", 0L) == pid) return group.value("name", "");
    }
  }
  return std::nullopt;
}

}  // namespace

int debug_command(const GlobalOptions& global, const DebugOptions& options) {
  if (!options.core) {
    int exit_code = 0;
    auto groups = shown_groups(global, std::nullopt, exit_code);
    if (!groups) return exit_code;
    if (!group_of(*groups, options.pid)) {
      std::fprintf(stderr, "patctl: process %ld is not a member of any group you can see (patctl ps lists them)\n",
                   options.pid);
      return proto::kExitRefused;
    }
  } else if (::access(options.core->c_str(), R_OK) != 0) {
    std::fprintf(stderr, "patctl: %s: %s\n", printable(*options.core).c_str(), std::strerror(errno));
    return proto::kExitRefused;
  }
  std::string script = libexec_path("pat-host-gdb.py").string();
  if (::access(script.c_str(), R_OK) != 0) {
    std::fprintf(stderr, "patctl: %s: %s\n", printable(script).c_str(), std::strerror(errno));
    return proto::kExitPatError;
  }
  std::vector<std::string> args = {options.gdb, "-q", "-iex", "source " + script};
  if (options.core) {
    args.insert(args.end(), {"-ex", "pat-core " + *options.core});
  } else {
    args.insert(args.end(), {"-p", std::to_string(options.pid)});
  }
  args.insert(args.end(), options.gdb_args.begin(), options.gdb_args.end());
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  ::execvp(argv[0], argv.data());
  int error = errno;
  std::fprintf(stderr, "patctl: %s: %s%s\n", printable(options.gdb).c_str(), std::strerror(error),
               error == ENOENT ? " (install gdb)" : "");
  return error == ENOENT ? proto::kExitNotFound : proto::kExitCannotExecute;
}

}  // namespace pat::client
