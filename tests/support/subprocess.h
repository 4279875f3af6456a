// Test support: run real programs (patctl, patd, members' helpers) and collect
// what they print. Tests talk to pat only through its real binaries and its
// real socket.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace pat::testing {

struct Completed {
  int exit_code = -1;  // 128+N when killed by signal N, like a shell
  std::string out;
  std::string err;
};

struct RunOptions {
  std::string stdin_data{};
  std::map<std::string, std::string> env_overrides{};  // added to this process's environment
  std::vector<std::string> env_removed{};
  std::chrono::milliseconds timeout{120'000};  // SIGKILL after this; exit_code -1
};

// Runs argv to completion (argv[0] is a path or searched in PATH).
Completed run(const std::vector<std::string>& argv, const RunOptions& options = {});

// A background process, killed (SIGKILL) and reaped on destruction unless it
// was waited for. `passed_fds` become its fds 3, 4, ... in order, as systemd
// passes sockets (sd_listen_fds(3)); "LISTEN_PID=self" in the environment is
// replaced by the child's pid.
class Background {
 public:
  Background(const std::vector<std::string>& argv, const std::string& stdout_path, const std::string& stderr_path,
             const std::map<std::string, std::string>& env_overrides = {},
             const std::vector<int>& passed_fds = {});
  Background(Background&& other) noexcept;
  Background& operator=(Background&&) = delete;
  ~Background();

  pid_t pid() const { return pid_; }
  // Waits up to `timeout` for exit; the status as in Completed::exit_code.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  void signal(int signal) const;

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
};

// Reads a whole file ("" if missing).
std::string read_file(const std::string& path);

// Polls `condition` every 10 ms until true or `timeout`.
template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds timeout = std::chrono::milliseconds(10'000));

// Field of /proc/<pid>/status ("Uid", "CapEff", ...), or nullopt if gone.
std::optional<std::string> proc_status_field(pid_t pid, const std::string& field);
bool process_alive(pid_t pid);  // exists and is not a zombie

}  // namespace pat::testing

#include <thread>

template <class Condition>
bool pat::testing::eventually(Condition condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return condition();
}
