// The container sidecar of deploy/kubernetes/pat-sidecar.yaml, reproduced on
// one machine with Linux namespaces, as a container runtime would build it:
//  - a "pod": a PID namespace of its own whose init is a sleeping process
//    (the pause container); everything in it dies with it;
//  - the patd container: its own mount namespace (private /run, /tmp and
//    /proc) with the runtime directory, the Pod's emptyDir, at /run/patd;
//    patd runs as root with exactly the capabilities the manifest adds, with
//    no_new_privs, under the capability-dependent rules of the runtime's
//    default seccomp profile (programs/runtime_default_seccomp.c);
//  - the application container: another mount namespace in the same PID
//    namespace, sharing only /run/patd, running patctl as an ordinary user.
// The binaries come from the build tree, which both "containers" see, as two
// containers of one image would.
#include "tests/support/patd_instance.h"

#include <doctest/doctest.h>
#include <linux/capability.h>
#include <pwd.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

using namespace pat::testing;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const char* const kManifest = PAT_SOURCE_DIR "/deploy/kubernetes/pat-sidecar.yaml";
const char* const kApplicationUser = "pat-test";

// The capabilities the manifest's patd container adds to an empty set: the
// items of the first `add:` list, comments skipped.
std::vector<std::string> manifest_capabilities() {
  std::ifstream manifest(kManifest);
  REQUIRE(manifest.good());
  std::vector<std::string> capabilities;
  bool in_list = false;
  static const std::regex add_line(R"(^\s*add:\s*$)"), item(R"(^\s*-\s*([A-Z_]+)\s*(#.*)?$)"),
      comment(R"(^\s*(#.*)?$)");
  for (std::string line; std::getline(manifest, line);) {
    std::smatch match;
    if (!in_list) {
      in_list = std::regex_match(line, add_line);
    } else if (std::regex_match(line, match, item)) {
      capabilities.push_back(match[1]);
    } else if (!std::regex_match(line, comment)) {
      break;
    }
  }
  REQUIRE_FALSE(capabilities.empty());
  return capabilities;
}

// Bit numbers from linux/capability.h, for the names the manifest may use.
int capability_bit(const std::string& name) {
  static const std::map<std::string, int> bits = {
      {"CHOWN", CAP_CHOWN},
      {"DAC_OVERRIDE", CAP_DAC_OVERRIDE},
      {"DAC_READ_SEARCH", CAP_DAC_READ_SEARCH},
      {"FOWNER", CAP_FOWNER},
      {"KILL", CAP_KILL},
      {"SETGID", CAP_SETGID},
      {"SETUID", CAP_SETUID},
      {"SETPCAP", CAP_SETPCAP},
      {"SYS_PTRACE", CAP_SYS_PTRACE},
      {"SYS_ADMIN", CAP_SYS_ADMIN},
      {"CHECKPOINT_RESTORE", CAP_CHECKPOINT_RESTORE},
  };
  auto it = bits.find(name);
  INFO("capability ", name);
  REQUIRE(it != bits.end());
  return it->second;
}

std::string capability_mask(const std::vector<std::string>& names) {
  std::uint64_t mask = 0;
  for (const auto& name : names) mask |= std::uint64_t{1} << capability_bit(name);
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(mask));
  return text;
}

// setpriv(1)'s spelling: "-all,+chown,+kill".
std::string setpriv_capabilities(const std::vector<std::string>& names) {
  std::string spec = "-all";
  for (auto name : names) {
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    spec += ",+" + name;
  }
  return spec;
}

std::vector<std::string> without(std::vector<std::string> names, const std::string& dropped) {
  std::erase(names, dropped);
  return names;
}

std::string namespace_of(pid_t pid, const std::string& kind) {
  std::error_code ec;
  return fs::read_symlink("/proc/" + std::to_string(pid) + "/ns/" + kind, ec).string();
}

// The one child of `parent` (nsenter forks the process that enters the PID
// namespace, and waits for it).
std::optional<pid_t> only_child(pid_t parent) {
  std::istringstream children(read_file("/proc/" + std::to_string(parent) + "/task/" + std::to_string(parent) +
                                        "/children"));
  pid_t child = 0;
  if (children >> child) return child;
  return std::nullopt;
}

// A PID namespace whose init sleeps, like a Pod's pause container. When the
// test ends, unshare is killed, --kill-child takes the init with it, and the
// kernel kills everything else in the namespace.
class Pod {
 public:
  explicit Pod(const std::string& log_dir)
      : init_({"unshare", "--pid", "--fork", "--kill-child", "--", "sleep", "infinity"}, log_dir + "/pod.out",
              log_dir + "/pod.err") {
    bool ready = eventually([this] {
      return only_child(init_.pid()).has_value() &&
             namespace_of(init_.pid(), "pid_for_children") != namespace_of(::getpid(), "pid");
    });
    REQUIRE(ready);
  }

  std::string pid_namespace() const { return namespace_of(init_.pid(), "pid_for_children"); }

  // argv running `command` as a container of this Pod: in the Pod's PID
  // namespace and a mount namespace of its own (private propagation, so
  // nothing leaks back), with its own /run, /tmp and /proc, and `shared` (the
  // emptyDir) at /run/patd.
  std::vector<std::string> container(const std::string& shared, const std::vector<std::string>& command) const {
    static const char* const kSetUp =
        "set -e\n"
        "mount -t tmpfs -o mode=0755 container-run /run\n"
        "mkdir /run/patd\n"
        "mount --bind \"$1\" /run/patd\n"
        "mount -t tmpfs -o mode=1777 container-tmp /tmp\n"
        "mount -t proc proc /proc\n"
        "shift\n"
        "cd /\n"
        "exec \"$@\"\n";
    std::vector<std::string> argv = {"nsenter", "--pid=/proc/" + std::to_string(init_.pid()) + "/ns/pid_for_children",
                                     "--", "unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
                                     kSetUp, "container", shared};
    argv.insert(argv.end(), command.begin(), command.end());
    return argv;
  }

 private:
  Background init_;
};

// The Pod of the manifest: patd in its container, with `capabilities`.
class Sidecar {
 public:
  explicit Sidecar(const std::vector<std::string>& capabilities) : pod_(logs_.path()) {
    auto patd_command = pod_.container(
        shared_.path(), {"setpriv", "--bounding-set=" + setpriv_capabilities(capabilities), "--inh-caps=-all",
                         "--no-new-privs", "--", RUNTIME_DEFAULT_SECCOMP, patd_binary(), "--runtime-dir",
                         "/run/patd", "--socket-mode", "0666", "--log-level", "debug"});
    patd_ = std::make_unique<Background>(patd_command, log_path(), log_path());
    bool up = eventually([this] {
      return run({patctl_binary(), "--socket", shared_.socket(), "status"}).exit_code == 0;
    });
    if (!up) FAIL("patd did not come up in its container; its log:\n", log());
    auto child = only_child(patd_->pid());
    REQUIRE(child.has_value());
    patd_pid_ = *child;
  }

  pid_t patd_pid() const { return patd_pid_; }
  std::string pod_pid_namespace() const { return pod_.pid_namespace(); }
  std::string log() const { return read_file(log_path()); }
  const RuntimeDirectory& shared() const { return shared_; }
  const std::string& scratch() const { return logs_.path(); }

  // patctl ARGS, run as the application user in an application container.
  std::vector<std::string> application(const std::vector<std::string>& patctl_args) const {
    std::vector<std::string> command = {"setpriv", "--reuid=" + std::string(kApplicationUser),
                                        "--regid=" + std::string(kApplicationUser), "--init-groups", "--",
                                        patctl_binary()};
    command.insert(command.end(), patctl_args.begin(), patctl_args.end());
    return pod_.container(shared_.path(), command);
  }
  Completed patctl(const std::vector<std::string>& args) const { return run(application(args)); }
  json group(const std::string& name) const {
    auto shown = patctl({"group", "show", name, "--json"});
    INFO("group show: ", shown.err);
    REQUIRE(shown.exit_code == 0);
    return json::parse(shown.out);
  }

 private:
  std::string log_path() const { return logs_.path() + "/patd.log"; }

  RuntimeDirectory logs_;    // declared first: destroyed last, after the Pod
  RuntimeDirectory shared_;  // the emptyDir
  Pod pod_;
  std::unique_ptr<Background> patd_;  // nsenter; patd is its child
  pid_t patd_pid_ = -1;
};

}  // namespace

TEST_CASE("the sidecar: patctl in the application container runs members through patd in its own container") {
  ensure_test_user(kApplicationUser);
  auto capabilities = manifest_capabilities();
  Sidecar pod(capabilities);

  // patd holds exactly the manifest's capabilities, with no_new_privs.
  CHECK(proc_status_field(pod.patd_pid(), "CapEff") == capability_mask(capabilities));
  CHECK(proc_status_field(pod.patd_pid(), "CapBnd") == capability_mask(capabilities));
  CHECK(proc_status_field(pod.patd_pid(), "NoNewPrivs") == "1");

  REQUIRE(pod.patctl({"group", "create", "app"}).exit_code == 0);

  // A pat-python member whose pat.Executor starts two more members through
  // the same socket path, which the member (in patd's container) sees too.
  auto python = pod.patctl({"run", "--group", "app", "--", bin_dir() + "/pat-python", "-c",
                            "import os, pat\n"
                            "print('group', os.environ['PAT_GROUP'], 'socket', os.environ['PATD_SOCKET'])\n"
                            "with pat.Executor(max_workers=2) as executor:\n"
                            "    print('squares', sum(executor.map(pow, range(10), [2] * 10)))\n"});
  INFO("pat-python member: ", python.err, "\npatd log:\n", pod.log());
  CHECK(python.exit_code == 0);
  CHECK(python.out == "group app socket /run/patd/patd.sock\nsquares 285\n");

  auto group = pod.group("app");
  CHECK(group["owner_uid"] == ::getpwnam(kApplicationUser)->pw_uid);
  CHECK(group["recent_exits"].size() >= 3);  // the script and its two workers

  // A member whose patctl is killed: the member gets SIGHUP, as from a
  // terminal that hangs up.
  std::string out = pod.scratch() + "/sleeper.out";
  const json kSleeper = std::vector<std::string>{"/bin/sleep", "600"};
  Background sleeper(pod.application({"run", "--group", "app", "--", "/bin/sleep", "600"}), out, out);
  json seen;
  INFO("patctl run /bin/sleep: ", read_file(out), "\nlast group show: ", seen.dump());
  REQUIRE(eventually([&] {
    seen = pod.group("app");  // a named copy: a range-for over a temporary's member would dangle
    for (const auto& m : seen["members"]) {
      if (m["argv"] == kSleeper) return true;
    }
    return false;
  }));
  auto patctl = only_child(sleeper.pid());
  REQUIRE(patctl.has_value());
  CHECK(fs::read_symlink("/proc/" + std::to_string(*patctl) + "/exe") == fs::path(patctl_binary()));

  // The namespaces are what the manifest describes: one PID namespace for
  // the Pod, a mount namespace per container, neither of them the test's.
  CHECK(namespace_of(*patctl, "pid") == pod.pod_pid_namespace());
  CHECK(namespace_of(pod.patd_pid(), "pid") == pod.pod_pid_namespace());
  CHECK(namespace_of(pod.patd_pid(), "pid") != namespace_of(::getpid(), "pid"));
  CHECK(namespace_of(*patctl, "mnt") != namespace_of(pod.patd_pid(), "mnt"));
  CHECK(namespace_of(*patctl, "mnt") != namespace_of(::getpid(), "mnt"));
  CHECK(namespace_of(pod.patd_pid(), "mnt") != namespace_of(::getpid(), "mnt"));

  REQUIRE(::kill(*patctl, SIGKILL) == 0);
  json ended;
  bool hung_up = eventually([&] {
    seen = pod.group("app");  // a named copy: a range-for over a temporary's member would dangle
    for (const auto& exit : seen["recent_exits"]) {
      if (exit["argv"] == kSleeper) ended = exit;
    }
    return !ended.is_null();
  });
  INFO("patd log:\n", pod.log());
  REQUIRE(hung_up);
  CHECK(ended.value("signal", 0) == SIGHUP);

  CHECK(pod.patctl({"group", "destroy", "app"}).exit_code == 0);
}

// Each capability the manifest gives patd, taken away in turn, breaks what
// its comment there says. So the list holds nothing patd does not need, and
// its reasons are true. (The manifest's list is checked to be enough by the
// test case above.)
TEST_CASE("the sidecar: without any one of the manifest's capabilities, pat breaks where the manifest says") {
  ensure_test_user(kApplicationUser);
  auto capabilities = manifest_capabilities();
  // Creating a group as the application user starts its host: these fail
  // there, each with the step it could not do.
  struct Refusal {
    int exit_code;  // 125: io.pat.InternalError, 1: io.pat.GroupUnavailable
    std::string message;
  };
  const std::map<std::string, Refusal> fails_group_create = {
      {"SETUID", {125, "setresuid: Operation not permitted"}},
      {"SETGID", {125, "setgroups: Operation not permitted"}},
      {"SETPCAP", {125, "drop capabilities: Operation not permitted"}},
      {"CHOWN", {125, "chown /run/patd/groups/g: Operation not permitted"}},
      {"DAC_OVERRIDE", {1, "/run/patd/groups/g/host.sock: Permission denied"}},
  };
  for (const auto& capability : capabilities) {
    CAPTURE(capability);
    Sidecar pod(without(capabilities, capability));
    auto created = pod.patctl({"group", "create", "g"});
    if (auto expected = fails_group_create.find(capability); expected != fails_group_create.end()) {
      CHECK(created.exit_code == expected->second.exit_code);
      CHECK(created.err.find(expected->second.message) != std::string::npos);
      continue;
    }
    INFO("group create: ", created.err, "\npatd log:\n", pod.log());
    REQUIRE(created.exit_code == 0);
    if (capability == "SYS_PTRACE") {
      // The runtime's default seccomp profile then refuses pidfd_getfd, which
      // the host needs to map a member's libraries.
      auto ran = pod.patctl({"run", "--group", "g", "--", "/bin/true"});
      CHECK(ran.exit_code == 127);
      CHECK(ran.err.find("error while loading shared libraries") != std::string::npos);
    } else if (capability == "KILL") {
      // A host that no longer answers (its socket is gone) is killed on
      // `destroy --force`; without CAP_KILL patd tries and the host lives on.
      // The host's pid as this test sees it (group show gives the Pod's).
      auto hosts = pod.shared().host_pids();
      REQUIRE(hosts.size() == 1);
      pid_t host = hosts.front();
      REQUIRE(::unlink((pod.shared().path() + "/groups/g/host.sock").c_str()) == 0);
      std::string out = pod.scratch() + "/destroy.out";
      Background destroy(pod.application({"group", "destroy", "g", "--force", "--grace-ms", "0"}), out, out);
      REQUIRE(eventually([&] { return pod.log().find("event=group.kill group=g") != std::string::npos; }));
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      CHECK(process_alive(host));
    } else {
      FAIL("the manifest adds ", capability, ", which this test does not know how to do without");
    }
  }
}
