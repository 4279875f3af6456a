// Groups through the real patd and patctl: create, list, show, destroy, the
// host process and its credentials, ownership, and surviving a patd crash.
#include "tests/support/patd_instance.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <sstream>

using namespace pat::testing;
using nlohmann::json;

namespace {

pid_t host_pid_of(const json& group) { return group.at("host_pid").get<pid_t>(); }

}  // namespace

TEST_CASE("status reports version, uptime and group count") {
  PatdInstance patd;
  auto status = patd.patctl_json({"status"});
  CHECK(status["version"] == "0.1.0");
  CHECK(status["pid"] == patd.pid());
  CHECK(status["uptime_seconds"].get<double>() >= 0.0);
  CHECK(status["groups"] == 0);
  CHECK(status["runtime_dir"] == patd.dir().path());
  auto human = patd.patctl({"status"});
  CHECK(human.exit_code == 0);
  CHECK(human.out.find("patd is running") != std::string::npos);
}

TEST_CASE("create, list, show and destroy a group") {
  PatdInstance patd;
  auto created = patd.patctl_json({"group", "create", "alpha"});
  CHECK(created["name"] == "alpha");
  CHECK(created["owner_uid"] == 0);
  CHECK(created["members"] == json::array());
  CHECK(created["created"].get<std::string>().size() == 24);  // 2026-11-27T10:00:00.123Z
  pid_t host = host_pid_of(created);
  CHECK(process_alive(host));

  auto list = patd.patctl_json({"group", "list"});
  REQUIRE(list.is_array());
  REQUIRE(list.size() == 1);
  CHECK(list[0]["name"] == "alpha");
  CHECK(list[0]["host_pid"] == host);
  for (const char* key : {"name", "owner_uid", "host_pid", "created", "members"}) CHECK(list[0].contains(key));

  auto shown = patd.patctl_json({"group", "show", "alpha"});
  CHECK(shown["name"] == "alpha");
  CHECK(shown["host_pid"] == host);
  CHECK(shown["members"].is_array());
  CHECK(shown["recent_exits"].is_array());

  auto table = patd.patctl({"group", "list"});
  CHECK(table.out.find("alpha") != std::string::npos);
  CHECK(table.out.find("NAME") != std::string::npos);

  auto destroyed = patd.patctl({"group", "destroy", "alpha"});
  INFO(destroyed.err);
  CHECK(destroyed.exit_code == 0);
  CHECK(eventually([&] { return !process_alive(host); }));
  CHECK(patd.patctl_json({"group", "list"}).empty());
  CHECK_FALSE(std::filesystem::exists(patd.dir().path() + "/groups/alpha"));
}

TEST_CASE("names are checked and duplicates refused") {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "dup"}).exit_code == 0);
  auto again = patd.patctl({"group", "create", "dup"});
  CHECK(again.exit_code == 1);
  CHECK(again.err.find("io.pat.GroupExists") != std::string::npos);
  for (const std::string& bad : std::vector<std::string>{"has space", "slash/name", "..", std::string(65, 'x'), "semi;colon"}) {
    auto result = patd.patctl({"group", "create", bad});
    CAPTURE(bad);
    CHECK(result.exit_code == 1);
    CHECK(result.err.find("io.pat.InvalidGroupName") != std::string::npos);
  }
  CHECK(patd.patctl({"group", "create", std::string(64, 'x')}).exit_code == 0);
  auto missing = patd.patctl({"group", "show", "nope"});
  CHECK(missing.exit_code == 1);
  CHECK(missing.err.find("io.pat.GroupNotFound") != std::string::npos);
  CHECK(patd.patctl({"group", "destroy", "nope"}).exit_code == 1);
}

TEST_CASE("the host runs as the owner, without capabilities, in its own session") {
  PatdInstance patd;
  auto group = patd.patctl_json({"group", "create", "caps"});
  pid_t host = host_pid_of(group);
  CHECK(proc_status_field(host, "Uid").value_or("").rfind("0\t0\t0\t0", 0) == 0);
  for (const char* set : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
    CAPTURE(set);
    CHECK(proc_status_field(host, set) == "0000000000000000");
  }
  CHECK(proc_status_field(host, "NoNewPrivs") == "1");
  CHECK(::getsid(host) == host);
  // Its address space is not patd's.
  CHECK(std::filesystem::read_symlink("/proc/" + std::to_string(host) + "/exe").filename() == "pat-host");
}

TEST_CASE("an unprivileged user sees only their own groups") {
  uid_t uid = ensure_test_user("pat-test");
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "roots"}).exit_code == 0);

  auto list = patd.patctl_as("pat-test", {"group", "list", "--json"});
  INFO(list.err);
  REQUIRE(list.exit_code == 0);
  CHECK(json::parse(list.out) == json::array());

  auto show = patd.patctl_as("pat-test", {"group", "show", "roots"});
  CHECK(show.exit_code == 1);
  CHECK(show.err.find("io.pat.PermissionDenied") != std::string::npos);
  auto destroy = patd.patctl_as("pat-test", {"group", "destroy", "roots", "--force"});
  CHECK(destroy.exit_code == 1);
  CHECK(destroy.err.find("io.pat.PermissionDenied") != std::string::npos);
  CHECK(patd.patctl_json({"group", "list"}).size() == 1);

  auto own = patd.patctl_as("pat-test", {"group", "create", "theirs", "--json"});
  INFO(own.err);
  REQUIRE(own.exit_code == 0);
  auto group = json::parse(own.out);
  CHECK(group["owner_uid"] == uid);
  pid_t host = host_pid_of(group);
  auto uids = proc_status_field(host, "Uid").value_or("");
  std::string expected = std::to_string(uid);
  CHECK(uids == expected + "\t" + expected + "\t" + expected + "\t" + expected);
  CHECK(proc_status_field(host, "CapEff") == "0000000000000000");

  // Root sees both; the user sees only theirs.
  CHECK(patd.patctl_json({"group", "list"}).size() == 2);
  auto theirs = json::parse(patd.patctl_as("pat-test", {"group", "list", "--json"}).out);
  REQUIRE(theirs.size() == 1);
  CHECK(theirs[0]["name"] == "theirs");
  CHECK(patd.patctl_as("pat-test", {"group", "destroy", "theirs"}).exit_code == 0);
}

TEST_CASE("pat installed where only root may enter: another user's host and members still start") {
  // CI runs from /root/project (mode 0700 above it): patd must start pat-host
  // from a file it opened as root, not by a path the owner cannot walk.
  uid_t uid = ensure_test_user("pat-test");
  char templ[] = "/tmp/pat-root-only-XXXXXX";
  REQUIRE(::mkdtemp(templ) != nullptr);  // 0700, owned by root
  const std::filesystem::path prefix = std::string(templ) + "/prefix";
  for (const char* binary : {"bin/patd", "bin/patctl", "libexec/pat/pat-host"}) {
    std::filesystem::create_directories((prefix / binary).parent_path());
    std::filesystem::copy_file(std::filesystem::path(bin_dir()) / ".." / binary, prefix / binary);
  }
  REQUIRE(::access(templ, X_OK) == 0);
  {
    PatdOptions options;
    options.bin_dir = (prefix / "bin").string();
    PatdInstance patd(std::make_shared<RuntimeDirectory>(), options);
    auto created = patd.patctl_as("pat-test", {"group", "create", "theirs", "--json"});
    INFO(created.err);
    REQUIRE(created.exit_code == 0);
    pid_t host = host_pid_of(json::parse(created.out));
    CHECK(proc_status_field(host, "Uid").value_or("").rfind(std::to_string(uid) + "\t", 0) == 0);
    // Started from that file, and holding no descriptor of it.
    auto proc = "/proc/" + std::to_string(host);
    CHECK(std::filesystem::read_symlink(proc + "/exe") == prefix / "libexec/pat/pat-host");
    for (const auto& fd : std::filesystem::directory_iterator(proc + "/fd")) {
      CAPTURE(fd.path());
      std::error_code ignored;
      CHECK(std::filesystem::read_symlink(fd.path(), ignored).filename() != "pat-host");
    }
    auto run = patd.patctl_as("pat-test", {"run", "--group", "theirs", "--", "/bin/sh", "-c", "echo $(id -u) member"});
    INFO(run.err);
    CHECK(run.exit_code == 0);
    CHECK(run.out == std::to_string(uid) + " member\n");
    CHECK(patd.patctl_as("pat-test", {"group", "destroy", "theirs"}).exit_code == 0);
  }
  std::filesystem::remove_all(templ);
}

TEST_CASE("groups outlive patd: kill -9, restart, same hosts") {
  auto dir = std::make_shared<RuntimeDirectory>();
  std::vector<pid_t> hosts;
  {
    PatdInstance first(dir);
    for (const char* name : {"one", "two", "three"}) {
      hosts.push_back(host_pid_of(first.patctl_json({"group", "create", name})));
    }
    first.kill_daemon(SIGKILL);
  }
  for (pid_t host : hosts) CHECK(process_alive(host));
  PatdInstance second(dir);
  auto list = second.patctl_json({"group", "list"});
  REQUIRE(list.size() == 3);
  std::map<std::string, pid_t> found;
  for (const auto& group : list) found[group["name"]] = host_pid_of(group);
  CHECK(found["one"] == hosts[0]);
  CHECK(found["two"] == hosts[1]);
  CHECK(found["three"] == hosts[2]);
  CHECK(second.log().find("event=group.rediscovered") != std::string::npos);
  // The rediscovered groups are fully usable.
  CHECK(second.patctl({"group", "destroy", "two"}).exit_code == 0);
  CHECK(eventually([&] { return !process_alive(hosts[1]); }));
}

TEST_CASE("SIGTERM stops patd cleanly and leaves groups running") {
  auto dir = std::make_shared<RuntimeDirectory>();
  pid_t host;
  {
    PatdInstance patd(dir);
    host = host_pid_of(patd.patctl_json({"group", "create", "stays"}));
    patd.process().signal(SIGTERM);
    auto status = patd.process().wait(std::chrono::milliseconds(10'000));
    REQUIRE(status.has_value());
    CHECK(*status == 0);
    CHECK(patd.log().find("event=stopping") != std::string::npos);
  }
  CHECK(process_alive(host));
  PatdInstance again(dir);
  CHECK(again.patctl_json({"group", "list"}).size() == 1);
}

TEST_CASE("a dead group's directory is cleaned up at rediscovery") {
  auto dir = std::make_shared<RuntimeDirectory>();
  pid_t host;
  {
    PatdInstance patd(dir);
    host = host_pid_of(patd.patctl_json({"group", "create", "doomed"}));
    patd.kill_daemon(SIGKILL);
  }
  ::kill(host, SIGKILL);
  REQUIRE(eventually([&] { return !process_alive(host); }));
  PatdInstance again(dir);
  CHECK(again.patctl_json({"group", "list"}).empty());
  CHECK_FALSE(std::filesystem::exists(dir->path() + "/groups/doomed"));
  // The name is free again.
  CHECK(again.patctl({"group", "create", "doomed"}).exit_code == 0);
}

TEST_CASE("a host that dies is noticed and its group removed") {
  PatdInstance patd;
  pid_t host = host_pid_of(patd.patctl_json({"group", "create", "fragile"}));
  ::kill(host, SIGKILL);
  CHECK(eventually([&] { return patd.patctl_json({"group", "list"}).empty(); }));
  CHECK(patd.log().find("event=host.exit group=fragile") != std::string::npos);
}

TEST_CASE("the control socket is 0600 without a pat group, as configured otherwise") {
  auto dir = std::make_shared<RuntimeDirectory>();
  PatdOptions options;
  options.extra_args = {"--socket-group", "no-such-group-here"};
  PatdInstance patd(dir, options);
  auto mode = std::filesystem::status(patd.socket()).permissions();
  CHECK(mode == (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
}

TEST_CASE("a second patd on the same runtime directory refuses to start") {
  auto dir = std::make_shared<RuntimeDirectory>();
  PatdInstance first(dir);
  PatdOptions options;
  options.wait_for_socket = false;
  PatdInstance second(dir, options);
  auto status = second.process().wait(std::chrono::milliseconds(10'000));
  REQUIRE(status.has_value());
  CHECK(*status == 1);
  CHECK(second.log().find("another patd is serving") != std::string::npos);
  CHECK(first.answering());
}

TEST_CASE("patctl exit codes: 125 for usage errors and an unreachable daemon, 1 for refusals") {
  auto unreachable = run({patctl_binary(), "--socket", "/nonexistent/patd.sock", "status"});
  CHECK(unreachable.exit_code == 125);
  CHECK(unreachable.err.find("cannot reach patd at /nonexistent/patd.sock") != std::string::npos);
  CHECK(std::count(unreachable.err.begin(), unreachable.err.end(), '\n') == 1);  // one line

  PatdInstance patd;
  CHECK(patd.patctl({"group"}).exit_code == 125);                  // subcommand missing
  CHECK(patd.patctl({"group", "create"}).exit_code == 125);        // NAME missing
  CHECK(patd.patctl({"no-such-command"}).exit_code == 125);
  CHECK(patd.patctl({"run", "/bin/true"}).exit_code == 125);       // neither --group nor --new-group
  CHECK(patd.patctl({"--help"}).exit_code == 0);
  auto refused = patd.patctl({"group", "show", "missing"});
  CHECK(refused.exit_code == 1);
  CHECK(refused.err == "patctl: no group named missing (io.pat.GroupNotFound)\n");
  CHECK(patd.patctl({"status", "--json"}).exit_code == 0);
  CHECK(patd.patctl({"--json", "status"}).exit_code == 0);
}

TEST_CASE("destroy refuses while members run, and --force ends them: SIGTERM, grace, SIGKILL") {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "busy"}).exit_code == 0);
  // One member that ends on SIGTERM, one that ignores it (once it says so:
  // a SIGTERM before its trap would end it at once).
  std::string trapped = patd.dir().path() + "/trapped";
  patd.run_detached("busy", {"/bin/sleep", "60"});
  patd.run_detached("busy", {"/bin/sh", "-c", "trap '' TERM; : > " + trapped + "; sleep 60"});
  REQUIRE(eventually([&] { return ::access(trapped.c_str(), F_OK) == 0; }));
  auto group = patd.patctl_json({"group", "show", "busy"});
  REQUIRE(group["members"].size() == 2);
  auto refused = patd.patctl({"group", "destroy", "busy"});
  CHECK(refused.exit_code == 1);
  CHECK(refused.err.find("io.pat.GroupBusy") != std::string::npos);
  CHECK(patd.patctl_json({"group", "show", "busy"})["members"].size() == 2);  // untouched
  auto start = std::chrono::steady_clock::now();
  auto forced = patd.patctl({"group", "destroy", "busy", "--force", "--grace-ms", "500"});
  auto took = std::chrono::steady_clock::now() - start;
  CHECK(forced.exit_code == 0);
  CHECK(took >= std::chrono::milliseconds(500));   // waited for the one ignoring SIGTERM
  CHECK(took < std::chrono::milliseconds(5'000));  // and then killed it
  CHECK_FALSE(process_alive(host_pid_of(group)));
  for (const auto& member : group["members"]) CHECK_FALSE(process_alive(member["pid"].get<pid_t>()));
}

TEST_CASE("patctl top: the busiest member first, with its CPU share; --output captures a detached member") {
  PatdInstance patd;
  REQUIRE(patd.patctl({"group", "create", "watched"}).exit_code == 0);
  std::string log = patd.dir().path() + "/busy.log";
  auto busy = patd.patctl({"run", "-d", "-o", log, "-g", "watched", "/bin/sh", "-c", "echo started; while :; do :; done"});
  REQUIRE(busy.exit_code == 0);  // returned although the member runs on: its output went to the file
  pid_t busy_pid = std::stoi(busy.out);
  pid_t idle_pid = patd.run_detached("watched", {"/bin/sleep", "30"});
  REQUIRE(eventually([&] { return read_file(log) == "started\n"; }));
  auto top = patd.patctl({"top", "--once", "--json"});
  REQUIRE(top.exit_code == 0);
  auto snapshot = json::parse(top.out);
  REQUIRE(snapshot["members"].size() == 2);
  CHECK(snapshot["members"][0]["pid"] == busy_pid);  // sorted by CPU
  // Spinning, it gets what the machine spares: on 2 shared CPUs with other
  // tests running, 35-60% was seen, and 16% at a load average of 12; an
  // idle member gets about 0.
  double busy_share = snapshot["members"][0]["cpu_percent"].get<double>();
  double idle_share = snapshot["members"][1]["cpu_percent"].get<double>();
  CHECK(busy_share > 5.0);
  CHECK(snapshot["members"][1]["pid"] == idle_pid);
  CHECK(idle_share < 5.0);
  CHECK(busy_share > 4 * idle_share);
  CHECK(snapshot["members"][0]["group"] == "watched");
  auto table = patd.patctl({"top", "--once"});
  CHECK(table.out.find("CPU%") != std::string::npos);
  CHECK(table.out.find(std::to_string(busy_pid)) < table.out.find(std::to_string(idle_pid)));
  ::kill(busy_pid, SIGKILL);
}

TEST_CASE("a host killed while a member runs: patctl says so, the member dies with it, patd serves on") {
  PatdInstance patd;
  auto group = patd.patctl_json({"group", "create", "doomed"});
  pid_t host = host_pid_of(group);
  RuntimeDirectory scratch;
  Background patctl({patctl_binary(), "--socket", patd.socket(), "run", "-g", "doomed", "/bin/sleep", "60"},
                    scratch.path() + "/out", scratch.path() + "/err");
  pid_t member = 0;
  REQUIRE(eventually([&] {
    auto shown = patd.patctl_json({"group", "show", "doomed"});
    if (shown["members"].empty()) return false;
    member = shown["members"][0]["pid"].get<pid_t>();
    return true;
  }));
  REQUIRE(::kill(host, SIGKILL) == 0);
  auto status = patctl.wait(std::chrono::milliseconds(10'000));
  REQUIRE(status.has_value());
  CHECK(*status == 1);
  CHECK(read_file(scratch.path() + "/err").find("io.pat.GroupUnavailable") != std::string::npos);
  CHECK(eventually([&] { return !process_alive(member); }));  // PR_SET_PDEATHSIG
  CHECK(eventually([&] { return patd.patctl_json({"group", "list"}).empty(); }));
  CHECK(patd.patctl({"group", "create", "doomed"}).exit_code == 0);
}

TEST_CASE("SIGHUP ends neither patd nor a host; members still get default dispositions") {
  PatdInstance patd;
  pid_t host = host_pid_of(patd.patctl_json({"group", "create", "hup"}));
  patd.process().signal(SIGHUP);
  ::kill(host, SIGHUP);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(patd.answering());
  CHECK(process_alive(host));
  // A member's SIGHUP is not ignored (the host's SIG_IGN is reset at launch).
  auto member = patd.patctl({"run", "-g", "hup", "/bin/sh", "-c", "kill -HUP $$; sleep 5"});
  CHECK(member.exit_code == 128 + SIGHUP);
}

// Issue 13, 1.9: a file left in the group directory kept the directory, and
// with it the name, from ever being created again, by anyone.
TEST_CASE("whatever an owner leaves in its group directory, a destroyed group's name can be created again") {
  ensure_test_user("pat-test");
  PatdInstance patd;
  REQUIRE(patd.patctl_as("pat-test", {"group", "create", "squat"}).exit_code == 0);
  std::string dir = patd.dir().path() + "/groups/squat";
  auto planted = run({"setpriv", "--reuid=pat-test", "--regid=pat-test", "--init-groups", "/bin/sh", "-c",
                      "cd " + dir + " && mkdir -p sub/deeper && : > sub/deeper/file && : > keep && "
                      "ln -s /etc/hostname link && ln -s /etc sublink && mkfifo fifo && chmod 0500 sub"});
  INFO(planted.err);
  REQUIRE(planted.exit_code == 0);
  auto destroyed = patd.patctl_as("pat-test", {"group", "destroy", "squat"});
  INFO(destroyed.err);
  REQUIRE(destroyed.exit_code == 0);
  CHECK(::access(dir.c_str(), F_OK) != 0);
  CHECK(::access("/etc/hostname", F_OK) == 0);  // links were removed, not followed
  auto again = patd.patctl({"group", "create", "squat"});
  INFO(again.err);
  CHECK(again.exit_code == 0);
}

// Issue 13, 1.4: the host's fd 2 was patd's stderr, so an owner took it with
// pidfd_getfd, appended a forged root event to patd's log and could truncate
// it. Now the host logs into a pipe patd reads and attributes.
TEST_CASE("a group owner cannot write patd's log through its host: host lines are relayed, quoted and attributed") {
  ensure_test_user("pat-test");
  PatdInstance patd;
  auto created = patd.patctl_as("pat-test", {"group", "create", "forger", "--json"});
  INFO(created.err);
  REQUIRE(created.exit_code == 0);
  pid_t host = host_pid_of(json::parse(created.out));
  CHECK(std::filesystem::read_symlink("/proc/" + std::to_string(host) + "/fd/2").string().rfind("pipe:", 0) == 0);

  const char* forge = R"PY(
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
pidfd = os.pidfd_open(int(sys.argv[1]))
fd = libc.syscall(438, pidfd, 2, 0)  # pidfd_getfd(2)
if fd < 0:
    sys.exit("pidfd_getfd: errno %d" % ctypes.get_errno())
os.write(fd, b"2026-12-03T00:00:00.000+0000 info patd: event=group.destroyed group=forged-by-owner by_uid=0\n")
try:
    os.ftruncate(fd, 0)
    print("truncated")
except OSError as e:
    print("ftruncate errno", e.errno)
)PY";
  auto forged = run({"setpriv", "--reuid=pat-test", "--regid=pat-test", "--init-groups", "/usr/bin/python3.11", "-c",
                     forge, std::to_string(host)});
  INFO(forged.err);
  REQUIRE(forged.exit_code == 0);
  CHECK(forged.out == "ftruncate errno 22\n");  // a pipe, not a file
  REQUIRE(eventually([&] { return patd.log().find("forged-by-owner") != std::string::npos; }));
  REQUIRE(patd.patctl_as("pat-test", {"group", "destroy", "forger"}).exit_code == 0);
  // The host's own lines arrive too, as host.log lines of its group.
  REQUIRE(eventually([&] { return patd.log().find("event=host.log group=forger") != std::string::npos; }));
  std::istringstream lines(patd.log());
  std::string line;
  int forged_lines = 0;
  while (std::getline(lines, line)) {
    if (line.find("forged-by-owner") == std::string::npos) continue;
    ++forged_lines;
    INFO(line);
    CHECK(line.find("event=host.log group=forger host_pid=" + std::to_string(host) + " text=\"") != std::string::npos);
  }
  CHECK(forged_lines == 1);
}

// Issue 13, 1.5: `group list` and `group show` failed with InternalError
// ("cannot use value() with null") while any group was starting.
TEST_CASE("group list and group show answer while other groups are starting") {
  PatdInstance patd;
  auto patctl = patd.patctl_command({});
  std::string prefix;
  for (const auto& word : patctl) prefix += "'" + word + "' ";
  Background churn({"/bin/sh", "-c",
                    "while :; do " + prefix + "group create churn >/dev/null; " + prefix +
                        "group destroy churn >/dev/null; done"},
                   patd.dir().path() + "/churn.out", patd.dir().path() + "/churn.err");
  int starting_seen = 0, failures = 0, calls = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (starting_seen < 3 && std::chrono::steady_clock::now() < deadline) {
    auto list = patd.patctl({"group", "list", "--json"});
    auto show = patd.patctl({"group", "show", "churn", "--json"});
    calls += 2;
    if (list.exit_code != 0) {
      ++failures;
      INFO(list.err);
      CHECK(list.exit_code == 0);
      continue;
    }
    for (const auto& group : json::parse(list.out)) starting_seen += group["state"] == "starting";
    // show: the group exists (0) or is between destroy and create (1, GroupNotFound); never 125.
    if (show.exit_code != 0 && show.err.find("io.pat.GroupNotFound") == std::string::npos) {
      ++failures;
      INFO(show.err);
      CHECK(show.exit_code == 0);
    }
  }
  INFO("calls ", calls, " while a group was starting ", starting_seen, " times");
  CHECK(failures == 0);
  CHECK(starting_seen >= 1);  // the race was there to be lost
}

// Issue 13, 1.8: `group destroy --force` gave some attached runs exit 1
// ("host not answering") instead of 143: the host closed its sessions before
// the spawn calls of members that ended together had sent their status.
TEST_CASE("destroy --force: every attached run exits 143, as its member did") {
  PatdInstance patd;
  constexpr int kRounds = 4, kRuns = 10;
  for (int round = 0; round < kRounds; ++round) {
    REQUIRE(patd.patctl({"group", "create", "forced"}).exit_code == 0);
    std::vector<Background> runs;
    for (int i = 0; i < kRuns; ++i) {
      std::string out = patd.dir().path() + "/run." + std::to_string(round) + "." + std::to_string(i);
      runs.emplace_back(patd.patctl_command({"run", "-g", "forced", "/bin/sleep", "60"}), out, out + ".err");
    }
    REQUIRE(eventually([&] { return patd.patctl_json({"group", "show", "forced"})["members"].size() == kRuns; }));
    REQUIRE(patd.patctl({"group", "destroy", "forced", "--force", "--grace-ms", "200"}).exit_code == 0);
    for (int i = 0; i < kRuns; ++i) {
      std::string err = patd.dir().path() + "/run." + std::to_string(round) + "." + std::to_string(i) + ".err";
      auto code = runs[i].wait(std::chrono::milliseconds(10'000));
      INFO("round ", round, " run ", i, ": ", read_file(err));
      CHECK(code == 143);
    }
  }
}
