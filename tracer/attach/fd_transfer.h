// The attached process's file descriptors, fetched into the host with
// pidfd_getfd(2): each copy shares the open file description (offset,
// status flags, locks of the description, a socket's queue), so the member
// installs them at the same numbers with their close-on-exec flags and
// nothing anyone else sees changes. Descriptors tied to the old process or
// address space are refused with a reason.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace pat::tracer {

struct TransferredFd {
  int number = -1;     // in the process
  bool cloexec = false;
  std::string target;  // readlink of /proc/PID/fd/N, for messages
  UniqueFd copy;       // ours, close-on-exec
};

// Why a descriptor cannot move, by what /proc/PID/fd/N links to; nullopt if
// it can.
std::optional<std::string> fd_refusal(const std::string& link_target);

// The numbers and links of every fd of `pid` (no copies yet), for the
// checks made before anything is touched.
Result<std::vector<TransferredFd>> list_fds(pid_t pid);

// Copies of every fd (pidfd_getfd), with their flags from
// /proc/PID/fdinfo. Fails on the first refusal.
Result<std::vector<TransferredFd>> fetch_fds(pid_t pid, int pidfd);

// The process holds POSIX record locks (fcntl F_SETLK): they belong to the
// process, not to the open file, and would be released when the stub closes
// its descriptors.
Result<bool> holds_posix_locks(pid_t pid);

// The process has POSIX timers (timer_create): /proc/PID/timers lists them.
Result<bool> has_posix_timers(pid_t pid);

}  // namespace pat::tracer
