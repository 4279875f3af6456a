// patctl: the command-line client of patd.
#include "client/commands.h"
#include "proto/defaults.h"
#include "proto/errors.h"

#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <optional>

namespace {

using namespace pat::client;

std::string default_socket() {
  const char* env = std::getenv(pat::proto::kSocketVariable);
  return env != nullptr && *env != '\0' ? env : pat::proto::default_control_socket();
}

// `patctl run [options] -- PROG ARGS...` and `patctl debug [options] PID --
// GDB-ARGS...`: CLI11 2.1 mishandles a "--" that ends a prefix-command
// subcommand's arguments, so what follows it is split off before parsing.
// `positionals` is how many plain arguments the subcommand takes before the
// tail (run: none, PROG starts the tail; debug: PID). A "--" later in the
// tail belongs to it.
struct TailedSubcommand {
  const char* name;
  std::vector<std::string> value_options;  // options that take a value
  int positionals;
};

std::optional<std::vector<std::string>> split_tail(std::vector<std::string>& args, const TailedSubcommand& subcommand) {
  auto start = std::find(args.begin(), args.end(), subcommand.name);
  if (start == args.end()) return std::nullopt;
  int positionals = 0;
  for (auto it = start + 1; it != args.end(); ++it) {
    if (*it == "--") {
      std::vector<std::string> tail(it + 1, args.end());
      args.erase(it, args.end());
      return tail;
    }
    if (it->empty() || it->front() != '-') {
      if (++positionals > subcommand.positionals) return std::nullopt;  // the tail, without a separator
      continue;
    }
    const auto& takes_value = subcommand.value_options;
    if (std::find(takes_value.begin(), takes_value.end(), *it) != takes_value.end() && it + 1 != args.end()) ++it;
  }
  return std::nullopt;
}

const TailedSubcommand kRun{"run", {"-g", "--group", "-e", "--env", "--cwd", "-o", "--output"}, 0};
const TailedSubcommand kDebug{"debug", {"--gdb", "--core"}, 1};

// A caller may start patctl with stdin, stdout or stderr closed (`cmd <&-`).
// The lowest free numbers would then go to patctl's own signal pipe and
// socket, and `run` would pass those to the member as its stdio: the member
// read patctl's signal pipe, or wrote into it and had its bytes forwarded as
// signals (a newline is 10, SIGUSR1). Each gap gets an O_PATH descriptor:
// the member's read(2) and write(2) on it fail with EBADF, as they would on
// the closed descriptor it was started with (open(2), "O_PATH").
void fill_closed_standard_fds() {
  for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    int placeholder = ::open("/dev/null", O_PATH);  // the lowest free number: `fd`
    if (placeholder >= 0 && placeholder != fd) {
      ::dup2(placeholder, fd);
      ::close(placeholder);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  fill_closed_standard_fds();  // before anything else opens a descriptor
  GlobalOptions global{default_socket(), false};
  std::vector<std::string> args(argv + 1, argv + argc);
  std::optional<std::vector<std::string>> separated_tail;
  CLI::App app{"patctl: run programs as processes that share one address space (pat)", "patctl"};
  app.set_version_flag("--version", std::string("patctl ") + PROJECT_VERSION);
  app.add_option("--socket", global.socket, "patd's control socket (env PATD_SOCKET)")->capture_default_str();
  app.require_subcommand(1);
  // --json is accepted before or after the subcommand.
  app.add_flag("--json", global.json, "Machine-readable JSON output");
  auto json_flag = [&global](CLI::App* command) {
    command->add_flag("--json", global.json, "Machine-readable JSON output");
  };
  int exit_code = pat::proto::kExitOk;

  auto* status = app.add_subcommand("status", "Show the daemon's version, uptime and group count");
  json_flag(status);
  status->callback([&] { exit_code = status_command(global); });

  auto* group = app.add_subcommand("group", "Create, list, show and destroy groups");
  group->require_subcommand(1);

  std::string name;
  bool allow_cross_mapping = false;
  auto* create = group->add_subcommand("create", "Create a group and start its host process");
  create->add_option("NAME", name, "Group name: 1-64 characters from [A-Za-z0-9_.-]")->required();
  create->add_flag("--allow-cross-mapping", allow_cross_mapping,
                   "Let members map over each other's memory (no clobbering checks)");
  json_flag(create);
  create->callback([&] { exit_code = group_create_command(global, name, allow_cross_mapping); });

  auto* list = group->add_subcommand("list", "List your groups (all groups, for root)");
  json_flag(list);
  list->callback([&] { exit_code = group_list_command(global); });

  auto* show = group->add_subcommand("show", "Show a group and its members");
  show->add_option("NAME", name, "Group name")->required();
  json_flag(show);
  show->callback([&] { exit_code = group_show_command(global, name); });

  bool force = false;
  std::optional<long> grace_ms;
  auto* destroy = group->add_subcommand("destroy", "Stop a group's host; refuses while members run");
  destroy->add_option("NAME", name, "Group name")->required();
  destroy->add_flag("--force", force, "Terminate running members: SIGTERM, grace period, SIGKILL");
  destroy->add_option("--grace-ms", grace_ms,
                      "Grace period before SIGKILL (default " + std::to_string(pat::proto::kDefaultGrace.count()) + ")")
      ->check(CLI::Range(0L, static_cast<long>(pat::proto::kLongestGrace.count())));
  json_flag(destroy);
  destroy->callback([&] { exit_code = group_destroy_command(global, name, force, grace_ms); });

  std::vector<long> attach_pids;
  auto* attach = group->add_subcommand("attach", "Move running processes into a group (all or none)");
  attach->add_option("NAME", name, "Group name")->required();
  attach->add_option("PID", attach_pids, "Processes to move: your own, running, untraced")
      ->required()
      ->check(CLI::Range(1L, 0x7fffffffL));
  json_flag(attach);
  attach->callback([&] { exit_code = group_attach_command(global, name, attach_pids); });

  TopOptions top_options;
  auto* top = app.add_subcommand("top", "Members of every group, busiest first, refreshed like top(1)");
  top->add_option("--group,-g", top_options.group, "Only this group");
  top->add_option("--interval,-n", top_options.interval, "Seconds between refreshes")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  top->add_flag("--once", top_options.once, "Print one snapshot and exit");
  json_flag(top);
  top->callback([&] { exit_code = top_command(global, top_options); });

  PsOptions ps_options;
  auto* ps = app.add_subcommand("ps", "Members with their own argv, state, owned RSS, CPU time and cwd");
  ps->add_option("--group,-g", ps_options.group, "Only this group");
  json_flag(ps);
  ps->callback([&] { exit_code = ps_command(global, ps_options); });

  DebugOptions debug_options;
  auto* debug = app.add_subcommand(
      "debug", "Attach gdb to a member, or open a member's core, with the member's program and libraries loaded");
  auto* debug_pid = debug->add_option("PID", debug_options.pid, "The member's pid")->check(CLI::PositiveNumber);
  auto* debug_core = debug->add_option("--core", debug_options.core, "A member's core file instead of a live member");
  debug_pid->excludes(debug_core);
  debug->add_option("--gdb", debug_options.gdb, "The debugger to run")->capture_default_str();
  // Everything after PID is gdb's (e.g. -batch -ex bt), "--" first if wanted.
  debug->prefix_command();
  debug->footer("GDB-ARGS after PID go to gdb; '--' may separate them.");
  debug->callback([&] {
    if (!debug_options.core && debug_options.pid == 0) throw CLI::ValidationError("debug", "PID or --core CORE is required");
    debug_options.gdb_args = separated_tail ? *separated_tail : debug->remaining();
    exit_code = debug_command(global, debug_options);
  });

  RunOptions run_options;
  EventsOptions events_options;
  auto* events = app.add_subcommand("events", "Follow group and member events as they happen");
  events->add_option("--group,-g", events_options.group, "Only this group");
  json_flag(events);
  events->callback([&] { exit_code = events_command(global, events_options); });

  auto* run = app.add_subcommand("run", "Run a program as a member of a group");
  auto* group_option = run->add_option("--group,-g", run_options.group, "The group to run in");
  auto* new_group_option =
      run->add_flag("--new-group", run_options.new_group, "Run in a fresh group, removed when the member ends");
  group_option->excludes(new_group_option);
  // One K=V per --env: a vector option would otherwise go on taking values
  // and swallow PROG (`--env K=V sh -c ...` ran "-c").
  run->add_option("--env,-e", run_options.env, "Set K=V in the member's environment (repeatable)")
      ->allow_extra_args(false);
  run->add_flag("--clear-env", run_options.clear_env, "Start from an empty environment");
  run->add_option("--cwd", run_options.cwd, "Working directory (default: the current one)");
  run->add_flag("--detach,-d", run_options.detach,
                "Print the member's pid and return at once (its stdin is /dev/null)");
  run->add_option("--output,-o", run_options.output, "Append the member's stdout and stderr to FILE");
  run->add_flag("--stopped", run_options.stopped,
                "Start the member stopped before its first instruction (attach strace -p, gdb -p or "
                "perf record -p, then kill -CONT PID)");
  json_flag(run);
  // Everything from PROG on belongs to PROG, --flags included: CLI11 hands it
  // over untouched as the subcommand's remaining arguments.
  run->prefix_command();
  run->footer("PROG [ARGS...] follow the options; '--' may separate them.");
  run->callback([&] {
    run_options.command = separated_tail ? *separated_tail : run->remaining();
    if (run_options.command.empty()) throw CLI::ValidationError("run", "PROG is required");
    if (!run_options.group && !run_options.new_group) {
      throw CLI::ValidationError("run", "one of --group NAME or --new-group is required");
    }
    exit_code = run_command(global, run_options);
  });

  // Whichever subcommand comes first on the command line owns the tail.
  auto run_at = std::find(args.begin(), args.end(), kRun.name);
  auto debug_at = std::find(args.begin(), args.end(), kDebug.name);
  separated_tail = split_tail(args, run_at <= debug_at ? kRun : kDebug);
  std::reverse(args.begin(), args.end());  // CLI11 parses a vector from its back
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : pat::proto::kExitPatError;
  }
  return exit_code;
}
