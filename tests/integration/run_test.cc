// Launching members through the real patd, pat-host and patctl: exit statuses,
// stdio, environment and the rest of what a shell hands a child, signals sent
// to patctl, --detach and --new-group, real programs (sh, coreutils,
// pat-python with the standard library and numpy), the shared address space
// itself (kcmp), and programs that must be refused or that crash.
#include "tests/support/kcmp.h"
#include "tests/support/patd_instance.h"
#include "tests/support/scratch_dir.h"

#include <doctest/doctest.h>
#include <linux/kcmp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <future>
#include <set>
#include <sstream>

using namespace pat::testing;
using nlohmann::json;
using std::chrono::milliseconds;

extern char** environ;

namespace {

constexpr milliseconds kPatctlTimeout{30'000};

std::string pat_python() { return bin_dir() + "/pat-python"; }
std::string member_program(const std::string& name) { return std::string(RUN_TEST_PROGRAMS_DIR) + "/" + name; }
std::string member_script(const std::string& name) { return std::string(RUN_TEST_SCRIPTS_DIR) + "/" + name; }

// patctl in the background, its stdout and stderr in files: for sending it
// signals, and for --detach, whose member inherits patctl's stdout and would
// hold a pipe open that run() waits on.
struct BackgroundPatctl {
  BackgroundPatctl(const PatdInstance& patd, const ScratchDir& scratch, const std::vector<std::string>& args)
      : out_path(scratch.path("patctl-" + std::to_string(++counter) + ".out")),
        err_path(out_path.substr(0, out_path.size() - 4) + ".err"),
        process(patctl_argv(patd, args), out_path, err_path) {}
  std::string out() const { return read_file(out_path); }
  std::string err() const { return read_file(err_path); }

  static inline int counter = 0;
  std::string out_path;
  std::string err_path;
  Background process;
};

// The pid of the one member running `argv`, once it shows up.
pid_t wait_for_member(const PatdInstance& patd, const std::string& group, const std::vector<std::string>& argv) {
  pid_t found = 0;
  bool shown = eventually([&] {
    json members = show(patd, group)["members"];
    for (const auto& member : members) {
      if (member["argv"] == argv) found = member["pid"].get<pid_t>();
    }
    return found != 0;
  });
  REQUIRE(shown);
  return found;
}


std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// key=value fields of one log line ("<time> <level> <component>: k=v k=v").
std::map<std::string, std::string> log_fields(const std::string& line) {
  std::map<std::string, std::string> fields;
  std::istringstream in(line);
  for (std::string word; in >> word;) {
    auto eq = word.find('=');
    if (eq != std::string::npos) fields[word.substr(0, eq)] = word.substr(eq + 1);
  }
  return fields;
}

// A line of patd's own (not a host's) with these fields.
bool patd_logged(const PatdInstance& patd, const std::map<std::string, std::string>& wanted) {
  for (const auto& line : lines_of(patd.log())) {
    if (line.find(" patd: ") == std::string::npos) continue;
    auto fields = log_fields(line);
    bool all = true;
    for (const auto& [key, value] : wanted) all = all && fields.contains(key) && fields[key] == value;
    if (all) return true;
  }
  return false;
}

// True if no line of a member's `env` output is an entry of the caller's
// environment (this process's plus `options`' overrides). pat's own
// additions (PAT_GROUP, malloc defaults) are not in it.
bool nothing_inherited(const std::vector<std::string>& lines, const RunOptions& options) {
  std::set<std::string> caller;
  for (char** entry = environ; *entry != nullptr; ++entry) caller.insert(*entry);
  for (const auto& [key, value] : options.env_overrides) caller.insert(key + "=" + value);
  for (const auto& line : lines) {
    if (caller.contains(line)) {
      MESSAGE("inherited despite --clear-env: ", line);
      return false;
    }
  }
  return true;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

TEST_CASE("a member's exit status is patctl's: true, false, sh -c 'exit 7'") {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "g"}).exit_code == 0);
  CHECK(patd.patctl({"run", "--group", "g", "/bin/true"}).exit_code == 0);
  CHECK(patd.patctl({"run", "--group", "g", "/bin/false"}).exit_code == 1);
  auto seven = patd.patctl({"run", "--group", "g", "sh", "-c", "exit 7"});
  CHECK(seven.exit_code == 7);
  CHECK(seven.out.empty());
  CHECK(seven.err.empty());
  // The host saw the same statuses.
  auto exits = show(patd, "g")["recent_exits"];
  REQUIRE(exits.size() == 3);
  CHECK(exits[0]["exit_code"] == 7);  // newest first
  CHECK(exits[1]["exit_code"] == 1);
  CHECK(exits[2]["exit_code"] == 0);
}

TEST_CASE("a program that is not found exits 127 with a one-line reason") {
  PatdInstance patd;
  ScratchDir scratch;
  REQUIRE(patd.patctl({"group", "create", "g"}).exit_code == 0);
  // Searched in PATH by patctl, and given as a path (checked by the host).
  for (const std::string& program : {std::string("no-such-program-pat"), scratch.path("missing")}) {
    CAPTURE(program);
    auto result = patd.patctl({"run", "--group", "g", program});
    CHECK(result.exit_code == 127);
    CHECK(result.out.empty());
    REQUIRE(lines_of(result.err).size() == 1);
    CHECK(result.err.find(program) != std::string::npos);
  }
  // A #! interpreter that is missing counts as the program missing, as in a shell.
  auto script = scratch.write("orphan.sh", "#!/no/such/interpreter\n", kExecutable);
  auto orphan = patd.patctl({"run", "--group", "g", script});
  CHECK(orphan.exit_code == 127);
  CHECK(orphan.err.find("/no/such/interpreter") != std::string::npos);
  CHECK(patd.patctl({"run", "--group", "g", "/bin/true"}).exit_code == 0);
}

TEST_CASE("a file that may not be executed exits 126: no x bit, a directory") {
  PatdInstance patd;
  ScratchDir scratch;
  REQUIRE(patd.patctl({"group", "create", "g"}).exit_code == 0);
  auto plain = scratch.write("data.txt", "#!/bin/sh\necho should not run\n", kReadWrite);
  for (const std::string& program : {plain, scratch.path()}) {
    CAPTURE(program);
    auto result = patd.patctl({"run", "--group", "g", program});
    CHECK(result.exit_code == 126);
    CHECK(result.out.empty());
    CHECK(lines_of(result.err).size() == 1);
    CHECK(result.err.find(program) != std::string::npos);
  }
  // Found through PATH, but not executable.
  auto in_path = patd.patctl({"run", "--group", "g", "data.txt"},
                             RunOptions{.env_overrides = {{"PATH", scratch.path()}}});
  CHECK(in_path.exit_code == 126);
  CHECK(in_path.err.find("data.txt") != std::string::npos);
}

TEST_CASE("an argument list that execve accepts runs as a member too") {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "g"}).exit_code == 0);
  // About 0.75 MB of arguments: within execve's limit (a quarter of
  // RLIMIT_STACK, 2 MiB by default; what xargs sizes its command lines by),
  // but over 1 MiB once encoded as JSON strings in a Run call.
  std::vector<std::string> argv = {"/bin/echo"};
  for (int i = 0; i < 130'000; ++i) argv.push_back(std::to_string(i));
  auto native = run(argv);
  REQUIRE(native.exit_code == 0);
  std::vector<std::string> args = {"run", "--group", "g", "--"};
  args.insert(args.end(), argv.begin(), argv.end());
  auto member = patd.patctl(args);
  INFO("stderr: ", member.err);
  CHECK(member.exit_code == 0);
  bool same_output = member.out == native.out;  // not CHECKed directly: 0.75 MB in a failure message
  CHECK(same_output);
  // If it is refused, then in one line, never as a bare transport error.
  CHECK(lines_of(member.err).size() <= 1);
  CHECK(member.err.find("Connection reset") == std::string::npos);
}

TEST_CASE("echo writes to patctl's stdout; cat reads patctl's stdin") {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "g"}).exit_code == 0);
  auto echoed = patd.patctl({"run", "--group", "g", "echo", "hello", "from a member"});
  CHECK(echoed.exit_code == 0);
  CHECK(echoed.out == "hello from a member\n");

  // More than a pipe buffer, so the member really streams it.
  std::string input;
  for (int i = 0; i < 20'000; ++i) input += "line " + std::to_string(i) + "\n";
  auto catted = patd.patctl({"run", "--group", "g", "cat"}, RunOptions{.stdin_data = input});
  CHECK(catted.exit_code == 0);
  CHECK(catted.out == input);

  auto to_stderr = patd.patctl({"run", "--group", "g", "sh", "-c", "echo oops >&2; exit 3"});
  CHECK(to_stderr.exit_code == 3);
  CHECK(to_stderr.err == "oops\n");
  CHECK(to_stderr.out.empty());
}

TEST_CASE("stdio that patctl was started without stay closed for the member") {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "g"}).exit_code == 0);
  // As `cat <&-` in a shell: reading fails with EBADF, not EOF or EAGAIN.
  auto no_stdin = patctl_after(patd, "exec <&-", {"run", "--group", "g", "cat"});
  CHECK(no_stdin.exit_code == 1);
  CHECK(no_stdin.err.find("Bad file descriptor") != std::string::npos);
  // Whatever the member writes to a closed stdout goes nowhere, and patctl
  // must not take it for anything (a newline is byte 10, SIGUSR1's number).
  auto no_stdin_stdout = patctl_after(patd, "exec <&- >&-",
                                      {"run", "--group", "g", "sh", "-c", "echo hello; sleep 0.2; echo survived >&2"});
  CHECK(no_stdin_stdout.exit_code == 0);
  CHECK(no_stdin_stdout.err.find("survived") != std::string::npos);
  CHECK(no_stdin_stdout.err.find("forwarding signal") == std::string::npos);
}

TEST_CASE("the environment: inherited from patctl, --env added, --clear-env") {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "g"}).exit_code == 0);
  RunOptions inherited{.env_overrides = {{"PAT_TEST_INHERITED", "from the caller"}}};

  auto plain = patd.patctl({"run", "--group", "g", "/usr/bin/env"}, inherited);
  REQUIRE(plain.exit_code == 0);
  auto plain_lines = lines_of(plain.out);
  auto has = [](const std::vector<std::string>& lines, const std::string& line) {
    return std::find(lines.begin(), lines.end(), line) != lines.end();
  };
  CHECK(has(plain_lines, "PAT_TEST_INHERITED=from the caller"));
  CHECK(has(plain_lines, "PAT_GROUP=g"));

  auto added = patd.patctl({"run", "--group", "g", "--env", "K=V", "-e", "PAT_TEST_INHERITED=replaced", "--",
                            "/usr/bin/env"},
                           inherited);
  REQUIRE(added.exit_code == 0);
  auto added_lines = lines_of(added.out);
  CHECK(has(added_lines, "K=V"));
  CHECK(has(added_lines, "PAT_TEST_INHERITED=replaced"));
  CHECK_FALSE(has(added_lines, "PAT_TEST_INHERITED=from the caller"));

  auto cleared = patd.patctl({"run", "--group", "g", "--clear-env", "--env", "ONLY=this", "--", "/usr/bin/env"},
                             inherited);
  REQUIRE(cleared.exit_code == 0);
  auto cleared_lines = lines_of(cleared.out);
  CHECK(has(cleared_lines, "ONLY=this"));
  CHECK(has(cleared_lines, "PAT_GROUP=g"));
  CHECK(nothing_inherited(cleared_lines, inherited));
}

TEST_CASE("--env K=V takes one value: PROG may follow without '--'") {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "g"}).exit_code == 0);
  auto one = patd.patctl({"run", "--group", "g", "--env", "K=V", "sh", "-c", "echo \"$K\""});
  INFO("stderr: ", one.err);
  CHECK(one.exit_code == 0);
  CHECK(one.out == "V\n");
  auto two = patd.patctl({"run", "-g", "g", "-e", "A=1", "-e", "B=2", "--clear-env", "/usr/bin/env"});
  INFO("stderr: ", two.err);
  CHECK(two.exit_code == 0);
  auto lines = lines_of(two.out);
  CHECK(std::find(lines.begin(), lines.end(), "A=1") != lines.end());
  CHECK(std::find(lines.begin(), lines.end(), "B=2") != lines.end());
  CHECK(nothing_inherited(lines, {}));
}

TEST_CASE("the working directory: patctl's own, or --cwd") {
  PatdInstance patd;
  ScratchDir scratch;
  REQUIRE(patd.patctl({"group", "create", "g"}).exit_code == 0);
  auto inherited = patctl_after(patd, "cd " + scratch.path(), {"run", "--group", "g", "/bin/pwd"});
  CHECK(inherited.exit_code == 0);
  CHECK(inherited.out == scratch.path() + "\n");

  auto given = patctl_after(patd, "cd " + scratch.path(), {"run", "--group", "g", "--cwd", "/usr/share", "/bin/pwd"});
  CHECK(given.exit_code == 0);
  CHECK(given.out == "/usr/share\n");

  // Relative to patctl's directory, as a shell would take it.
  std::filesystem::create_directory(scratch.path("sub"));
  auto relative = patctl_after(patd, "cd " + scratch.path(), {"run", "--group", "g", "--cwd", "sub", "/bin/pwd"});
  CHECK(relative.out == scratch.path("sub") + "\n");
}

TEST_CASE("a --cwd the group owner may not enter is refused before anything is launched: InvalidParameter, exit 1") {
  PatdInstance patd;
  uid_t uid = ensure_test_user("pat-test");
  REQUIRE(patd.patctl_as("pat-test", {"group", "create", "theirs"}).exit_code == 0);
  // The owner's own directory, mode 0600: open(O_PATH | O_DIRECTORY) works
  // on it, entering it does not (no search permission).
  char dir_template[] = "/tmp/pat-cwd-XXXXXX";
  REQUIRE(::mkdtemp(dir_template) != nullptr);
  std::string dir = dir_template;
  REQUIRE(::chown(dir.c_str(), uid, static_cast<gid_t>(-1)) == 0);
  REQUIRE(::chmod(dir.c_str(), 0600) == 0);

  auto refused = patd.patctl_as("pat-test", {"run", "--group", "theirs", "--cwd", dir, "/bin/true"});
  CHECK(refused.exit_code == 1);
  CHECK(refused.err == "patctl: working directory " + dir + ": Permission denied (org.varlink.service.InvalidParameter)\n");
  auto group = patd.patctl_json({"group", "show", "theirs"});
  CHECK(group["members"].empty());
  CHECK(group["recent_exits"].empty());  // nothing was started

  // The same directory, once the owner may enter it.
  REQUIRE(::chmod(dir.c_str(), 0700) == 0);
  auto entered = patd.patctl_as("pat-test", {"run", "--group", "theirs", "--cwd", dir, "/bin/pwd"});
  CHECK(entered.exit_code == 0);
  CHECK(entered.out == dir + "\n");
  ::rmdir(dir.c_str());
  CHECK(patd.patctl({"group", "destroy", "theirs"}).exit_code == 0);
}

TEST_CASE("umask and rlimits are inherited from patctl") {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "g"}).exit_code == 0);
  auto result = patctl_after(patd, "umask 0027 && ulimit -n 77 && ulimit -s 4096",
                             {"run", "--group", "g", "sh", "-c", "umask; ulimit -n; ulimit -s"});
  INFO("stderr: ", result.err);
  CHECK(result.exit_code == 0);
  CHECK(result.out == "0027\n77\n4096\n");
  // And not stuck at those values: a second caller's own limits apply.
  auto other = patctl_after(patd, "umask 0002 && ulimit -n 99", {"run", "--group", "g", "sh", "-c", "umask; ulimit -n"});
  CHECK(other.out == "0002\n99\n");
}

TEST_CASE("SIGINT to patctl ends the member: exit 130 within a second") {
  PatdInstance patd;
  ScratchDir scratch;
  REQUIRE(patd.patctl({"group", "create", "g"}).exit_code == 0);
  BackgroundPatctl patctl(patd, scratch, {"run", "--group", "g", "sleep", "100"});
  pid_t member = wait_for_member(patd, "g", {"sleep", "100"});
  auto sent = std::chrono::steady_clock::now();
  patctl.process.signal(SIGINT);
  auto status = patctl.process.wait(milliseconds(10'000));
  double took = seconds_since(sent);
  INFO("patctl stderr: ", patctl.err());
  CHECK(status == 130);
  CHECK(took < 1.0);
  CHECK_FALSE(process_alive(member));
  auto exit = recent_exit_of(patd, "g", member);
  REQUIRE(exit.has_value());
  CHECK((*exit)["signal"] == SIGINT);
}

TEST_CASE("SIGTERM to patctl ends the member: exit 143") {
  PatdInstance patd;
  ScratchDir scratch;
  REQUIRE(patd.patctl({"group", "create", "g"}).exit_code == 0);
  BackgroundPatctl patctl(patd, scratch, {"run", "--group", "g", "sleep", "100"});
  pid_t member = wait_for_member(patd, "g", {"sleep", "100"});
  patctl.process.signal(SIGTERM);
  CHECK(patctl.process.wait(milliseconds(10'000)) == 143);
  CHECK_FALSE(process_alive(member));
}

TEST_CASE("a member whose patctl is killed with SIGKILL gets SIGHUP") {
  PatdInstance patd;
  ScratchDir scratch;
  REQUIRE(patd.patctl({"group", "create", "g"}).exit_code == 0);
  BackgroundPatctl patctl(patd, scratch, {"run", "--group", "g", "sleep", "100"});
  pid_t member = wait_for_member(patd, "g", {"sleep", "100"});
  REQUIRE(process_alive(member));
  patctl.process.signal(SIGKILL);
  CHECK(patctl.process.wait(milliseconds(10'000)) == 128 + SIGKILL);
  CHECK(eventually([&] { return !process_alive(member); }, milliseconds(5'000)));
  CHECK(eventually([&] { return !member_of(patd, "g", member).has_value(); }));
  auto exit = recent_exit_of(patd, "g", member);
  REQUIRE(exit.has_value());
  CHECK((*exit)["signal"] == SIGHUP);
  // The group is unharmed.
  CHECK(patd.patctl({"run", "--group", "g", "/bin/true"}).exit_code == 0);
}

TEST_CASE("--detach prints the pid and returns; the member is listed, then in recent_exits") {
  PatdInstance patd;
  ScratchDir scratch;
  REQUIRE(patd.patctl({"group", "create", "g"}).exit_code == 0);
  auto start = std::chrono::steady_clock::now();
  BackgroundPatctl patctl(patd, scratch, {"run", "--detach", "--group", "g", "sleep", "30"});
  auto status = patctl.process.wait(milliseconds(10'000));
  CHECK(seconds_since(start) < 2.0);
  REQUIRE(status == 0);
  auto out = patctl.out();
  REQUIRE(lines_of(out).size() == 1);
  pid_t sleeper = std::stoi(out);
  CHECK(std::to_string(sleeper) + "\n" == out);
  CHECK(process_alive(sleeper));

  auto listed = member_of(patd, "g", sleeper);
  REQUIRE(listed.has_value());
  CHECK((*listed)["argv"] == json::array({"sleep", "30"}));
  CHECK((*listed)["state"] == "running");
  CHECK((*listed)["detached"] == true);
  CHECK((*listed)["started"].get<std::string>().size() == 24);  // 2026-11-27T10:00:00.123Z

  // Ends by itself with a status, or by a signal.
  pid_t quick = patd.run_detached("g", {"sh", "-c", "exit 9"});
  pid_t signalled = patd.run_detached("g", {"sh", "-c", "kill -TERM $$"});
  CHECK(eventually([&] { return recent_exit_of(patd, "g", quick).has_value(); }));
  CHECK(eventually([&] { return recent_exit_of(patd, "g", signalled).has_value(); }));
  auto quick_exit = recent_exit_of(patd, "g", quick);
  CHECK((*quick_exit)["exit_code"] == 9);
  CHECK_FALSE(quick_exit->contains("signal"));
  auto signalled_exit = recent_exit_of(patd, "g", signalled);
  CHECK((*signalled_exit)["signal"] == SIGTERM);
  CHECK_FALSE(signalled_exit->contains("exit_code"));

  ::kill(sleeper, SIGKILL);
  CHECK(eventually([&] { return recent_exit_of(patd, "g", sleeper).has_value(); }));
  CHECK((*recent_exit_of(patd, "g", sleeper))["signal"] == SIGKILL);
  CHECK(show(patd, "g")["members"].empty());
}

TEST_CASE("--new-group runs in a fresh group that is gone once the member ends") {
  PatdInstance patd;
  ScratchDir scratch;
  REQUIRE(patd.patctl({"group", "create", "existing"}).exit_code == 0);

  auto named = patd.patctl({"run", "--new-group", "sh", "-c", "echo \"$PAT_GROUP\"; exit 4"});
  CHECK(named.exit_code == 4);
  std::string fresh = named.out.substr(0, named.out.find('\n'));
  CHECK_FALSE(fresh.empty());
  CHECK(fresh != "existing");
  auto only_existing = [&] {
    auto list = patd.patctl_json({"group", "list"});
    return list.size() == 1 && list[0]["name"] == "existing";
  };
  CHECK(eventually(only_existing));
  CHECK_FALSE(std::filesystem::exists(patd.dir().path() + "/groups/" + fresh));

  // While it runs, the group is listed, ephemeral, with the member in it.
  BackgroundPatctl patctl(patd, scratch, {"run", "--new-group", "sleep", "2"});
  std::string ephemeral;
  CHECK(eventually([&] {
    for (const auto& group : patd.patctl_json({"group", "list"})) {
      if (group["name"] != "existing" && group["members"].size() == 1) ephemeral = group["name"];
    }
    return !ephemeral.empty();
  }));
  if (!ephemeral.empty()) {
    auto group = show(patd, ephemeral);
    CHECK(group["ephemeral"] == true);
    CHECK(group["members"][0]["argv"] == json::array({"sleep", "2"}));
  }
  CHECK(patctl.process.wait(milliseconds(20'000)) == 0);
  CHECK(eventually(only_existing));
}

TEST_CASE("--new-group --detach: the fresh group is gone once its detached member ends") {
  PatdInstance patd;
  ScratchDir scratch;
  BackgroundPatctl patctl(patd, scratch, {"run", "--new-group", "--detach", "--json", "sleep", "0.3"});
  REQUIRE(patctl.process.wait(kPatctlTimeout) == 0);
  auto started = json::parse(patctl.out());
  std::string fresh = started["group"];
  pid_t member = started["pid"];
  CHECK(eventually([&] { return !process_alive(member); }));
  // The host's ephemeral idle limit (60 s) must not be what ends it: the
  // group goes when its last member does, as for a member run in the
  // foreground.
  CHECK(eventually([&] { return patd.patctl_json({"group", "list"}).empty(); }, milliseconds(10'000)));
  CHECK_FALSE(std::filesystem::exists(patd.dir().path() + "/groups/" + fresh));
}

TEST_CASE("pat-python: json, ssl, threads, subprocess, and multiprocessing pools with fork and spawn") {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "py"}).exit_code == 0);
  auto result = patd.patctl({"run", "--group", "py", pat_python(), member_script("stdlib_workout.py")},
                            RunOptions{.timeout = milliseconds(120'000)});
  INFO("stderr: ", result.err);
  CHECK(result.exit_code == 0);
  CHECK(result.out ==
        "json {\"a\": [1, 2, 3], \"b\": {\"c\": \"d\"}}\n"
        "ssl True True 68d753f055b1a15b\n"
        "threads [333283335000, 2666466670000, 8999550005000, 21332533340000]\n"
        "subprocess from-echo\n"
        "pool [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]\n"
        "spawn pool 328350\n");
}

TEST_CASE("numpy under pat-python") {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "py"}).exit_code == 0);
  auto result = patd.patctl({"run", "--group", "py", pat_python(), member_script("numpy_checksum.py")},
                            RunOptions{.timeout = milliseconds(120'000)});
  INFO("stderr: ", result.err);
  CHECK(result.exit_code == 0);
  CHECK(result.out ==
        "sum_of_squares 333332833333500000\n"  // sum of k^2 for k < 10^6: (n-1)n(2n-1)/6
        "solve_ok True\n"
        "blocks_checksum 261361417\n");  // sum of s*(s % 251) for s in range(1, 20000, 97)
}

TEST_CASE("two pat-python members churning malloc at once in one group: no corruption") {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "heap"}).exit_code == 0);
  auto churn = [&](const std::string& seed) {
    return patd.patctl({"run", "--group", "heap", pat_python(), member_script("malloc_churn.py"), seed, "1.0"},
                       RunOptions{.timeout = milliseconds(120'000)});
  };
  auto first = std::async(std::launch::async, churn, "11");
  auto second = std::async(std::launch::async, churn, "12");
  std::array<Completed, 2> results = {first.get(), second.get()};
  std::array<double, 2> started{}, ended{};
  for (int i = 0; i < 2; ++i) {
    CAPTURE(i);
    INFO("stderr: ", results[i].err);
    CHECK(results[i].exit_code == 0);
    auto fields = log_fields(results[i].out);
    CHECK(results[i].out.rfind("churn seed=" + std::to_string(11 + i) + " ", 0) == 0);
    CHECK(results[i].out.find(" ok ") != std::string::npos);
    started[i] = std::stod(fields["started"].empty() ? "0" : fields["started"]);
    ended[i] = std::stod(fields["ended"].empty() ? "0" : fields["ended"]);
  }
  // They really ran at the same time (CLOCK_MONOTONIC is system-wide).
  CHECK(std::max(started[0], started[1]) < std::min(ended[0], ended[1]));
  CHECK(show(patd, "heap")["members"].empty());
}

TEST_CASE("members of a group share one address space and nothing else") {
  PatdInstance patd;
  ScratchDir scratch;
  auto group = patd.patctl_json({"group", "create", "shared"});
  pid_t host = group["host_pid"].get<pid_t>();
  REQUIRE(patd.patctl({"group", "create", "apart"}).exit_code == 0);
  pid_t a = patd.run_detached("shared", {"sleep", "30"});
  pid_t b = patd.run_detached("shared", {"sleep", "30"});
  pid_t elsewhere = patd.run_detached("apart", {"sleep", "30"});

  CHECK(kcmp(a, b, KCMP_VM) == Kcmp::Same);
  CHECK(kcmp(a, host, KCMP_VM) == Kcmp::Same);
  CHECK(kcmp(a, ::getpid(), KCMP_VM) == Kcmp::Different);
  CHECK(kcmp(a, elsewhere, KCMP_VM) == Kcmp::Different);
  // Each member keeps what makes it a process.
  CHECK(kcmp(a, b, KCMP_FILES) == Kcmp::Different);
  CHECK(kcmp(a, b, KCMP_SIGHAND) == Kcmp::Different);
  CHECK(kcmp(a, b, KCMP_FS) == Kcmp::Different);
  CHECK(a != b);
}

TEST_CASE("a second copy of ET_EXEC python3.11 in a group exits 126, naming the holder and pat-python") {
  PatdInstance patd;
  ScratchDir scratch;
  REQUIRE(patd.patctl({"group", "create", "g"}).exit_code == 0);
  pid_t holder = patd.run_detached("g", {"/usr/bin/python3.11", "-c", "import time; time.sleep(30)"});
  auto second = patd.patctl({"run", "--group", "g", "/usr/bin/python3.11", "-c", "pass"});
  CHECK(second.exit_code == 126);
  CHECK(lines_of(second.err).size() == 1);
  CHECK(second.err.find(std::to_string(holder)) != std::string::npos);
  CHECK(second.err.find("pat-python") != std::string::npos);
  CHECK(process_alive(holder));
  // pat-python fits beside it; once the holder is gone, python3.11 fits again.
  CHECK(patd.patctl({"run", "--group", "g", pat_python(), "-c", "pass"}).exit_code == 0);
  ::kill(holder, SIGKILL);
  REQUIRE(eventually([&] { return recent_exit_of(patd, "g", holder).has_value(); }));
  auto again = patd.patctl({"run", "--group", "g", "/usr/bin/python3.11", "-c", "print('fits')"});
  INFO("stderr: ", again.err);
  CHECK(again.exit_code == 0);
  CHECK(again.out == "fits\n");
}

#if PAT_PYTHON_NONPIC_BUILD
TEST_CASE("pat-python members all run its non-PIC build, each moved to its own slot below 2 GiB") {
  // More members than the eight fixed-address builds pat used to ship.
  constexpr int kMembers = 12;
  PatdInstance patd;
  ScratchDir scratch;
  REQUIRE(patd.patctl({"group", "create", "py"}).exit_code == 0);
  const std::string nonpic_build =
      std::filesystem::weakly_canonical(bin_dir() + "/../lib/pat/pat-python-nonpic").string();
  // The regular expression is one whose answer a stale interpreter core gets
  // wrong against a newer standard library (3.11.2-6+deb12u6 vs deb12u9).
  const std::string facts =
      "print('%d-%d' % re.match(r'(?:ab?c)++', 'aca').span())\n"
      "print(sys.version)\n";
  auto reference = run({"/usr/bin/python3.11", "-c", "import re, sys\n" + facts});
  REQUIRE(reference.exit_code == 0);

  // Each holder reports the file it runs from, where CPython's code sits, its
  // sys.executable and sys.version and a computation, then stays.
  std::vector<pid_t> holders;
  for (int i = 0; i < kMembers; ++i) {
    std::string report = scratch.path("report-" + std::to_string(i));
    holders.push_back(patd.run_detached(
        "py", {pat_python(), "-c",
               "import ctypes, os, re, sys, time\n"
               "code = ctypes.cast(ctypes.pythonapi.Py_IsInitialized, ctypes.c_void_p).value\n"
               "f = open('" + report + ".tmp', 'w')\n"
               "print(os.readlink('/proc/self/exe'), code, sys.executable, file=f)\n"
               "sys.stdout = f\n" + facts +
               "f.close()\n"
               "os.rename('" + report + ".tmp', '" + report + "')\n"
               "time.sleep(60)"}));
  }
  std::set<std::uint64_t> code_addresses;
  for (int i = 0; i < kMembers; ++i) {
    std::string report = scratch.path("report-" + std::to_string(i));
    REQUIRE(eventually([&] { return std::filesystem::exists(report); }, milliseconds(60'000)));
    std::istringstream lines(read_file(report));
    std::string first, rest;
    std::getline(lines, first);
    std::getline(lines, rest, '\0');
    std::istringstream fields(first);
    std::string exe, executable;
    std::uint64_t code = 0;
    fields >> exe >> code >> executable;
    CHECK(exe == nonpic_build);
    CHECK(executable == pat_python());  // what the user ran, for subprocess and spawn
    CHECK(code < 0x80000000);           // the small code model's limit
    CHECK(rest == reference.out);
    code_addresses.insert(code);
  }
  CHECK(code_addresses.size() == static_cast<std::size_t>(kMembers));

  // A slot is free again once its member is gone and reclaimed.
  ::kill(holders.front(), SIGKILL);
  REQUIRE(eventually([&] { return recent_exit_of(patd, "py", holders.front()).has_value(); }));
  auto reused = patd.patctl({"run", "--group", "py", pat_python(), "-c", "import os; print(os.readlink('/proc/self/exe'))"});
  CHECK(reused.exit_code == 0);
  CHECK(reused.out == nonpic_build + "\n");
  for (pid_t holder : holders) ::kill(holder, SIGKILL);
}
#endif

TEST_CASE("a corrupt and a truncated ELF exit 126; the group and patd keep working") {
  PatdInstance patd;
  ScratchDir scratch;
  auto group = patd.patctl_json({"group", "create", "g"});
  pid_t host = group["host_pid"].get<pid_t>();
  std::string garbage = "\x7f" "ELF\x02\x01\x01";
  for (int i = 0; i < 200; ++i) garbage += static_cast<char>((i * 37 + 11) & 0xff);
  auto corrupt = scratch.write("corrupt", garbage, kExecutable);
  auto truncated = scratch.write("truncated", read_file("/bin/true").substr(0, 100), kExecutable);
  for (const auto& program : {corrupt, truncated}) {
    CAPTURE(program);
    auto result = patd.patctl({"run", "--group", "g", program});
    CHECK(result.exit_code == 126);
    CHECK(lines_of(result.err).size() == 1);
    CHECK(result.err.find(program) != std::string::npos);
  }
  CHECK(process_alive(host));
  CHECK(show(patd, "g")["host_pid"] == host);
  CHECK(patd.patctl({"run", "--group", "g", "/bin/true"}).exit_code == 0);
  CHECK(patd.patctl_json({"status"})["groups"] == 1);
}

TEST_CASE("a member that segfaults exits 139; the rest of its group runs on") {
  PatdInstance patd;
  ScratchDir scratch;
  auto group = patd.patctl_json({"group", "create", "g"});
  pid_t host = group["host_pid"].get<pid_t>();
  pid_t bystander = patd.run_detached("g", {"sleep", "30"});
  // No core file (RLIMIT_CORE 0; tests/integration/debugging_test.cc has cores).
  auto faulted = patctl_after(patd, "cd " + scratch.path() + " && ulimit -c 0",
                              {"run", "--group", "g", member_program("segfault")});
  CHECK(faulted.exit_code == 128 + SIGSEGV);
  // What a shell would say of its child, without a core.
  CHECK(faulted.err.rfind("about to fault\npatctl: " + member_program("segfault") + " (pid ", 0) == 0);
  CHECK(faulted.err.find("): segmentation fault\n") != std::string::npos);
  CHECK(faulted.err.find("core") == std::string::npos);
  auto by_shell = patd.patctl({"run", "--group", "g", "sh", "-c", "kill -SEGV $$"});
  CHECK(by_shell.exit_code == 128 + SIGSEGV);

  CHECK(process_alive(host));
  CHECK(process_alive(bystander));
  auto listed = member_of(patd, "g", bystander);
  REQUIRE(listed.has_value());
  CHECK((*listed)["state"] == "running");
  CHECK(patd.patctl({"run", "--group", "g", "echo", "still here"}).out == "still here\n");
}

TEST_CASE("#! scripts: #!/bin/sh and #!/usr/bin/env sh") {
  PatdInstance patd;
  ScratchDir scratch;
  REQUIRE(patd.patctl({"group", "create", "g"}).exit_code == 0);
  auto direct = scratch.write("direct.sh", "#!/bin/sh\necho \"direct $0 $*\"\nexit 3\n", kExecutable);
  auto via_env = scratch.write("via_env.sh", "#!/usr/bin/env sh\necho \"via env $*\"\nexit 5\n", kExecutable);
  auto first = patd.patctl({"run", "--group", "g", direct, "a", "b c"});
  INFO("stderr: ", first.err);
  CHECK(first.exit_code == 3);
  CHECK(first.out == "direct " + direct + " a b c\n");
  auto second = patd.patctl({"run", "--group", "g", via_env, "x"});
  INFO("stderr: ", second.err);
  CHECK(second.exit_code == 5);
  CHECK(second.out == "via env x\n");
}

TEST_CASE("a member that execs out reports its status, and is shown as execed meanwhile") {
  PatdInstance patd;
  ScratchDir scratch;
  REQUIRE(patd.patctl({"group", "create", "g"}).exit_code == 0);
  CHECK(patd.patctl({"run", "--group", "g", "sh", "-c", "exec sleep 0.2"}).exit_code == 0);
  CHECK(patd.patctl({"run", "--group", "g", "sh", "-c", "exec sh -c 'exit 5'"}).exit_code == 5);
  CHECK(patd.patctl({"run", "--group", "g", "env", "sh", "-c", "exit 6"}).exit_code == 6);

  // Held until the test has seen the execed state.
  std::string go = scratch.path("go");
  std::vector<std::string> argv = {"sh", "-c", "exec sh -c 'while [ ! -e " + go + " ]; do sleep 0.02; done; exit 4'"};
  std::vector<std::string> args = {"run", "--group", "g", "--"};
  args.insert(args.end(), argv.begin(), argv.end());
  BackgroundPatctl patctl(patd, scratch, args);
  pid_t member = wait_for_member(patd, "g", argv);
  CHECK(eventually([&] {
    auto listed = member_of(patd, "g", member);
    return listed && (*listed)["state"] == "execed";
  }));
  CHECK(kcmp(member, show(patd, "g")["host_pid"].get<pid_t>(), KCMP_VM) == Kcmp::Different);
  scratch.write("go", "", kReadWrite);
  CHECK(patctl.process.wait(milliseconds(10'000)) == 4);
  auto exit = recent_exit_of(patd, "g", member);
  REQUIRE(exit.has_value());
  CHECK((*exit)["exit_code"] == 4);

  // Signals forwarded by patctl still reach it after the exec.
  BackgroundPatctl sleeper(patd, scratch, {"run", "--group", "g", "sh", "-c", "exec sleep 100"});
  pid_t sleeping = wait_for_member(patd, "g", {"sh", "-c", "exec sleep 100"});
  REQUIRE(eventually([&] {
    auto listed = member_of(patd, "g", sleeping);
    return listed && (*listed)["state"] == "execed";
  }));
  sleeper.process.signal(SIGTERM);
  CHECK(sleeper.process.wait(milliseconds(10'000)) == 143);
}

TEST_CASE("patd logs member.start and member.exit with the group and pid") {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "logged"}).exit_code == 0);
  auto result = patd.patctl({"run", "--json", "--group", "logged", "sh", "-c", "exit 3"});
  CHECK(result.exit_code == 3);
  auto reply = json::parse(result.out);
  CHECK(reply["group"] == "logged");
  CHECK(reply["exit_code"] == 3);
  std::string pid = std::to_string(reply["pid"].get<pid_t>());
  CHECK(eventually([&] { return patd_logged(patd, {{"event", "member.start"}, {"group", "logged"}, {"pid", pid}}); }));
  CHECK(eventually([&] {
    return patd_logged(patd, {{"event", "member.exit"}, {"group", "logged"}, {"pid", pid}, {"exit_code", "3"}});
  }));
}
