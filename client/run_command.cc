// `patctl run`: launches a program as a member of a group and behaves, for the
// shell that started it, like the program itself: its stdio are the member's,
// signals sent to patctl reach the member, and patctl's exit status is the
// member's (128+N when signal N killed it).
#include "base/result.h"
#include "base/unique_fd.h"
#include "client/commands.h"
#include "client/daemon_connection.h"
#include "client/program_lookup.h"
#include "client/terminal_output.h"
#include "proto/errors.h"
#include "proto/interface.h"
#include "proto/message.h"
#include "proto/rlimits.h"
#include "proto/exit_status.h"
#include "proto/run_request.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>

extern char** environ;

namespace pat::client {

using nlohmann::json;

namespace {

// Signals a terminal user or a supervisor sends to "the program": forwarded to
// the member. SIGTSTP and SIGCONT are not: job control stops patctl itself.
constexpr std::array kForwardedSignals = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

int signal_pipe_write = -1;

void on_forwarded_signal(int signal) {
  int saved = errno;
  unsigned char byte = static_cast<unsigned char>(signal);
  (void)!::write(signal_pipe_write, &byte, 1);
  errno = saved;
}

// A self-pipe: the handler only writes the signal number; the main loop reads
// it between waits and forwards it over a second connection.
UniqueFd install_signal_forwarding() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return UniqueFd();
  signal_pipe_write = fds[1];
  struct sigaction action {};
  action.sa_handler = on_forwarded_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (int signal : kForwardedSignals) ::sigaction(signal, &action, nullptr);
  return UniqueFd(fds[0]);
}

// The caller's environment (unless --clear-env) with --env applied, plus
// PATD_SOCKET naming the daemon patctl used, unless set already: code inside
// a member (pat.Executor starting workers) finds patd through it.
std::vector<std::string> member_environment(const RunOptions& options, const std::string& socket) {
  std::map<std::string, std::string> env;
  std::vector<std::string> order;
  auto put = [&](const std::string& entry) {
    auto eq = entry.find('=');
    std::string key = entry.substr(0, eq);
    if (!env.contains(key)) order.push_back(key);
    env[key] = eq == std::string::npos ? std::string() : entry.substr(eq + 1);
  };
  if (!options.clear_env) {
    for (char** entry = environ; *entry != nullptr; ++entry) put(*entry);
  }
  for (const auto& entry : options.env) put(entry);
  if (!env.contains(proto::kSocketVariable)) {
    put(std::string(proto::kSocketVariable) + "=" + std::filesystem::absolute(socket).string());
  }
  std::vector<std::string> out;
  for (const auto& key : order) out.push_back(key + "=" + env[key]);
  return out;
}

mode_t current_umask() {
  mode_t mask = ::umask(022);
  ::umask(mask);
  return mask;
}

// What a shell prints when its child dies of a signal, with the core's path:
// "segmentation fault, core dumped to /home/u/core". Nothing for SIGINT and
// SIGPIPE, which a shell does not report either.
void report_signal_death(const std::string& program, long pid, const proto::ExitStatus& status) {
  if (!status.is_signal() || status.signal() == SIGINT || status.signal() == SIGPIPE) return;
  const char* name = ::strsignal(status.signal());
  std::string what = name != nullptr ? name : "signal " + std::to_string(status.signal());
  if (!what.empty()) what[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(what[0])));
  if (const auto& core = status.core(); core && core->file) {
    what += ", core dumped to " + printable(*core->file);
    if (core->truncated) what += " (cut at the core size limit, ulimit -c)";
  } else if (core) {
    what += core->error ? ", core dumped but not completed: " + printable(*core->error) : " (core dumped)";
  }
  std::fprintf(stderr, "patctl: %s (pid %ld): %s\n", printable(program).c_str(), pid, what.c_str());
}

// As a shell would: the member's code, or 128 + the signal that killed it
// (said on stderr, as a shell says it, unless the reply is printed as JSON).
int exit_status_of(const json& ended, const std::string& program, long pid, bool quiet) {
  auto status = proto::ExitStatus::from_json(ended);
  if (!status) {
    std::fprintf(stderr, "patctl: the final reply says neither exit_code nor signal\n");
    return proto::kExitPatError;
  }
  if (!quiet) report_signal_death(program, pid, *status);
  return status->shell_status();
}

void forward_signal(const GlobalOptions& global, const std::string& group, long pid, int signal) {
  try {
    auto reply = call_once(global.socket, proto::Call{std::string(proto::method::kMemberSignal),
                                                      {{"group", group}, {"pid", pid}, {"signal", signal}}});
    // A member that ended meanwhile is not an error worth a message.
    if (reply.error && !reply.error->is(proto::ErrorCode::MemberNotFound)) {
      std::fprintf(stderr, "patctl: forwarding signal %d: %s\n", signal, printable(reply.error->message()).c_str());
    }
  } catch (const ConnectionError& e) {
    std::fprintf(stderr, "patctl: forwarding signal %d: %s\n", signal, e.what());
  }
}

// The member's stdin, stdout and stderr: patctl's own, except that a detached
// member reads /dev/null (nobody waits on the terminal for it) and --output
// sends both output streams to a file (appended). Without --output, a
// detached member keeps patctl's stdout: `pid=$(patctl run -d ...)` waits
// until the member closes it — hence --output.
struct MemberStdio {
  UniqueFd input, output;
  std::vector<int> numbers() const {
    int in = input ? input.get() : STDIN_FILENO;
    return {in, output ? output.get() : STDOUT_FILENO, output ? output.get() : STDERR_FILENO};
  }
};

Result<MemberStdio> member_stdio(const RunOptions& options) {
  MemberStdio stdio;
  if (options.detach) {
    stdio.input = UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!stdio.input) return last_error("open /dev/null");
  }
  if (options.output) {
    stdio.output = UniqueFd(::open(options.output->c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666));
    if (!stdio.output) return last_error("--output " + *options.output);
  }
  return stdio;
}

// Writes the request's argv and env into a sealed memfd, and marks the
// request as carrying them there.
Result<UniqueFd> move_arguments_to_memfd(proto::RunRequest& request) {
  std::string text = request.arguments_text();
  if (text.size() > proto::kMaxArgumentsBytes) {
    return SysError{E2BIG, std::to_string(text.size()) + " bytes, at most " +
                               std::to_string(proto::kMaxArgumentsBytes) + " can be passed"};
  }
  UniqueFd fd(::memfd_create("pat-run-arguments", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) return last_error("memfd_create");
  for (std::size_t done = 0; done < text.size();) {
    ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
    if (n < 0) return last_error("writing the argument list");
    done += static_cast<std::size_t>(n);
  }
  // Sealed: nobody can change what patd forwards and the host reads.
  if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) != 0) {
    return last_error("sealing the argument list");
  }
  request.arguments_in_fd = true;
  return fd;
}

}  // namespace

int run_command(const GlobalOptions& global, const RunOptions& options) {
  const std::string& name = options.command.front();
  const char* path_variable = std::getenv("PATH");
  auto found = look_up_program(name, path_variable ? path_variable : "");
  if (std::holds_alternative<ProgramNotFound>(found)) {
    std::fprintf(stderr, "patctl: %s: command not found\n", printable(name).c_str());
    return proto::kExitNotFound;
  }
  if (auto* denied = std::get_if<ProgramNotPermitted>(&found)) {
    std::fprintf(stderr, "patctl: %s: permission denied\n", printable(denied->path).c_str());
    return proto::kExitCannotExecute;
  }
  proto::RunRequest request;
  request.program = std::get<std::string>(found);
  request.arguments = {options.command, member_environment(options, global.socket)};
  request.cwd = options.cwd ? std::filesystem::absolute(*options.cwd).lexically_normal().string()
                            : std::filesystem::current_path().string();
  request.umask = current_umask();
  request.rlimits = proto::current_rlimits();
  request.detach = options.detach;
  request.stopped = options.stopped;
  if (options.new_group) {
    request.new_group = true;
  } else {
    request.group = *options.group;
  }

  proto::Call call{std::string(proto::method::kMemberRun), request.to_json(), !options.detach};
  // Too big for one message: argv and env travel in a sealed memfd instead
  // (proto/run_request.h), as far as execve itself would take them.
  UniqueFd arguments;
  if (proto::encode(call).size() > proto::kInlineArgumentsLimit) {
    auto moved = move_arguments_to_memfd(request);
    if (!moved) {
      std::fprintf(stderr, "patctl: %s: argument list too long: %s\n", printable(name).c_str(),
                   moved.error().message().c_str());
      return proto::kExitCannotExecute;
    }
    arguments = std::move(moved.value());
    call.parameters = request.to_json();
  }

  auto stdio = member_stdio(options);
  if (!stdio) {
    std::fprintf(stderr, "patctl: %s\n", stdio.error().message().c_str());
    return proto::kExitPatError;
  }
  UniqueFd signals = install_signal_forwarding();
  try {
    auto connection = DaemonConnection::open(global.socket);
    std::vector<int> fds = stdio->numbers();
    if (arguments) fds.push_back(arguments.get());
    connection.send(call, fds);
    auto started = connection.receive(kReplyTimeout);
    if (started->error) {
      return report_refusal(started->error->name, started->error->message(), started->error->exit_code());
    }
    long pid = started->parameters.value("pid", 0L);
    std::string group = started->parameters.value("group", std::string());
    if (options.detach || !started->continues) {
      if (global.json) {
        std::cout << started->parameters.dump() << '\n';
      } else {
        std::cout << pid << '\n';
      }
      return proto::kExitOk;
    }
    if (options.stopped) {
      std::fprintf(stderr,
                   "patctl: member %ld is stopped before its first instruction: attach (strace -p %ld, "
                   "gdb -p %ld, perf record -p %ld), then kill -CONT %ld\n",
                   pid, pid, pid, pid, pid);
    }
    for (;;) {
      auto reply = connection.receive(std::nullopt, signals.get());
      if (!reply) {
        unsigned char signal;
        while (::read(signals.get(), &signal, 1) == 1) forward_signal(global, group, pid, signal);
        continue;
      }
      if (reply->error) return report_refusal(reply->error->name, reply->error->message(), reply->error->exit_code());
      if (reply->continues) continue;
      if (global.json) std::cout << reply->parameters.dump() << '\n';
      return exit_status_of(reply->parameters, name, pid, global.json);
    }
  } catch (const ConnectionError& e) {
    std::fprintf(stderr, "patctl: %s\n", e.what());
    return proto::kExitPatError;
  }
}

}  // namespace pat::client
