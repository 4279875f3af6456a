// The syscalls a member's seccomp filter reroutes to its host, with their
// names: seccomp_program.cc installs the rules from this list, and
// RerouteStats (reroute_stats.h) counts by it. Numbers are the native
// x86-64 ones from <sys/syscall.h>, which is what libseccomp's SCMP_SYS()
// gives for the native architecture too.
#pragma once

#include <sys/syscall.h>

#include <string_view>

namespace pat::tracer {

struct ReroutedSyscall {
  long nr;
  std::string_view name;
};

// Rerouted to the host, each at ~5 µs instead of ~0.1 µs: per-address-space
// state (brk, /proc/self/exe), leaving the address space (execve), the
// calls that create or destroy mappings, so the host knows who owns what
// (docs/memory.md), and changes of directory, followed only, so that a
// crashed member's core can be found where a relative core_pattern put it
// (core_file.h). Frequent calls (read, write, futex, clock_*, madvise) stay
// out. prctl is not here: only its PAT_HOSTCALL option is rerouted, by a
// rule of its own (seccomp_program.cc).
inline constexpr ReroutedSyscall kReroutedSyscalls[] = {
    {SYS_brk, "brk"},           {SYS_execve, "execve"},     {SYS_execveat, "execveat"},
    {SYS_readlink, "readlink"}, {SYS_readlinkat, "readlinkat"}, {SYS_mmap, "mmap"},
    {SYS_munmap, "munmap"},     {SYS_mremap, "mremap"},     {SYS_mprotect, "mprotect"},
    {SYS_pkey_mprotect, "pkey_mprotect"}, {SYS_shmat, "shmat"}, {SYS_shmdt, "shmdt"},
    {SYS_chdir, "chdir"},       {SYS_fchdir, "fchdir"},
};

}  // namespace pat::tracer
