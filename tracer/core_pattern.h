// Where the kernel wrote a member's core file, and where pat writes the
// member's own: /proc/sys/kernel/core_pattern and core_uses_pid, expanded
// as fs/coredump.c format_corename() does (core(5)).
//
// Some specifiers cannot be known exactly afterwards: %t (the second of the
// dump), %C (the CPU it ran on), %i/%I (the dumping thread, which is gone).
// The kernel's file is found by matching them as wildcards in its directory
// and checking the candidate's content (an ELF core of this pid). %E and %f
// name the address space's executable, which for a member is pat-host: the
// member's own file name puts the member's program there instead, so that
// the file is named for the program that crashed.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

namespace pat::tracer {

struct CorePattern {
  std::string pattern;      // as in /proc/sys/kernel/core_pattern, without the newline
  bool uses_pid = false;    // core_uses_pid: ".PID" appended when the pattern has no %p

  // '|' (a helper program) or, since Linux 6.16, '@' (a socket): the kernel
  // sends the core there, not to a file.
  bool is_file() const { return !pattern.empty() && pattern[0] != '|' && pattern[0] != '@'; }

  static Result<CorePattern> of_this_system();
};

// What the expansion needs to know about the process that dumped.
struct DumpedProcess {
  pid_t pid = 0;
  std::string comm;             // %e (the leader's; the dumping thread's is gone)
  std::uint64_t core_limit = 0; // %c: RLIMIT_CORE soft limit
  int signal = 0;               // %s
  unsigned uid = 0, gid = 0;    // %u %g
  std::string kernel_exe;       // %E %f as the kernel sees it: the address space's executable (pat-host)
  std::string program;          // the member's own executable, for pat's file name
};

struct CoreLocation {
  UniqueFd directory;          // where the kernel wrote it
  std::string directory_path;  // its absolute path, for messages
  std::string kernel_name;     // the kernel's file in `directory`
  std::string member_name;     // the name pat gives the member's core, in `directory`
  UniqueFd kernel_core;        // the kernel's file, open for reading and writing

  std::string member_path() const;  // absolute
};

// Finds the kernel's core of `dumped`. Relative patterns are relative to
// `cwd_fd`, the directory the member dumped in. Fails with ENOENT if no file
// matching the pattern holds a core of this pid.
Result<CoreLocation> find_kernel_core(const CorePattern& pattern, const DumpedProcess& dumped, int cwd_fd);

// The process (thread group) an ELF core file is of: pr_pid of its
// NT_PRPSINFO note. Nothing if `fd` is not an x86-64 ELF core.
std::optional<pid_t> core_file_process(int fd);

}  // namespace pat::tracer
