// Who may be attached (docs/attach.md, "What cannot be attached"): the
// checks made from /proc before anything touches the process, each refusal
// with its reason. patd makes them to refuse early and clearly; the host
// makes them again, and the kernel's own ptrace access check (same uids and
// gids, permitted capabilities a subset of the tracer's, dumpable) is the
// last word: nothing in a group gains privilege by an attach.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tracer/attach/proc_status.h"
#include "tracer/attach/process_maps.h"

namespace pat::tracer {

enum class AttachRefusal {
  NotFound,             // no such process
  WrongOwner,           // uids or gids not all the owner's
  Privileged,           // capabilities beyond the owner's
  NotDumpable,          // its /proc files belong to root: the kernel would refuse ptrace
  AlreadyTraced,        // a debugger (or another attach) traces it
  InitProcess,          // PID 1 of its namespace
  KernelThread,
  NotRunning,           // zombie, dead, or stopped by job control
  AlreadyMember,        // shares an address space with another process (a group, or vfork)
  HasChildren,          // its children could not be waited for by the member
  OwnSeccomp,           // seccomp filters of its own
  OtherNamespace,       // another mount, pid, user... namespace or root than the host's
  UnsupportedFd,        // io_uring, userfaultfd, perf...
  UnsupportedMapping,   // device memory, hugetlbfs, AIO rings...
  UnsupportedState,     // POSIX timers, POSIX record locks, realtime scheduling
  UnsupportedLibc,      // threads whose C library's TID cache we cannot find
  AddressConflict,      // the group already uses one of its address ranges
};
const char* to_string(AttachRefusal refusal);

// The group owner's credentials, as the host holds them.
struct OwnerCredentials {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;        // supplementary, sorted
  std::uint64_t permitted_caps = 0;
  static OwnerCredentials of_this_process();
};

struct Refusal {
  AttachRefusal reason;
  std::string message;  // one line, e.g. "process 4242 has 2 children"
};

// Every check that /proc/PID/status and friends can answer, for process
// `pid`, against `owner`. `host_pid`: the process whose namespaces and root
// the member will share (the host; for patd's early check, the group's host).
// `mappings`, if given, receives the process's mappings as read for the
// checks (smaps), for the caller to reuse.
std::optional<Refusal> check_attachable(pid_t pid, const OwnerCredentials& owner, pid_t host_pid,
                                        std::vector<ProcessMapping>* mappings = nullptr);

}  // namespace pat::tracer
