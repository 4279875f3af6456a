// Debugging a member like any process (docs/debugging.md), with the real
// tools: Debian's gdb and its CPython extension (python3.11-dbg), procps,
// real crashing members and the kernel's own core files.
//   - ps, pgrep and /proc show the group's title; patctl ps the member's own
//   - patctl run --stopped: stopped before its first instruction
//   - gdb attached to a member (patctl debug, and plain gdb with pat-host's
//     auto-load script): its functions, its libraries, py-bt
//   - a crashing member's own core, while another member runs on
#include "tests/support/patd_instance.h"
#include "tests/support/scratch_dir.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>

using namespace pat::testing;
using nlohmann::json;
using std::chrono::milliseconds;

namespace {

std::string target() { return std::string(INTEGRATION_PROGRAMS_DIR) + "/debug_target"; }
std::string pat_python() { return bin_dir() + "/pat-python"; }
std::string libexec_dir() { return bin_dir() + "/../libexec/pat"; }

// `patctl run --detach --output FILE`, for a member whose output the test reads.
pid_t start(const PatdInstance& patd, const std::string& output, const std::vector<std::string>& command,
            const std::vector<std::string>& options = {}) {
  std::vector<std::string> args = {"run", "--detach", "--group", "g", "--output", output};
  args.insert(args.end(), options.begin(), options.end());
  args.push_back("--");
  args.insert(args.end(), command.begin(), command.end());
  auto started = patd.patctl(args);
  INFO("patctl run: ", started.err);
  REQUIRE(started.exit_code == 0);
  return std::stoi(started.out);
}

bool wait_for_output(const std::string& file, const std::string& text, milliseconds timeout = milliseconds(20'000)) {
  return eventually([&] { return read_file(file).find(text) != std::string::npos; }, timeout);
}

char process_state(pid_t pid) {
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  return close == std::string::npos || close + 2 >= stat.size() ? '?' : stat[close + 2];
}

Completed gdb_on(const PatdInstance& patd, pid_t pid, const std::vector<std::string>& commands) {
  std::vector<std::string> args = {"debug", std::to_string(pid), "--", "-batch"};
  for (const auto& command : commands) args.insert(args.end(), {"-ex", command});
  auto result = run(patctl_argv(patd, args), RunOptions{.timeout = milliseconds(180'000)});
  INFO("gdb: ", result.out, result.err);
  REQUIRE(result.exit_code == 0);
  return result;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

const std::string kPythonScript = R"(import sys, time
def innermost_python_function(n):
    print("ready", flush=True)
    while True:
        time.sleep(0.2)
def outer_python_function():
    innermost_python_function(3)
outer_python_function()
)";

// A private patd with a group "g", and scratch files: every case's start.
struct GroupG {
  PatdInstance patd;
  ScratchDir scratch;
  GroupG() { REQUIRE(patd.patctl({"group", "create", "g"}).exit_code == 0); }
};

}  // namespace

TEST_CASE_FIXTURE(GroupG, "ps and pgrep show the group's title, not pat-host's command line; patctl ps shows the member's own") {
  pid_t member = start(patd, scratch.path("out"), {target(), "wait"});
  REQUIRE(wait_for_output(scratch.path("out"), "ready"));
  pid_t host = show(patd, "g")["host_pid"].get<pid_t>();

  // /proc/PID/cmdline and environ are the address space's: the same for the
  // member and its host, and neither is pat-host's command line.
  for (pid_t pid : {member, host}) {
    std::string cmdline = read_file("/proc/" + std::to_string(pid) + "/cmdline");
    CHECK(cmdline == std::string("pat: group g") + '\0');
    std::string environ = read_file("/proc/" + std::to_string(pid) + "/environ");
    CHECK(environ.find_first_not_of('\0') == std::string::npos);
  }
  auto ps = run({"ps", "-o", "pid=,comm=,args=", "-p", std::to_string(member)});
  CHECK(contains(ps.out, "debug_target"));  // comm: its own
  CHECK(contains(ps.out, "pat: group g"));
  CHECK_FALSE(contains(ps.out, "pat-host"));
  auto pgrep = run({"pgrep", "-f", "^pat: group g$"});
  CHECK(contains(pgrep.out, std::to_string(member) + "\n"));
  CHECK(contains(run({"pgrep", "-x", "debug_target"}).out, std::to_string(member) + "\n"));

  json listed = patd.patctl_json({"ps", "--group", "g"});
  REQUIRE(listed.size() == 1);
  CHECK(listed[0]["pid"] == member);
  CHECK(listed[0]["group"] == "g");
  CHECK(listed[0]["argv"] == json::array({target(), "wait"}));
  CHECK(listed[0]["cwd"] == std::filesystem::current_path().string());
  CHECK(listed[0]["process_state"] == "S");
  CHECK(listed[0]["resident_bytes"].get<double>() > 0);
  auto table = patd.patctl({"ps"});
  CHECK(contains(table.out, std::to_string(member)));
  CHECK(contains(table.out, target() + " wait"));
}

TEST_CASE_FIXTURE(GroupG, "patctl run --stopped: the member waits before its first instruction until SIGCONT") {
  pid_t member = start(patd, scratch.path("out"), {target(), "wait"}, {"--stopped"});
  CHECK(process_state(member) == 'T');  // stopped when the pid is printed
  ::usleep(300'000);
  CHECK(read_file(scratch.path("out")).empty());
  CHECK(json(patd.patctl_json({"ps", "--group", "g"}))[0]["process_state"] == "T");
  REQUIRE(::kill(member, SIGCONT) == 0);
  CHECK(wait_for_output(scratch.path("out"), "ready"));

  // gdb attached while it is stopped stops it in its own program.
  pid_t second = start(patd, scratch.path("second"), {target(), "wait"}, {"--stopped"});
  auto gdb = gdb_on(patd, second, {"break wait_in_named_function", "continue", "bt"});
  CHECK(contains(gdb.out, "has not started its program yet"));
  CHECK(contains(gdb.out, "Breakpoint 1, wait_in_named_function"));
  CHECK(contains(gdb.out, "in main ("));
  CHECK(wait_for_output(scratch.path("second"), "ready"));  // it ran up to the breakpoint
  ::kill(second, SIGCONT);
  CHECK(eventually([&] { return process_state(second) == 'S'; }));

  // Attached mode says how to go on, on stderr.
  Background attached(patctl_argv(patd, {"run", "--group", "g", "--stopped", "--", target(), "wait"}),
                            scratch.path("attached.out"), scratch.path("attached.err"));
  REQUIRE(wait_for_output(scratch.path("attached.err"), "kill -CONT"));
  CHECK(contains(read_file(scratch.path("attached.err")), "is stopped before its first instruction"));
}

TEST_CASE_FIXTURE(GroupG, "gdb attached to a member: its functions, threads and libraries, and it runs on after detaching") {
  pid_t member = start(patd, scratch.path("out"), {target(), "wait"});
  REQUIRE(wait_for_output(scratch.path("out"), "ready"));

  auto gdb = gdb_on(patd, member, {"thread apply all bt", "info sharedlibrary", "info threads"});
  CHECK(contains(gdb.out, "is a member of group g; its program: " + std::filesystem::canonical(target()).string()));
  CHECK(contains(gdb.out, "in wait_in_named_function ()"));
  CHECK(contains(gdb.out, "in thread_waits_here ("));
  CHECK(contains(gdb.out, "in main ("));
  CHECK(contains(gdb.out, "/libc.so.6"));
  CHECK_FALSE(contains(gdb.out, "libspdlog"));  // pat-host's
  CHECK_FALSE(contains(gdb.out, "libseccomp"));
  CHECK(contains(gdb.out, "2    Thread "));

  // Detached, it runs on: it answers a signal.
  CHECK(eventually([&] { return process_state(member) == 'S'; }));
  REQUIRE(::kill(member, SIGUSR1) == 0);
  CHECK(wait_for_output(scratch.path("out"), "usr1"));

  // Not a member: refused before gdb starts.
  auto refused = patd.patctl({"debug", std::to_string(::getpid())});
  CHECK(refused.exit_code == 1);
  CHECK(contains(refused.err, "is not a member of any group you can see"));
}

TEST_CASE_FIXTURE(GroupG, "plain gdb -p, with pat-host's gdb script auto-loaded, sees the member at its first prompt") {
  pid_t member = start(patd, scratch.path("out"), {target(), "wait"});
  REQUIRE(wait_for_output(scratch.path("out"), "ready"));
  // gdb finds pat-host-gdb.py beside pat-host; trusting that directory is
  // the user's choice (docs/debugging.md). Commands on stdin, as typed.
  auto gdb = run({"gdb", "-q", "-nx", "-iex", "add-auto-load-safe-path " + libexec_dir(), "-p", std::to_string(member)},
                 RunOptions{.stdin_data = "bt\ninfo sharedlibrary\ndetach\nquit\n", .timeout = milliseconds(180'000)});
  INFO("gdb: ", gdb.out, gdb.err);
  CHECK(contains(gdb.out, "is a member of group g"));
  CHECK(contains(gdb.out, "in wait_in_named_function ()"));
  CHECK(contains(gdb.out, "in main ("));
  CHECK_FALSE(contains(gdb.out, "libspdlog"));
  CHECK(eventually([&] { return process_state(member) == 'S'; }));
}

TEST_CASE_FIXTURE(GroupG, "py-bt prints a pat-python member's Python stack, in the non-PIC build where it was linked and moved") {
  auto script = scratch.write("stack.py", kPythonScript, kReadWrite);
  // pat-python members run the non-PIC build (static libpython without
  // debug information; docs/pat-python.md): the first at the address it was
  // linked for, the second moved by the host's loader into another slot.
  std::vector<pid_t> members;
  for (int i = 0; i < 2; ++i) {
    std::string out = scratch.path("out" + std::to_string(i));
    members.push_back(start(patd, out, {pat_python(), script}));
    REQUIRE(wait_for_output(out, "ready"));
  }
  for (pid_t member : members) {
    std::string program = member_of(patd, "g", member).value()["program"];
    INFO("member ", member, " runs ", program);
    CHECK(contains(program, "pat-python-nonpic"));
    auto gdb = gdb_on(patd, member, {"py-bt"});
    CHECK(contains(gdb.out, "in innermost_python_function"));
    CHECK(contains(gdb.out, "in outer_python_function"));
    CHECK(contains(gdb.out, "time.sleep(0.2)"));
    CHECK(eventually([&] { return process_state(member) == 'S'; }));
  }
}

TEST_CASE_FIXTURE(GroupG, "a crashing member leaves a core of its own, named for its program, while another member runs on") {
  // The bystander keeps a marker that exists only in its memory.
  pid_t bystander = start(patd, scratch.path("bystander"), {target(), "marker", "q7w1z9"});
  REQUIRE(wait_for_output(scratch.path("bystander"), "ready"));
  const std::string marker = "PATMARK-9z1w7q";

  auto crashed = patctl_after(patd, "cd " + scratch.path() + " && ulimit -c unlimited",
                              {"run", "--group", "g", target(), "crash"});
  CHECK(crashed.exit_code == 128 + SIGSEGV);
  const std::string core = scratch.path("core");  // core_pattern here: "core" (docs/debugging.md for others)
  if (read_file("/proc/sys/kernel/core_pattern") != "core\n") {
    MESSAGE("core_pattern is not \"core\": only the report is checked");
  } else {
    CHECK(contains(crashed.err, "): segmentation fault, core dumped to " + core + "\n"));
    REQUIRE(std::filesystem::exists(core));
    std::string bytes = read_file(core);
    CHECK_FALSE(contains(bytes, marker));         // the other member's memory
    CHECK_FALSE(contains(bytes, "pat: group g"));  // the host's
    // Far from the group's whole address space (tens of GB, apparent).
    double group_bytes = show(patd, "g")["memory"]["size_bytes"].get<double>();
    CHECK(static_cast<double>(std::filesystem::file_size(core)) < group_bytes / 100);
    // Nor the never-touched stretches of the member's own mappings (most of
    // its 8 MiB stack, its 64 MiB heap): not in the file, as in an ordinary
    // process's core, whose stack mapping is only what was used.
    CHECK(std::filesystem::file_size(core) < 4 * 1024 * 1024);

    auto gdb = run({"gdb", "-batch", "-nx", target(), core, "-ex", "bt", "-ex", "info sharedlibrary", "-ex",
                    "info threads", "-ex", "thread apply 2 bt"},
                   RunOptions{.timeout = milliseconds(180'000)});
    INFO("gdb: ", gdb.out, gdb.err);
    CHECK(contains(gdb.out, "Core was generated by `" + target() + " crash'."));
    CHECK(contains(gdb.out, "Program terminated with signal SIGSEGV"));
    CHECK(contains(gdb.out, "crash_in_named_function ("));
    CHECK(contains(gdb.out, "in main ("));
    CHECK(contains(gdb.out, "/libc.so.6"));
    CHECK_FALSE(contains(gdb.out, "libspdlog"));
    // Both threads, known to libthread_db as in an ordinary core.
    CHECK(contains(gdb.out, "2    Thread 0x"));
    CHECK(contains(gdb.out, "in thread_waits_here ("));
  }
  CHECK(process_alive(bystander));
  CHECK(member_of(patd, "g", bystander).value()["state"] == "running");
  json exit = show(patd, "g")["recent_exits"][0];
  CHECK(exit["signal"] == SIGSEGV);
  CHECK(exit["core_dumped"] == true);
  if (exit.contains("core_file")) CHECK(exit["core_file"] == core);

  // RLIMIT_CORE 0: no core, as for any process.
  std::filesystem::remove(core);
  auto no_core = patctl_after(patd, "cd " + scratch.path() + " && ulimit -c 0", {"run", "--group", "g", target(), "crash"});
  CHECK(no_core.exit_code == 128 + SIGSEGV);
  CHECK_FALSE(contains(no_core.err, "core"));
  CHECK_FALSE(std::filesystem::exists(core));
  CHECK(show(patd, "g")["recent_exits"][0]["core_dumped"] == false);

  // A limit smaller than the core: cut there, and said so.
  if (read_file("/proc/sys/kernel/core_pattern") != "core\n") return;
  auto cut = patctl_after(patd, "cd " + scratch.path() + " && ulimit -c 64", {"run", "--group", "g", target(), "crash"});
  CHECK(contains(cut.err, "core dumped to " + core + " (cut at the core size limit, ulimit -c)"));
  // 64 blocks: of 512 bytes for dash (/bin/sh here), 1024 for bash.
  CHECK(std::filesystem::file_size(core) <= 64 * 1024);
  CHECK(std::filesystem::file_size(core) >= 32 * 1024);
  CHECK(show(patd, "g")["recent_exits"][0]["core_truncated"] == true);
}

TEST_CASE_FIXTURE(GroupG, "a pat-python member's core, written where it changed directory to, shows its Python stack") {
  std::filesystem::create_directory(scratch.path("elsewhere"));
  auto script = scratch.write("crash.py", R"(import ctypes, os
def python_function_that_crashes():
    ctypes.string_at(0)
os.chdir("elsewhere")
python_function_that_crashes()
)", kReadWrite);
  auto crashed = patctl_after(patd, "cd " + scratch.path() + " && ulimit -c unlimited",
                              {"run", "--group", "g", pat_python(), script});
  CHECK(crashed.exit_code == 128 + SIGSEGV);
  if (read_file("/proc/sys/kernel/core_pattern") != "core\n") return;
  const std::string core = scratch.path("elsewhere/core");
  CHECK(contains(crashed.err, "segmentation fault, core dumped to " + core));
  REQUIRE(std::filesystem::exists(core));
  auto gdb = run(patctl_argv(patd, {"debug", "--core", core, "--", "-batch", "-ex", "py-bt"}),
                 RunOptions{.timeout = milliseconds(180'000)});
  INFO("gdb: ", gdb.out, gdb.err);
  CHECK(contains(gdb.out, "is a core of "));
  CHECK(contains(gdb.out, "in python_function_that_crashes"));
  CHECK(contains(gdb.out, "ctypes.string_at(0)"));
}

TEST_CASE_FIXTURE(GroupG, "processes a member starts get the usual coredump_filter back; the group's own is 0") {
  std::string mine = read_file("/proc/self/coredump_filter");  // what patd and the host inherited
  auto member = patd.patctl({"run", "--group", "g", "cat", "/proc/self/coredump_filter"});
  CHECK(member.out == "00000000\n");
  auto child = patd.patctl({"run", "--group", "g", "sh", "-c", "cat /proc/self/coredump_filter; true"});
  CHECK(child.out == mine);
}
