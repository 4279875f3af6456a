// Test support for attach (tracer/attach/): real processes run as an
// unprivileged test user, the way pat runs them. The host is attach_driver
// (a minimal group host, dropped to the test user like pat-host); targets
// run under attach_parent, which plays the shell that started them and
// reports what a parent sees. The test itself runs as root and inspects
// everyone from outside (registers, memory, fds) to prove that a failed
// attach changed nothing.
#pragma once

#include <sys/types.h>
#include <sys/user.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace pat::tracer::attach_testing {

// nobody:nogroup on Debian.
inline constexpr uid_t kTestUid = 65534;
inline constexpr gid_t kTestGid = 65534;

// A private directory holding copies of the test programs and the stub,
// where the test user may run them (the build tree may be under /root), and
// a work directory the test user owns.
class Lab {
 public:
  Lab();
  ~Lab();
  Lab(const Lab&) = delete;
  Lab& operator=(const Lab&) = delete;
  std::string bin(const std::string& name) const { return dir_ + "/bin/" + name; }
  std::string work(const std::string& name) const { return dir_ + "/work/" + name; }

 private:
  std::string dir_;
};

// Lines read from a pipe, with a timeout.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}
  std::optional<std::string> next(std::chrono::milliseconds timeout);
  // Lines until one starts with `prefix` (returned); the others are kept in seen().
  std::optional<std::string> until(const std::string& prefix, std::chrono::milliseconds timeout);
  const std::vector<std::string>& seen() const { return seen_; }

 private:
  int fd_;
  std::string buffer_;
  std::vector<std::string> seen_;
  std::set<std::size_t> consumed_;  // indexes of seen_ returned by until()
};

// A process started by the test, killed and reaped at destruction.
class Spawned {
 public:
  // As the test user unless `as_root`; its stdout is piped to the test,
  // its stdin too if `with_stdin`.
  Spawned(const std::vector<std::string>& argv, bool as_root = false, bool with_stdin = false);
  ~Spawned();
  Spawned(const Spawned&) = delete;
  Spawned& operator=(const Spawned&) = delete;
  pid_t pid() const { return pid_; }
  LineReader& out() { return *reader_; }
  void send(const std::string& line);
  void kill_now();  // SIGKILL and reap
  // The exit status once it has ended (waitpid), within `timeout`.
  std::optional<int> wait(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  int out_ = -1, in_ = -1;
  std::optional<LineReader> reader_;
  bool reaped_ = false;
};

// attach_driver as the test user.
class Driver {
 public:
  explicit Driver(const Lab& lab, const std::string& stub = "");
  // "attach PID OPTIONS": the result line ("attached ...", "refused ...", "failed ...", "holding ...").
  std::string attach(pid_t pid, const std::string& options = "");
  // The next event line starting with `prefix`.
  std::optional<std::string> event(const std::string& prefix, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  Spawned& process() { return process_; }
  pid_t pid() const { return process_.pid(); }

 private:
  Spawned process_;
};

// A target under attach_parent: `argv` is the target's command line.
class Target {
 public:
  Target(const Lab& lab, const std::vector<std::string>& argv, bool as_root = false);
  // Kills the target (the stub, once attached: the member follows) before
  // its parent, which would leave it to init otherwise.
  ~Target();
  Target(const Target&) = delete;
  Target& operator=(const Target&) = delete;
  pid_t pid() const { return child_; }
  // The parent's report lines ("pipe ready", "stopped 19", "exited 7"...).
  std::optional<std::string> report(const std::string& prefix, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  const std::vector<std::string>& reports() { return parent_.out().seen(); }
  Spawned& parent() { return parent_; }

 private:
  Spawned parent_;
  pid_t child_ = 0;
};

// One command to a Unix socket server (the workload, the Python server):
// one line out, one line back ("" on failure).
std::string ask(const std::string& socket_path, const std::string& command);

// A field of the "attached ..." line ("member", "stopped_us"...), 0 if absent.
long field(const std::string& line, const std::string& key);

// Everything of a process an attach must not change if it fails: each
// thread's registers (read under ptrace from the test), a hash of every
// readable mapping's bytes, its maps, its fds with their flags, its tracer.
struct Snapshot {
  std::map<pid_t, user_regs_struct> registers;
  std::uint64_t memory_hash = 0;
  std::string maps;
  std::string fds;
  std::string children;  // of every thread (/proc/PID/task/TID/children)
  pid_t tracer = -1;
  char state = '?';
};
Snapshot snapshot(pid_t pid);
// Why two snapshots differ ("" if they do not).
std::string difference(const Snapshot& before, const Snapshot& after);

// kcmp(KCMP_VM): whether two processes share one address space.
bool same_address_space(pid_t a, pid_t b);

}  // namespace pat::tracer::attach_testing
