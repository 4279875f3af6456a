// What /proc/PID/status and /proc/PID/stat say about a process or thread
// (proc(5)), parsed once into a struct. Attach decides from these whether a
// process may move at all, and reads its umask, signal sets and brk from them.
#pragma once

#include <sys/types.h>

#include <array>
#include <optional>
#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"

namespace pat::tracer {

struct ProcStatus {
  std::string name;                   // Name: (comm)
  char state = '?';                   // State: R, S, D, T, t, Z, X, I...
  pid_t tgid = 0, pid = 0, ppid = 0, tracer_pid = 0;
  std::array<uid_t, 4> uids{};        // real, effective, saved, filesystem
  std::array<gid_t, 4> gids{};
  std::vector<gid_t> groups;          // supplementary, as listed
  bool kernel_thread = false;         // Kthread: (Linux 6.x)
  int threads = 0;
  unsigned umask = 022;
  std::uint64_t sig_pending = 0, shared_pending = 0, sig_blocked = 0, sig_ignored = 0, sig_caught = 0;
  std::uint64_t cap_inheritable = 0, cap_permitted = 0, cap_effective = 0, cap_ambient = 0;
  bool no_new_privs = false;
  int seccomp_mode = 0;               // 0 none, 1 strict, 2 filter
  int seccomp_filters = 0;
  std::uint64_t rss_anon_bytes = 0;   // RssAnon:
};

// /proc/PID/status, or /proc/PID/task/TID/status when tid != 0.
Result<ProcStatus> read_proc_status(pid_t pid, pid_t tid = 0);
// The same from text (for tests).
ProcStatus parse_proc_status(const std::string& text);

// The fields of /proc/PID/stat that describe the memory layout (proc(5),
// fields 26-28 and 45-51): where the data and the brk heap start.
struct ProcStatLayout {
  std::uint64_t start_code = 0, end_code = 0, start_stack = 0;
  std::uint64_t start_data = 0, end_data = 0, start_brk = 0;
  std::uint64_t arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;
};
Result<ProcStatLayout> read_proc_stat_layout(pid_t pid);
// From the text of /proc/PID/stat. The comm field may hold spaces and
// parentheses, so fields are counted after its last ')'.
std::optional<ProcStatLayout> parse_proc_stat_layout(const std::string& text);

// The whole of a small /proc file (status, stat, comm, cmdline...).
Result<std::string> read_proc_file(const std::string& path);

// The thread ids under /proc/PID/task, ascending.
Result<std::vector<pid_t>> list_threads(pid_t pid);

}  // namespace pat::tracer
