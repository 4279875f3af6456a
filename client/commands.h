// patctl's subcommands. Each returns patctl's exit code (README "Exit codes"):
// 0 success, 1 the daemon refused, 125 usage error or daemon unreachable,
// and for `run` the member's own status, 126 or 127.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace pat::client {

struct GlobalOptions {
  std::string socket;  // patd's control socket
  bool json = false;   // machine-readable output
};

int status_command(const GlobalOptions& global);
int group_create_command(const GlobalOptions& global, const std::string& name, bool allow_cross_mapping);
int group_list_command(const GlobalOptions& global);
int group_show_command(const GlobalOptions& global, const std::string& name);
int group_destroy_command(const GlobalOptions& global, const std::string& name, bool force,
                          std::optional<long> grace_ms);
// 0 attached, 1 refused (NotAttachable, AddressConflict, PermissionDenied...),
// 125 patctl's or the daemon's own trouble. Several PIDs: all or none.
int group_attach_command(const GlobalOptions& global, const std::string& name, const std::vector<long>& pids);

struct RunOptions {
  std::optional<std::string> group;  // --group
  bool new_group = false;            // --new-group
  std::vector<std::string> env;      // --env K=V
  bool clear_env = false;
  std::optional<std::string> cwd;
  bool detach = false;
  std::optional<std::string> output;  // --output FILE: the member's stdout and stderr
  bool stopped = false;               // --stopped: SIGSTOP before the program's first instruction
  std::vector<std::string> command;  // PROG ARGS...
};
int run_command(const GlobalOptions& global, const RunOptions& options);

struct TopOptions {
  std::optional<std::string> group;  // only this group
  double interval = 2.0;             // seconds between refreshes
  bool once = false;                 // one snapshot (CPU% over half a second), then exit
};
int top_command(const GlobalOptions& global, const TopOptions& options);

struct EventsOptions {
  std::optional<std::string> group;  // only this group
};
// Follows the event stream until interrupted; 125 once patd goes away.
int events_command(const GlobalOptions& global, const EventsOptions& options);

struct DebugOptions {
  long pid = 0;                       // a live member, or
  std::optional<std::string> core;    // --core CORE: a member's core file
  std::string gdb = "gdb";            // --gdb PROGRAM
  std::vector<std::string> gdb_args;  // after PID (and an optional "--"): gdb's own
};
// Replaces patctl with gdb attached to member `pid`, or opening `core` with
// its program; returns only on failure.
int debug_command(const GlobalOptions& global, const DebugOptions& options);

struct PsOptions {
  std::optional<std::string> group;  // only this group
};
int ps_command(const GlobalOptions& global, const PsOptions& options);

// Shared by the commands: one call to patd. The reply's parameters, or the
// exit code after the error went to stderr.
struct CallOutcome {
  nlohmann::json parameters;
  int exit_code = 0;
  bool ok() const { return exit_code == 0; }
};
CallOutcome call_daemon(const GlobalOptions& global, std::string_view method, nlohmann::json parameters);

// `only`, or every group the caller may see, as Show returns them (with usage
// figures). nullopt after a refusal, whose exit code is left in exit_code; a
// group that vanished between list and show is left out.
std::optional<std::vector<nlohmann::json>> shown_groups(const GlobalOptions& global,
                                                        const std::optional<std::string>& only, int& exit_code);

// "patctl: <message> (<error name>)" on stderr; returns the error's exit code.
int report_refusal(const std::string& error_name, const std::string& message, int exit_code);

}  // namespace pat::client
