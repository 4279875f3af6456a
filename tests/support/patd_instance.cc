#include "tests/support/patd_instance.h"

#include <doctest/doctest.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>

namespace pat::testing {

std::string bin_dir() { return PAT_BIN_DIR; }
std::string patd_binary() { return bin_dir() + "/patd"; }
std::string patctl_binary() { return bin_dir() + "/patctl"; }

namespace {

// pid of the process listening on a Unix socket, via SO_PEERCRED.
std::optional<pid_t> listener_pid(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path)) return std::nullopt;
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  std::optional<pid_t> pid;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) {
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) pid = cred.pid;
  }
  ::close(fd);
  return pid;
}

}  // namespace

RuntimeDirectory::RuntimeDirectory() {
  char templ[] = "/tmp/pat-test-XXXXXX";
  REQUIRE(::mkdtemp(templ) != nullptr);
  path_ = templ;
}

std::vector<pid_t> RuntimeDirectory::host_pids() const {
  std::vector<pid_t> pids;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(path_ + "/groups", ec)) {
    if (auto pid = listener_pid(entry.path().string() + "/host.sock")) pids.push_back(*pid);
  }
  return pids;
}

RuntimeDirectory::~RuntimeDirectory() {
  // Members die with their host (PR_SET_PDEATHSIG), so killing hosts is enough.
  for (pid_t pid : host_pids()) ::kill(pid, SIGKILL);
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

PatdInstance::PatdInstance(std::shared_ptr<RuntimeDirectory> dir, PatdOptions options)
    : dir_(std::move(dir)), bin_dir_(options.bin_dir) {
  log_path_ = dir_->path() + "/patd.log";
  std::vector<std::string> argv = {bin_dir_ + "/patd", "--runtime-dir", dir_->path(), "--log-level", "debug"};
  argv.insert(argv.end(), options.extra_args.begin(), options.extra_args.end());
  process_ = std::make_unique<Background>(argv, log_path_, log_path_, options.env, options.passed_fds);
  if (options.wait_for_socket) {
    bool up = eventually([this] { return answering(); });
    if (!up) FAIL("patd did not come up; its log:\n", log());
  }
}

PatdInstance::~PatdInstance() {
  if (process_ && process_->wait(std::chrono::milliseconds(0)) == std::nullopt) {
    process_->signal(SIGTERM);
    if (!process_->wait(std::chrono::milliseconds(5'000))) process_->signal(SIGKILL);
  }
}

std::string PatdInstance::log() const { return read_file(log_path_); }

bool PatdInstance::answering() const {
  return patctl({"status"}, RunOptions{.timeout = std::chrono::milliseconds(5'000)}).exit_code == 0;
}

Completed PatdInstance::patctl(const std::vector<std::string>& args, const RunOptions& options) const {
  std::vector<std::string> argv = {bin_dir_ + "/patctl", "--socket", socket()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, options);
}

Completed PatdInstance::patctl_as(const std::string& user, const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"setpriv", "--reuid=" + user, "--regid=" + user, "--init-groups",
                                   bin_dir_ + "/patctl", "--socket", socket()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv);
}

nlohmann::json PatdInstance::patctl_json(const std::vector<std::string>& args) const {
  auto with_json = args;
  with_json.push_back("--json");
  auto result = patctl(with_json);
  INFO("patctl ", with_json.front(), " stderr: ", result.err);
  REQUIRE(result.exit_code == 0);
  return nlohmann::json::parse(result.out);
}

pid_t PatdInstance::run_detached(const std::string& group, const std::vector<std::string>& command) const {
  static int counter = 0;
  std::string base = dir_->path() + "/detached-" + std::to_string(++counter);
  std::vector<std::string> argv = {bin_dir_ + "/patctl", "--socket", socket(), "run", "--detach", "--group", group,
                                   "--"};
  argv.insert(argv.end(), command.begin(), command.end());
  Background patctl(argv, base + ".out", base + ".err");
  auto status = patctl.wait(std::chrono::milliseconds(30'000));
  INFO("patctl run --detach: ", read_file(base + ".err"));
  REQUIRE(status == 0);
  pid_t pid = std::stoi(read_file(base + ".out"));
  REQUIRE(pid > 0);
  return pid;
}

void PatdInstance::kill_daemon(int signal) {
  process_->signal(signal);
  REQUIRE(process_->wait(std::chrono::milliseconds(10'000)).has_value());
}

std::vector<std::string> patctl_argv(const PatdInstance& patd, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {patctl_binary(), "--socket", patd.socket()};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

Completed patctl_after(const PatdInstance& patd, const std::string& prelude, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/bin/sh", "-c", prelude + " && exec \"$@\"", "sh"};
  auto patctl = patctl_argv(patd, args);
  argv.insert(argv.end(), patctl.begin(), patctl.end());
  return run(argv, RunOptions{.timeout = std::chrono::milliseconds(30'000)});
}

nlohmann::json show(const PatdInstance& patd, const std::string& group) {
  return patd.patctl_json({"group", "show", group});
}

namespace {

std::optional<nlohmann::json> entry_with_pid(const nlohmann::json& entries, pid_t pid) {
  for (const auto& entry : entries) {
    if (entry.value("pid", 0) == pid) return entry;
  }
  return std::nullopt;
}

}  // namespace

std::optional<nlohmann::json> member_of(const PatdInstance& patd, const std::string& group, pid_t pid) {
  return entry_with_pid(show(patd, group)["members"], pid);
}

std::optional<nlohmann::json> recent_exit_of(const PatdInstance& patd, const std::string& group, pid_t pid) {
  return entry_with_pid(show(patd, group)["recent_exits"], pid);
}

uid_t ensure_test_user(const std::string& name) {
  if (passwd* entry = ::getpwnam(name.c_str())) return entry->pw_uid;
  auto result = run({"useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group", name});
  INFO("useradd: ", result.err);
  REQUIRE(result.exit_code == 0);
  passwd* entry = ::getpwnam(name.c_str());
  REQUIRE(entry != nullptr);
  return entry->pw_uid;
}

}  // namespace pat::testing
