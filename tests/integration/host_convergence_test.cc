// patd's view of its hosts converges to the truth (issue 13, 1.2): a host
// patd does not list does not exist, a host that exited is reaped, and a
// group patd lists has a live host. The probe found hosts leaked (running,
// no directory, unknown to every patd) and zombie hosts under patd when
// patd ran short of descriptors while creating and destroying groups; these
// tests make it run short at every step of Group.Create, deterministically,
// by lowering patd's RLIMIT_NOFILE with prlimit(2).
#include "tests/support/patd_instance.h"
#include "tests/support/raw_client.h"

#include <doctest/doctest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

using namespace pat::testing;
using nlohmann::json;
using std::chrono::milliseconds;

namespace {

// A /proc file's text; empty when the process went away meanwhile.
std::string read_or_empty(const std::filesystem::path& path) {
  std::ifstream file(path);
  std::stringstream text;
  try {
    text << file.rdbuf();
  } catch (const std::exception&) {
    return {};
  }
  return file ? text.str() : std::string();
}

struct HostProcess {
  pid_t pid;
  pid_t parent;
  bool zombie;
};

// Whether `cmdline` is a pat-host's of a group in `runtime_dir`: its
// arguments (--group-dir) until it sets its title, then the title
// "pat: group NAME" (daemon/host/process_title.h), which names no directory:
// those count as this patd's when they are its children.
bool host_command_line(const std::string& cmdline, const std::string& runtime_dir, pid_t parent, pid_t patd) {
  if (cmdline.find(std::string("--group-dir") + '\0' + runtime_dir + "/groups/") != std::string::npos) return true;
  return parent == patd && cmdline.starts_with("pat: group ");
}

// Every pat-host serving a group of `runtime_dir`, found through /proc,
// whatever patd thinks: a leaked host has no socket and no directory left to
// be found by. Zombies have no cmdline: those are found as patd's children
// in state Z.
std::vector<HostProcess> hosts_on_machine(const std::string& runtime_dir, pid_t patd) {
  std::vector<HostProcess> found;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = std::stoi(name);
    std::string stat = read_or_empty(entry.path() / "stat");
    auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    char state = 0;
    pid_t parent = 0;
    rest >> state >> parent;
    std::string cmdline = read_or_empty(entry.path() / "cmdline");
    bool ours = host_command_line(cmdline, runtime_dir, parent, patd);
    if (ours || (state == 'Z' && parent == patd)) found.push_back({pid, parent, state == 'Z'});
  }
  return found;
}

// The descriptors patd holds now.
std::set<int> open_fds(pid_t pid) {
  std::set<int> fds;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    fds.insert(std::stoi(entry.path().filename()));
  }
  return fds;
}

// An RLIMIT_NOFILE under which `pid` can open exactly `spare` more
// descriptors (the kernel hands out the lowest free number below the limit).
rlim_t limit_leaving(pid_t pid, unsigned spare) {
  auto used = open_fds(pid);
  rlim_t limit = 0;
  for (unsigned free = 0; free < spare || used.contains(static_cast<int>(limit)); ++limit) {
    if (!used.contains(static_cast<int>(limit))) ++free;
  }
  return limit;
}

void set_fd_limit(pid_t pid, rlim_t soft, rlim_t hard) {
  rlimit limit{soft, hard};
  REQUIRE(::prlimit(pid, RLIMIT_NOFILE, &limit, nullptr) == 0);
}

json call(RawClient& client, const json& message) {
  REQUIRE(client.write_all(message.dump() + std::string(1, '\0')));
  auto reply = client.read_frame(milliseconds(30'000));
  REQUIRE(reply.has_value());
  return json::parse(*reply);
}

// patd's hosts and the machine's agree: every live host is listed, every
// listed group's host is alive, and no host is left unreaped.
bool converged(const PatdInstance& patd, std::string& why) {
  std::set<pid_t> listed;
  for (const auto& group : patd.patctl_json({"group", "list"})) listed.insert(group["host_pid"].get<pid_t>());
  std::set<pid_t> alive;
  std::ostringstream out;
  for (const auto& host : hosts_on_machine(patd.dir().path(), patd.pid())) {
    if (host.zombie) out << "zombie host " << host.pid << "; ";
    else alive.insert(host.pid);
  }
  for (pid_t pid : alive) {
    if (!listed.contains(pid)) out << "host " << pid << " runs but patd does not list it; ";
  }
  for (pid_t pid : listed) {
    if (!alive.contains(pid)) out << "patd lists host " << pid << ", which is not running; ";
  }
  why = out.str();
  return why.empty();
}

}  // namespace

TEST_CASE("patd short of descriptors at any step of Group.Create leaks no host and leaves no zombie") {
  PatdInstance patd;
  RawClient client(patd.socket());
  REQUIRE(client.connected());
  REQUIRE(call(client, {{"method", "io.pat.Daemon.Status"}}).contains("parameters"));  // accepted
  // A hundred idle connections first: the limit must stay above 100 for the
  // host's own start (it inherits it; run_child moves fds to 100 and up).
  std::vector<RawClient> idle;
  for (int i = 0; i < 110; ++i) idle.emplace_back(patd.socket());
  REQUIRE(eventually([&] { return open_fds(patd.pid()).size() > 110; }));
  rlimit original{};
  REQUIRE(::prlimit(patd.pid(), RLIMIT_NOFILE, nullptr, &original) == 0);

  // From no spare descriptor to more than a create needs: each run of
  // patd's create, start_host, exit watch, readiness wait, Describe and
  // Watch fails in turn, then none does.
  for (unsigned spare = 0; spare <= 12; ++spare) {
    CAPTURE(spare);
    std::string name = "fd" + std::to_string(spare);
    set_fd_limit(patd.pid(), limit_leaving(patd.pid(), spare), original.rlim_max);
    json reply = call(client, {{"method", "io.pat.Group.Create"}, {"parameters", {{"name", name}}}});
    set_fd_limit(patd.pid(), original.rlim_cur, original.rlim_max);
    INFO(reply.dump());
    // Either created, or a clear error: never a group that is half there.
    if (reply.contains("error")) {
      CHECK(reply["error"] == "io.pat.InternalError");
      CHECK(patd.patctl({"group", "show", name}).exit_code != 0);
    } else {
      CHECK(patd.patctl({"group", "show", name}).exit_code == 0);
    }
    std::string why;
    bool agreed = eventually([&] { return converged(patd, why); }, milliseconds(5'000));
    CHECK_MESSAGE(agreed, why);
  }
  // Short of descriptors once the host runs, while patd waits for it to be
  // ready, asks it to Describe itself and opens its Watch stream.
  for (unsigned spare = 0; spare <= 3; ++spare) {
    CAPTURE(spare);
    std::string name = "late" + std::to_string(spare);
    REQUIRE(client.write_all(json{{"method", "io.pat.Group.Create"}, {"parameters", {{"name", name}}}}.dump() +
                             std::string(1, '\0')));
    const std::string group_dir = patd.dir().path() + "/groups/" + name;
    REQUIRE(eventually([&] {
      for (const auto& host : hosts_on_machine(patd.dir().path(), patd.pid())) {
        std::string cmdline = read_or_empty("/proc/" + std::to_string(host.pid) + "/cmdline");
        if (cmdline.find(group_dir) != std::string::npos || cmdline == "pat: group " + name + '\0') {
          return true;
        }
      }
      return false;
    }, milliseconds(10'000)));
    set_fd_limit(patd.pid(), limit_leaving(patd.pid(), spare), original.rlim_max);
    auto reply = client.read_frame(milliseconds(30'000));
    set_fd_limit(patd.pid(), original.rlim_cur, original.rlim_max);
    REQUIRE(reply.has_value());
    INFO(*reply);
    std::string why;
    bool agreed = eventually([&] { return converged(patd, why); }, milliseconds(5'000));
    CHECK_MESSAGE(agreed, why);
  }
  // And patd still creates and destroys groups.
  CHECK(patd.patctl({"group", "create", "after"}).exit_code == 0);
  for (const auto& group : patd.patctl_json({"group", "list"})) {
    CHECK(patd.patctl({"group", "destroy", group["name"].get<std::string>()}).exit_code == 0);
  }
  std::string why;
  CHECK_MESSAGE(eventually([&] { return converged(patd, why); }, milliseconds(5'000)), why);
  CHECK(patd.patctl_json({"group", "list"}).empty());
  // Leaked hosts have no socket for the fixture to find them by.
  for (const auto& host : hosts_on_machine(patd.dir().path(), patd.pid())) ::kill(host.pid, SIGKILL);
}
