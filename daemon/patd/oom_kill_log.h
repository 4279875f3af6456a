// Whether the kernel's OOM killer ended a group. The OOM killer kills every
// process that shares the victim's mm (mm/oom_kill.c, __oom_kill_process:
// "Kill all user processes sharing victim->mm"), so a group dies as one: the
// host and all members by SIGKILL at once. No wait status tells that SIGKILL
// from any other; the kernel's log does. It names the one victim it chose,
// which may be any process of the group, in a line such as
//   "Out of memory: Killed process 1234 (python3) total-vm:... UID:1000 ..."
//   "Memory cgroup out of memory: Killed process 1234 (pat-host) ..."
// read here from /dev/kmsg (Documentation/ABI/testing/dev-kmsg: one record
// per read, "prio,seq,usec_since_boot,flags;message").
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <span>
#include <string>

namespace pat::patd {

struct OomKill {
  pid_t victim = 0;
  std::string line;  // the kernel's message, for the event and the log
};

// The newest OOM kill of one of `pids` logged at or after `since` (on
// CLOCK_MONOTONIC, the clock printk's timestamps follow while the machine
// does not suspend). nullopt if there is none or /dev/kmsg cannot be read
// (not root, or a container without it).
std::optional<OomKill> find_oom_kill(std::span<const pid_t> pids, std::chrono::steady_clock::time_point since);

}  // namespace pat::patd
