// Figures the kernel keeps per task and per address space, read from /proc
// (proc(5)). Per task: CPU time, threads, scheduling state and working
// directory (fs_struct: a member has its own), which are a member's own. Per
// address space: RSS and PSS, which in a group are everyone's at once, so pat
// reports them once per group, never per member.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace pat::tracer {

struct TaskStats {
  double cpu_seconds = 0;  // utime + stime of the whole thread group
  int threads = 0;
  char state = '?';        // R, S, D, T (stopped), t (traced), Z... as ps's STAT
  std::string cwd;         // empty when it cannot be read
};
// Nothing if the process is gone.
std::optional<TaskStats> read_task_stats(pid_t pid);
// Its comm (PR_SET_NAME, what ps -o comm shows), also of a zombie; empty if gone.
std::string read_comm(pid_t pid);

struct AddressSpaceStats {
  std::uint64_t size_bytes = 0;  // VmSize: everything mapped
  std::uint64_t rss_bytes = 0;   // VmRSS
  std::uint64_t pss_bytes = 0;   // Pss from smaps_rollup (shared pages split among mms)
};
std::optional<AddressSpaceStats> read_address_space_stats(pid_t pid);

}  // namespace pat::tracer
