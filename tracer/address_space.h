// Which tasks share the caller's address space, and which thread group a
// task belongs to: the facts MemberSyscalls decides on.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

namespace pat::tracer {

// Whether `pid` (any task id) currently shares the caller's mm:
// kcmp(2) KCMP_VM. False if the task is gone.
bool shares_my_address_space(pid_t pid);

// The thread group (process) id of task `tid`, from the Tgid: line of
// /proc/TID/status (proc(5)); nothing if the task is gone.
std::optional<pid_t> thread_group_of(pid_t tid);

// The kernel's /proc/PID/exe of task `pid`: the executable of its mm
// (proc(5)); nothing if the task is gone or not ours to inspect.
std::optional<std::string> executable_of(pid_t pid);

}  // namespace pat::tracer
