// patctl group attach through the real patd: a running program of an
// unprivileged user moves into the user's group and goes on there, while
// its original PID keeps working for its parent and for kill(1); and the
// refusals (another user's process, a traced one, PID 1, a caller who does
// not own the group), each leaving the process running. The attach
// mechanism itself is tested in depth in tests/tracer/attach.
#include "tests/support/kcmp.h"
#include "tests/support/patd_instance.h"

#include <doctest/doctest.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace pat::testing;
using nlohmann::json;

namespace {

const char* const kUser = "pat-attach";
const char* const kOtherUser = "pat-attach-other";

std::string program(const char* name) { return std::string(ATTACH_PROGRAMS_DIR) + "/" + name; }

// A directory every test user may write to, removed with its contents.
struct SharedDir {
  SharedDir() {
    char pattern[] = "/tmp/pat-attach-XXXXXX";
    path = ::mkdtemp(pattern);
    ::chmod(path.c_str(), 01777);
  }
  ~SharedDir() { std::filesystem::remove_all(path); }
  std::string path;
};

// attach_parent running a target as `user` (attach_workload, or the
// Python one): the parent reports on its stdout what it sees of its child
// (tests/tracer/attach/programs). Both answer one-line commands on a socket.
class Workload {
 public:
  enum class Kind { C, Python };
  Workload(const SharedDir& dir, const std::string& user, const std::string& name, Kind kind = Kind::C)
      : socket_(dir.path + "/" + name + ".sock"), report_(dir.path + "/" + name + ".report"),
        parent_(command(dir, user, name, kind), report_, dir.path + "/" + name + ".err") {}

  // The workload first: killing only its parent (Background does) left it
  // running under init, a process per refused workload per run. Once
  // attached, its pid is the stub's, whose SIGKILL ends the member too.
  ~Workload() {
    if (pid_ == 0 && said("pipe ready")) (void)pid();
    if (pid_ > 0) ::kill(pid_, SIGKILL);
  }
  Workload(const Workload&) = delete;
  Workload& operator=(const Workload&) = delete;

  // The workload's pid, once it said it is ready.
  pid_t pid() {
    if (pid_ == 0) {
      REQUIRE(eventually([&] { return said("pipe ready"); }));
      std::istringstream in(read_file(report_));
      std::string word;
      in >> word >> pid_;
    }
    return pid_;
  }
  bool said(const std::string& line) const { return read_file(report_).find(line + "\n") != std::string::npos; }
  std::string report() const { return read_file(report_); }

  // One command on its socket, one line back.
  std::string ask(const std::string& command) const {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", socket_.c_str());
    std::string answer;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      std::string line = command + "\n";
      (void)!::write(fd, line.data(), line.size());
      char c;
      while (::read(fd, &c, 1) == 1 && c != '\n') answer += c;
    }
    ::close(fd);
    return answer;
  }

 private:
  std::vector<std::string> command(const SharedDir& dir, const std::string& user, const std::string& name, Kind kind) {
    std::vector<std::string> argv = {"setpriv", "--reuid=" + user, "--regid=" + user, "--init-groups",
                                     program("attach_parent")};
    if (kind == Kind::C) {
      argv.insert(argv.end(), {program("attach_workload"), socket_, dir.path + "/" + name + ".log"});
    } else {
      // A copy the user can read, wherever the source tree is.
      const std::string script = dir.path + "/attach_server.py";
      std::filesystem::copy_file(std::string(ATTACH_SOURCE_DIR) + "/programs/attach_server.py", script,
                                 std::filesystem::copy_options::overwrite_existing);
      ::chmod(script.c_str(), 0644);
      argv.insert(argv.end(), {"/usr/bin/python3.11", script, socket_});
    }
    return argv;
  }

  std::string socket_, report_;
  Background parent_;
  pid_t pid_ = 0;
};

json member_with_original(const json& group, pid_t original) {
  for (const auto& member : group.at("members")) {
    if (member.value("original_pid", 0) == original) return member;
  }
  return json();
}

}  // namespace

TEST_CASE("a user's running program moves into the user's group and its original PID keeps working") {
  ensure_test_user(kUser);
  PatdInstance patd;
  SharedDir dir;
  auto created = patd.patctl_as(kUser, {"group", "create", "work", "--json"});
  REQUIRE(created.exit_code == 0);
  const pid_t host = json::parse(created.out).at("host_pid").get<pid_t>();

  Workload first(dir, kUser, "first"), second(dir, kUser, "second");
  const pid_t a = first.pid(), b = second.pid();
  REQUIRE(first.ask("ping") == "pong");

  auto attached = patd.patctl_as(kUser, {"group", "attach", "work", std::to_string(a), std::to_string(b), "--json"});
  INFO("stderr: ", attached.err);
  REQUIRE(attached.exit_code == 0);
  auto reply = json::parse(attached.out);
  REQUIRE(reply.at("attached").size() == 2);
  const json& entry = reply["attached"][0];
  CHECK(entry["original_pid"] == a);
  CHECK(entry["threads"] == 5);
  CHECK(entry["stopped_seconds"].get<double>() > 0);
  CHECK(entry["bytes_copied"].get<std::uint64_t>() >= (4u << 20));  // its 4 MiB block at least
  const pid_t member = entry["pid"].get<pid_t>();

  // In the group's address space, under its own PID; the original answers.
  CHECK(kcmp(member, host, KCMP_VM) == Kcmp::Same);
  CHECK(kcmp(a, host, KCMP_VM) == Kcmp::Different);
  CHECK(first.ask("ping") == "pong");
  CHECK(second.ask("ping") == "pong");
  CHECK(first.ask("kill") == "kill rc=0 handled=yes");  // pthread_kill between its threads: glibc's TIDs moved

  auto shown = patd.patctl_json({"group", "show", "work"});
  json listed = member_with_original(shown, a);
  REQUIRE(listed.is_object());
  CHECK(listed["origin"] == "attached");
  CHECK(listed["pid"] == member);
  CHECK(listed["stub_pid"] == a);
  CHECK(member_with_original(shown, b).is_object());
  CHECK(patd.patctl_as(kUser, {"group", "show", "work"}).out.find("attached (pid " + std::to_string(a) + ")") !=
        std::string::npos);
  INFO("patd's log: ", patd.log());
  CHECK(patd.log().find("event=member.attach group=work pid=" + std::to_string(member)) != std::string::npos);

  // The member's exit is its parent's: the status, and EOF on the pipe
  // once the member is gone; the group records the exit.
  CHECK(first.ask("exit 7") == "bye");
  REQUIRE(eventually([&] { return first.said("exited 7"); }));
  CHECK(first.said("pipe_eof"));
  REQUIRE(eventually([&] {
    auto exits = patd.patctl_json({"group", "show", "work"})["recent_exits"];
    return !exits.empty() && exits[0]["pid"] == member && exits[0].value("exit_code", -1) == 7;
  }));

  // kill PID reaches the program.
  CHECK(::kill(b, SIGKILL) == 0);
  REQUIRE(eventually([&] { return second.said("signaled 9"); }));
  REQUIRE(eventually([&] { return patd.patctl_json({"group", "show", "work"})["members"].empty(); }));
  CHECK(process_alive(host));
  CHECK(patd.patctl_as(kUser, {"group", "destroy", "work"}).exit_code == 0);
}

TEST_CASE("two non-PIE python3.11: the first is attached, the second refused for its address, naming the first") {
  ensure_test_user(kUser);
  PatdInstance patd;
  SharedDir dir;
  REQUIRE(patd.patctl_as(kUser, {"group", "create", "py"}).exit_code == 0);
  Workload first(dir, kUser, "py1", Workload::Kind::Python), second(dir, kUser, "py2", Workload::Kind::Python);
  const pid_t a = first.pid(), b = second.pid();
  CHECK(first.ask("put answer 42") == "ok");

  auto attached = patd.patctl_as(kUser, {"group", "attach", "py", std::to_string(a), "--json"});
  INFO(attached.err);
  REQUIRE(attached.exit_code == 0);
  const pid_t member = json::parse(attached.out)["attached"][0]["pid"].get<pid_t>();
  CHECK(first.ask("get answer") == "value 42");
  CHECK(first.ask("pid") == "pid " + std::to_string(member) + " threads 2");

  auto refused = patd.patctl_as(kUser, {"group", "attach", "py", std::to_string(b)});
  CHECK(refused.exit_code == 1);
  CHECK(refused.err.find("io.pat.AddressConflict") != std::string::npos);
  CHECK(refused.err.find("taken by member " + std::to_string(member)) != std::string::npos);
  CHECK(second.ask("put k v") == "ok");
  CHECK(second.ask("get k") == "value v");
  CHECK(first.ask("exit 3") == "");
  REQUIRE(eventually([&] { return first.said("exited 3"); }));
}

TEST_CASE("attach refusals name their reason and leave every process running") {
  ensure_test_user(kUser);
  ensure_test_user(kOtherUser);
  PatdInstance patd;
  SharedDir dir;
  REQUIRE(patd.patctl_as(kUser, {"group", "create", "mine"}).exit_code == 0);
  Workload own(dir, kUser, "own"), others(dir, kOtherUser, "others");
  const pid_t pid = own.pid();

  auto refused = [&](const std::vector<std::string>& args, const std::string& error, const std::string& reason) {
    auto result = patd.patctl_as(kUser, args);
    INFO(result.err);
    CHECK(result.exit_code == 1);
    CHECK(result.err.find(error) != std::string::npos);
    CHECK(result.err.find(reason) != std::string::npos);
  };
  refused({"group", "attach", "mine", std::to_string(others.pid())}, "io.pat.NotAttachable", "not the group owner's");
  refused({"group", "attach", "mine", "1"}, "io.pat.NotAttachable", "init process");
  // All or none: the first is fine, the second is not; neither moves.
  refused({"group", "attach", "mine", std::to_string(pid), std::to_string(others.pid())}, "io.pat.NotAttachable",
          std::to_string(others.pid()));
  REQUIRE(::ptrace(PTRACE_SEIZE, pid, 0, 0) == 0);
  refused({"group", "attach", "mine", std::to_string(pid)}, "io.pat.NotAttachable", "traced by process");
  // A seized tracee is detached from a stop (ptrace(2)).
  REQUIRE(::ptrace(PTRACE_INTERRUPT, pid, 0, 0) == 0);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, __WALL) == pid);
  REQUIRE(::ptrace(PTRACE_DETACH, pid, 0, 0) == 0);
  auto intruder = patd.patctl_as(kOtherUser, {"group", "attach", "mine", std::to_string(others.pid())});
  CHECK(intruder.exit_code == 1);
  CHECK(intruder.err.find("io.pat.PermissionDenied") != std::string::npos);
  auto usage = patd.patctl_as(kUser, {"group", "attach", "mine"});
  CHECK(usage.exit_code == 125);

  CHECK(own.ask("ping") == "pong");
  CHECK(others.ask("ping") == "pong");
  CHECK(patd.patctl_json({"group", "show", "mine"})["members"].empty());
  // Untouched, it can still be attached.
  auto late = patd.patctl_as(kUser, {"group", "attach", "mine", std::to_string(pid)});
  INFO(late.err);
  CHECK(late.exit_code == 0);
  CHECK(own.ask("ping") == "pong");
  CHECK(own.ask("exit 0") == "bye");
  REQUIRE(eventually([&] { return own.said("exited 0"); }));
}
