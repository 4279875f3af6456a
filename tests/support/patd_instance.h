// Test support: a real patd on a private runtime directory, and patctl to talk
// to it. Everything an instance starts is stopped by PID when it is destroyed:
// the groups' hosts (found through their sockets) and patd itself.
#pragma once

#include "tests/support/subprocess.h"

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pat::testing {

std::string patd_binary();
std::string patctl_binary();
std::string bin_dir();

// A private runtime directory (mkdtemp). On destruction, every host serving a
// socket in it is killed and the directory removed.
class RuntimeDirectory {
 public:
  RuntimeDirectory();
  ~RuntimeDirectory();
  const std::string& path() const { return path_; }
  std::string socket() const { return path_ + "/patd.sock"; }
  // Host pids found through groups/*/host.sock (SO_PEERCRED).
  std::vector<pid_t> host_pids() const;

 private:
  std::string path_;
};

struct PatdOptions {
  std::vector<std::string> extra_args = {"--socket-mode", "0666"};
  std::map<std::string, std::string> env;
  std::vector<int> passed_fds;  // become patd's fds 3, 4, ... (socket activation)
  bool wait_for_socket = true;
  std::string bin_dir = pat::testing::bin_dir();  // where patd and patctl are (an installed prefix's bin/)
};

class PatdInstance {
 public:
  explicit PatdInstance(std::shared_ptr<RuntimeDirectory> dir = std::make_shared<RuntimeDirectory>(),
                        PatdOptions options = {});
  ~PatdInstance();

  const RuntimeDirectory& dir() const { return *dir_; }
  std::shared_ptr<RuntimeDirectory> shared_dir() const { return dir_; }
  std::string socket() const { return dir_->socket(); }
  pid_t pid() const { return process_->pid(); }
  std::string log() const;  // patd's stderr so far
  Background& process() { return *process_; }

  Completed patctl(const std::vector<std::string>& args, const RunOptions& options = {}) const;
  // patctl run as another user through setpriv(1).
  Completed patctl_as(const std::string& user, const std::vector<std::string>& args) const;
  // patctl ... --json, expecting success; the parsed output.
  nlohmann::json patctl_json(const std::vector<std::string>& args) const;
  // `patctl run --detach -g GROUP -- COMMAND...`, expecting success; the
  // member's pid. patctl's stdio (which the member inherits) are files in
  // the runtime directory: a member outliving patctl must not hold open a
  // pipe that run() waits on.
  pid_t run_detached(const std::string& group, const std::vector<std::string>& command) const;

  // Ends patd without touching groups (SIGKILL or SIGTERM), as a crash or a
  // restart would.
  void kill_daemon(int signal);
  bool answering() const;

 private:
  std::shared_ptr<RuntimeDirectory> dir_;
  std::string bin_dir_;
  std::unique_ptr<Background> process_;
  std::string log_path_;
};

// patctl with --socket for `patd`, then `args`.
std::vector<std::string> patctl_argv(const PatdInstance& patd, const std::vector<std::string>& args);

// patctl exec'd by sh after `prelude` (cd, umask, ulimit...): what a user's
// shell hands the programs it starts.
Completed patctl_after(const PatdInstance& patd, const std::string& prelude, const std::vector<std::string>& args);

// `patctl group show GROUP --json`, and a member or recent exit in it by pid.
nlohmann::json show(const PatdInstance& patd, const std::string& group);
std::optional<nlohmann::json> member_of(const PatdInstance& patd, const std::string& group, pid_t pid);
std::optional<nlohmann::json> recent_exit_of(const PatdInstance& patd, const std::string& group, pid_t pid);

// Creates `name` as a system user if missing; returns its uid.
uid_t ensure_test_user(const std::string& name);

}  // namespace pat::testing
