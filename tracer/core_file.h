// A crashed member's own core file, completed by the host.
//
// The kernel writes a core of the whole address space, and a group's
// address space holds every member (DESIGN "Kernel facts"): a crash in a
// member that uses 2 MiB wrote 68.8 GB (apparent) in 3.8-5.3 s, named for
// pat-host, with pat-host's command line and aux vector. Its notes, though,
// are right: since Linux 5.16 a dump stops and describes only the crashing
// thread group (the member's threads: NT_PRSTATUS, NT_FPREGSET,
// NT_X86_XSTATE per thread, NT_SIGINFO).
//
// So the host sets the group's coredump_filter (per address space) to 0:
// the kernel then writes its notes and headers but no memory, in
// milliseconds, following the member's own RLIMIT_CORE and core_pattern
// (the kernel decides whether a core is written at all, and tells through
// WCOREDUMP). When a member dies with WCOREDUMP, and before its memory goes
// back to the group, the host writes the member's core from the kernel's:
//   - the kernel's notes, except three rewritten for the member:
//     NT_PRPSINFO's arguments (the kernel reads them from the address
//     space: the group's title), NT_AUXV (the host's; the member's is the
//     one the host built) and NT_FILE (every file mapped in the group; now
//     the member's own);
//   - one PT_LOAD per piece of a mapping the member owns (the host's ledger),
//     with its memory as the kernel's default coredump_filter would dump it,
//     plus the vdso;
// and puts it where the kernel put its own, under the name the member's
// program gives (core_pattern.h). `gdb PROGRAM CORE` then sees the member
// alone. docs/debugging.md has the measurements and the limits.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "tracer/member_layout.h"

namespace pat::tracer {

// core(5) coredump_filter bits (include/linux/sched/coredump.h MMF_DUMP_*).
namespace dump_filter {
inline constexpr std::uint32_t kAnonPrivate = 1 << 0;
inline constexpr std::uint32_t kAnonShared = 1 << 1;
inline constexpr std::uint32_t kMappedPrivate = 1 << 2;
inline constexpr std::uint32_t kMappedShared = 1 << 3;
inline constexpr std::uint32_t kElfHeaders = 1 << 4;
inline constexpr std::uint32_t kDefault = 0x33;  // the kernel's MMF_DUMP_FILTER_DEFAULT
}  // namespace dump_filter

// Sets this process's coredump_filter (its address space's: the group's) to
// 0 and returns what it was: the filter members' cores follow. Nothing if
// /proc/self/coredump_filter cannot be changed.
std::optional<std::uint32_t> exclude_memory_from_kernel_cores();

// Gives a process that inherited the group's filter (a member's fork child,
// in its own address space now) the filter back.
void restore_core_filter(pid_t pid, std::uint32_t filter);

struct MemberCoreSource {
  pid_t pid = 0;
  std::string program;                // the file mapped as its program
  std::vector<std::string> argv;
  std::vector<std::uint64_t> auxv;    // its own aux vector, AT_NULL last
  std::vector<Range> owned;           // what it owns in the ledger, in address order
  std::uint32_t filter = dump_filter::kDefault;
  std::uint64_t limit = UINT64_MAX;   // its RLIMIT_CORE when it died
  int signal = 0;                     // that killed it
  std::string comm;                   // its name (/proc/PID/comm)
  UniqueFd cwd;                       // O_PATH: the directory it dumped in
};

struct MemberCore {
  std::string path;              // absolute
  std::uint64_t bytes = 0;       // the file's size (it has holes where memory was never touched)
  std::size_t threads = 0;       // NT_PRSTATUS notes
  std::size_t segments = 0;      // PT_LOAD headers
  bool truncated = false;        // cut at RLIMIT_CORE
};

// Reads the kernel's core in `core` (ELF header, program headers, notes),
// open for reading and writing, and writes the member's over it: every byte
// the kernel wrote becomes the member's or zero. On a failure the file may
// hold parts of both.
Result<MemberCore> write_member_core(int core, const MemberCoreSource& member);

// The whole step, for a member that died with WCOREDUMP and is not reaped
// yet (its memory is still mapped): finds the kernel's core
// (core_pattern.h), writes the member's over it and renames it when the
// member's name differs. A core that cannot be completed is removed.
// Fails with ENOTSUP when core_pattern is not a file (a helper program or
// socket got the kernel's core, which holds no memory: docs/debugging.md).
Result<MemberCore> complete_member_core(const MemberCoreSource& member);

}  // namespace pat::tracer
