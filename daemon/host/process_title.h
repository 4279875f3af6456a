// What ps(1), top(1) and pgrep -f show as the command line of every process
// in the group.
//
// /proc/PID/cmdline is read from the address space (fs/proc/base.c
// get_mm_cmdline(): the bytes between mm->arg_start and mm->arg_end), not
// from the task, so every member shows the same command line: pat-host's,
// unless the host rewrites it. Changing arg_start per member needs
// prctl(PR_SET_MM_ARG_START), i.e. CAP_SYS_RESOURCE, which the host does not
// have; and it would still be one value for the whole mm. So the host
// overwrites its own argument area in place, as setproctitle(3) does, with a
// neutral title naming the group. Each member's own name is its comm
// (PR_SET_NAME at launch: ps -o comm, top, pgrep without -f); its own argv
// is in `patctl ps`. docs/debugging.md has the whole picture.
#pragma once

#include <string>

namespace pat::host {

// "pat: group NAME": what every process of the group shows as its command line.
std::string group_process_title(const std::string& group);

// Overwrites argv[0..argc) of this process, which the kernel laid out
// contiguously at execve, with `title` (cut to fit). Call once the arguments
// have been parsed: argv[] points into the overwritten bytes. Returns false
// when the argument strings are not one contiguous block (nothing changed).
bool set_process_title(int argc, char** argv, const std::string& title);

// /proc/PID/environ is per address space too (mm->env_start..env_end): every
// member would show the host's environment. Moves this process's environment
// strings to the heap (environ and getenv() keep working) and zeroes the area
// the kernel shows, so a member's environ reads as empty rather than as
// someone else's. A member's own environment is on its own stack.
void blank_environment_area();

}  // namespace pat::host
