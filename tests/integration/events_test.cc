// io.pat.Daemon.Events through the real patd: `patctl events --json`
// followers run as different users, a raw client that never reads, and a
// group lost to the kernel's OOM killer inside a memory cgroup.
#include "tests/support/patd_instance.h"
#include "tests/support/raw_client.h"
#include "tests/support/skip.h"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

using namespace pat::testing;
using nlohmann::json;

namespace {

// `patctl events --json` in the background, as `user` (root when nullopt);
// its output lines read back as JSON.
class Follower {
 public:
  Follower(const PatdInstance& patd, const std::string& name, std::optional<std::string> user,
           std::vector<std::string> extra = {})
      : out_(patd.dir().path() + "/events-" + name + ".out") {
    std::vector<std::string> args = {"events", "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    process_ = std::make_unique<Background>(patd.patctl_command(args, user), out_, out_ + ".err");
    // Nothing is published to a stream before its first reply.
    REQUIRE_MESSAGE(eventually([&] { return !with("event", "events.subscribed").empty(); }), read_file(out_ + ".err"));
  }

  std::vector<json> events() const {
    std::vector<json> out;
    std::istringstream lines(read_file(out_));
    for (std::string line; std::getline(lines, line);) {
      if (!line.empty()) out.push_back(json::parse(line));
    }
    return out;
  }
  std::vector<json> with(const std::string& key, const std::string& value) const {
    std::vector<json> out;
    for (auto& event : events()) {
      if (event.value(key, "") == value) out.push_back(event);
    }
    return out;
  }
  bool saw(const std::string& kind, const std::string& group) const {
    for (const auto& event : with("event", kind)) {
      if (event.value("group", "") == group) return true;
    }
    return false;
  }
  std::set<std::string> groups_seen() const {
    std::set<std::string> groups;
    for (const auto& event : events()) {
      if (event.contains("group")) groups.insert(event["group"].get<std::string>());
    }
    return groups;
  }

 private:
  std::string out_;
  std::unique_ptr<Background> process_;
};

// A memory cgroup (v1) limited to `limit` bytes, removed on destruction once
// empty. nullopt-like: !usable() where the v1 memory controller is absent.
class MemoryCgroup {
 public:
  MemoryCgroup(const std::string& name, std::uint64_t limit)
      : path_("/sys/fs/cgroup/memory/" + name) {
    if (!std::filesystem::exists("/sys/fs/cgroup/memory/memory.limit_in_bytes")) return;
    if (::mkdir(path_.c_str(), 0755) != 0) return;
    usable_ = write("memory.limit_in_bytes", std::to_string(limit));
    // Without swap accounting the limit could be met by swapping instead.
    if (std::filesystem::exists(path_ + "/memory.memsw.limit_in_bytes")) {
      usable_ = usable_ && write("memory.memsw.limit_in_bytes", std::to_string(limit));
    }
  }
  ~MemoryCgroup() {
    eventually([&] { return ::rmdir(path_.c_str()) == 0 || errno == ENOENT; }, std::chrono::milliseconds(5'000));
  }
  bool usable() const { return usable_; }
  bool add(pid_t pid) { return write("cgroup.procs", std::to_string(pid)); }

 private:
  bool write(const std::string& file, const std::string& value) {
    std::ofstream out(path_ + "/" + file);
    out << value << std::flush;
    return static_cast<bool>(out);
  }
  std::string path_;
  bool usable_ = false;
};

}  // namespace

TEST_CASE("events: each user follows only their own groups; root follows all") {
  ensure_test_user("pat-test");
  ensure_test_user("pat-test2");
  PatdInstance patd;
  Follower root(patd, "root", std::nullopt);
  Follower alice(patd, "alice", "pat-test");
  Follower bob(patd, "bob", "pat-test2");

  REQUIRE(patd.patctl_as("pat-test", {"group", "create", "ev-a"}).exit_code == 0);
  REQUIRE(patd.patctl_as("pat-test2", {"group", "create", "ev-b"}).exit_code == 0);
  // Following someone else's group by name is refused.
  auto intrude = patd.patctl_as("pat-test", {"events", "--group", "ev-b"});
  CHECK(intrude.exit_code == 1);
  CHECK(intrude.err.find("io.pat.PermissionDenied") != std::string::npos);

  CHECK(patd.patctl_as("pat-test", {"run", "-g", "ev-a", "--", "/bin/sh", "-c", "exit 3"}).exit_code == 3);
  CHECK(patd.patctl_as("pat-test", {"run", "-g", "ev-a", "--", "/nonexistent/program"}).exit_code != 0);
  CHECK(patd.patctl_as("pat-test2", {"run", "-g", "ev-b", "--", "/bin/true"}).exit_code == 0);
  REQUIRE(patd.patctl_as("pat-test", {"group", "destroy", "ev-a"}).exit_code == 0);
  REQUIRE(patd.patctl_as("pat-test2", {"group", "destroy", "ev-b"}).exit_code == 0);

  REQUIRE(eventually([&] { return root.saw("group.destroy", "ev-a") && root.saw("group.destroy", "ev-b"); }));
  REQUIRE(eventually([&] { return alice.saw("group.destroy", "ev-a") && bob.saw("group.destroy", "ev-b"); }));

  CHECK(alice.groups_seen() == std::set<std::string>{"ev-a"});
  CHECK(bob.groups_seen() == std::set<std::string>{"ev-b"});
  CHECK(root.groups_seen() == std::set<std::string>{"ev-a", "ev-b"});

  // What alice saw, in order, with what each kind carries.
  std::vector<std::string> kinds;
  for (const auto& event : alice.events()) kinds.push_back(event["event"]);
  CHECK(kinds == std::vector<std::string>{"events.subscribed", "group.create", "member.start", "member.exit",
                                          "member.refused", "group.destroy"});
  auto exit = alice.with("event", "member.exit").at(0);
  CHECK(exit["exit"]["exit_code"] == 3);
  CHECK(exit["member"]["argv"] == json{"/bin/sh", "-c", "exit 3"});
  auto refused = alice.with("event", "member.refused").at(0);
  CHECK(refused["program"] == "/nonexistent/program");
  CHECK(refused["error"] == "io.pat.ProgramNotFound");
  CHECK(alice.with("event", "group.create").at(0)["host_pid"].get<int>() > 0);
  CHECK(alice.with("event", "group.destroy").at(0)["reason"] == "destroyed");
}

TEST_CASE("events: a reader that stops reading never stalls patd and is told what it missed") {
  PatdOptions options;
  options.extra_args.insert(options.extra_args.end(), {"--event-queue-length", "8"});
  PatdInstance patd(std::make_shared<RuntimeDirectory>(), options);
  REQUIRE(patd.patctl({"group", "create", "slow"}).exit_code == 0);
  RawClient reader(patd.socket());
  REQUIRE(reader.write_all(std::string(R"({"method":"io.pat.Daemon.Events","more":true})") + '\0'));
  auto subscribed = reader.read_frame();
  REQUIRE(subscribed);
  CHECK(json::parse(*subscribed)["parameters"]["event"] == "events.subscribed");

  // Each refusal names a ~4 KiB program path twice (program, reason): the
  // socket buffer, patd's 64 KiB backlog and the 8-event queue fill well
  // before 120 of them.
  std::string missing = "/nonexistent";
  while (missing.size() < 4000) missing += "/" + std::string(200, 'x');
  constexpr int kRefusals = 120;
  for (int i = 0; i < kRefusals; ++i) {
    REQUIRE(patd.patctl({"run", "-g", "slow", "--", missing + std::to_string(i)}).exit_code != 0);
  }
  // patd kept serving everyone else the whole time.
  auto status = patd.patctl({"status"}, RunOptions{.timeout = std::chrono::milliseconds(2'000)});
  CHECK(status.exit_code == 0);

  // Now read: the events that fit, then events.missed in the gap's place.
  int received = 0;
  std::uint64_t missed = 0;
  bool gap_seen = false;
  while (received + static_cast<int>(missed) < kRefusals) {
    auto frame = reader.read_frame();
    REQUIRE(frame);
    auto event = json::parse(*frame).at("parameters");
    if (event["event"] == "events.missed") {
      missed += event["missed"].get<std::uint64_t>();
      gap_seen = true;
    } else {
      REQUIRE(event["event"] == "member.refused");
      CHECK_FALSE(gap_seen);  // nothing queued before the gap comes after it
      ++received;
    }
  }
  CHECK(missed > 0);
  CHECK(received >= 8);
  CHECK(received + missed == kRefusals);
  // Caught up: the next event arrives in full.
  REQUIRE(patd.patctl({"run", "-g", "slow", "--", "/nonexistent/after"}).exit_code != 0);
  auto after = reader.read_frame();
  REQUIRE(after);
  CHECK(json::parse(*after)["parameters"]["program"] == "/nonexistent/after");
  CHECK(patd.patctl({"group", "destroy", "slow"}).exit_code == 0);
}

TEST_CASE("events: a group lost to the OOM killer is one group.oom and not a SIGKILL per member") {
  PatdInstance patd;
  auto created = patd.patctl_json({"group", "create", "oom"});
  pid_t host = created.at("host_pid").get<pid_t>();
  MemoryCgroup cgroup("pat-events-test-" + std::to_string(::getpid()), 96 << 20);
  if (!cgroup.usable()) {
    patd.patctl({"group", "destroy", "oom", "--force"});
    PAT_SKIP("no writable cgroup v1 memory controller to confine the group in");
  }
  // Members are the host's clone children: they start in its cgroup.
  REQUIRE(cgroup.add(host));
  Follower follower(patd, "oom", std::nullopt, {"--group", "oom"});
  patd.run_detached("oom", {"/bin/sleep", "300"});
  patd.run_detached("oom", {"/bin/sleep", "300"});
  REQUIRE(eventually([&] { return follower.with("event", "member.start").size() == 2; }));
  // Writes 256 MiB into the shared address space: the cgroup's limit is
  // 96 MiB, and the kernel kills everything sharing that mm.
  patd.patctl({"run", "-g", "oom", "--", "/usr/bin/python3.11", "-c", "x = b'x' * (256 << 20)"});

  REQUIRE(eventually([&] { return follower.saw("group.destroy", "oom"); }, std::chrono::milliseconds(20'000)));
  auto ooms = follower.with("event", "group.oom");
  INFO(follower.events().size(), " events; patd log: ", patd.log());
  REQUIRE(ooms.size() == 1);
  CHECK(ooms[0]["host_pid"] == host);
  CHECK(ooms[0]["members"].get<int>() >= 2);
  CHECK(ooms[0]["reason"].get<std::string>().find("Killed process") != std::string::npos);
  CHECK(follower.with("event", "host.died").empty());
  CHECK_FALSE(process_alive(host));
}
