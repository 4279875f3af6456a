#include "tests/support/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace pat::testing {

namespace {

std::vector<std::string> environment_with(const std::map<std::string, std::string>& overrides,
                                          const std::vector<std::string>& removed) {
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string text = *entry;
    std::string key = text.substr(0, text.find('='));
    bool drop = overrides.contains(key);
    for (const auto& name : removed) drop = drop || name == key;
    if (!drop) env.push_back(text);
  }
  for (const auto& [key, value] : overrides) env.push_back(key + "=" + value);
  return env;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

Completed run(const std::vector<std::string>& argv, const RunOptions& options) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC)) throw std::runtime_error("pipe");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  auto args = argv;
  auto env = environment_with(options.env_overrides, options.env_removed);
  auto arg_ptrs = pointers(args);
  auto env_ptrs = pointers(env);
  pid_t pid;
  int rc = ::posix_spawnp(&pid, arg_ptrs[0], &actions, nullptr, arg_ptrs.data(), env_ptrs.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  Completed result;
  if (rc != 0) {
    ::close(in[1]);
    ::close(out[0]);
    ::close(err[0]);
    result.err = std::string("spawn failed: ") + std::strerror(rc);
    return result;
  }
  std::size_t written = 0;
  if (options.stdin_data.empty()) {
    ::close(in[1]);
    in[1] = -1;
  } else {
    ::fcntl(in[1], F_SETFL, O_NONBLOCK);
  }
  auto deadline = std::chrono::steady_clock::now() + options.timeout;
  bool timed_out = false;
  while (out[0] >= 0 || err[0] >= 0) {
    pollfd fds[3] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}, {in[1], POLLOUT, 0}};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::kill(pid, SIGKILL);
      timed_out = true;
      break;
    }
    ::poll(fds, 3, static_cast<int>(std::min<long long>(left.count(), 1000)));
    for (int i = 0; i < 2; ++i) {
      int& fd = i == 0 ? out[0] : err[0];
      std::string& sink = i == 0 ? result.out : result.err;
      if (fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP))) {
        char buffer[65536];
        ssize_t n = ::read(fd, buffer, sizeof(buffer));
        if (n > 0) {
          sink.append(buffer, static_cast<std::size_t>(n));
        } else if (n == 0 || errno != EINTR) {
          ::close(fd);
          fd = -1;
        }
      }
    }
    if (in[1] >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t n = ::write(in[1], options.stdin_data.data() + written, options.stdin_data.size() - written);
      if (n > 0) written += static_cast<std::size_t>(n);
      if (n < 0 || written == options.stdin_data.size()) {
        ::close(in[1]);
        in[1] = -1;
      }
    }
  }
  for (int fd : {in[1], out[0], err[0]}) {
    if (fd >= 0) ::close(fd);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = timed_out ? -1 : decode_status(status);
  return result;
}

Background::Background(const std::vector<std::string>& argv, const std::string& stdout_path,
                       const std::string& stderr_path, const std::map<std::string, std::string>& env_overrides,
                       const std::vector<int>& passed_fds) {
  auto args = argv;
  auto env = environment_with(env_overrides, {});
  auto arg_ptrs = pointers(args);
  auto env_ptrs = pointers(env);
  int out = ::open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int err = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_ = ::fork();
  if (pid_ == 0) {
    ::dup2(null, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    // Lift the passed fds above any target first, then place them from 3 on
    // (dup2 clears close-on-exec on the copies).
    std::vector<int> lifted;
    for (int fd : passed_fds) lifted.push_back(::fcntl(fd, F_DUPFD_CLOEXEC, 100));
    for (std::size_t i = 0; i < lifted.size(); ++i) ::dup2(lifted[i], 3 + static_cast<int>(i));
    // LISTEN_PID must name the process that receives the fds: this one,
    // after exec. A value of "self" is replaced here.
    for (auto& entry : env) {
      if (entry == "LISTEN_PID=self") entry = "LISTEN_PID=" + std::to_string(::getpid());
    }
    env_ptrs = pointers(env);
    ::execvpe(arg_ptrs[0], arg_ptrs.data(), env_ptrs.data());
    ::_exit(127);
  }
  ::close(out);
  ::close(err);
  ::close(null);
  if (pid_ < 0) throw std::runtime_error("fork");
}

Background::Background(Background&& other) noexcept : pid_(other.pid_), reaped_(other.reaped_) {
  other.pid_ = -1;
  other.reaped_ = true;
}

Background::~Background() {
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

std::optional<int> Background::wait(std::chrono::milliseconds timeout) {
  if (reaped_) return std::nullopt;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t got = ::waitpid(pid_, &status, WNOHANG);
    if (got == pid_) {
      reaped_ = true;
      return decode_status(status);
    }
    if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void Background::signal(int signal) const {
  if (pid_ > 0 && !reaped_) ::kill(pid_, signal);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::optional<std::string> proc_status_field(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      auto value = line.substr(field.size() + 1);
      auto start = value.find_first_not_of(" \t");
      return start == std::string::npos ? std::string() : value.substr(start);
    }
  }
  return std::nullopt;
}

bool process_alive(pid_t pid) {
  auto state = proc_status_field(pid, "State");
  return state && state->rfind("Z", 0) != 0 && state->rfind("X", 0) != 0;
}

}  // namespace pat::testing
