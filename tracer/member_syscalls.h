// MemberSyscalls: answers one member's rerouted syscalls (DESIGN "Rerouted
// syscalls") from its seccomp user-notification listener: a private brk,
// /proc/self/exe, execve bookkeeping, following its working directory, and
// the mapping calls and hostcalls that SharedAddressSpace performs for it.
// Its syscall server (syscall_servers.h) calls handle_one() each time the
// listener is readable; it never blocks.
//
// The group lock: the mapping ledger, the pins and every member's brk are
// shared by all the members' servers and read by the host, so the calls
// that read or change them (the mapping calls, hostcalls, brk) are decided
// and answered under it. Nothing else is: execve's checks (stat, faccessat
// on the member's path) and readlink's answer touch only the member, and
// every rerouted mmap and brk of the group would wait for them.
#pragma once

#include <linux/seccomp.h>
#include <sys/types.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>

#include "tracer/address_space.h"
#include "tracer/brk_emulator.h"
#include "tracer/member_launcher.h"
#include "tracer/reroute_stats.h"
#include "tracer/shared_address_space.h"
#include "tracer/syscall_reply.h"

namespace pat::tracer {

enum class Outcome {
  Handled,       // a notification was answered (or had vanished), or there was none
  ListenerGone,  // every task using the filter is gone (POLLHUP): close the listener
  ExecStarted,   // the member's own thread group called execve/execveat: it is leaving the mm
};
const char* to_string(Outcome outcome);

class MemberSyscalls {
 public:
  using Outcome = tracer::Outcome;

  // Borrows member.listener and member.pidfd, and `space`: all must outlive
  // this object. `owner` is the member's id in the space's ledger. The listener
  // must be kept and served for as long as ANY task runs under the filter —
  // fork children of the member, and what they exec, included — until
  // handle_one() returns ListenerGone; a closed listener makes their brk
  // return -ENOSYS, which glibc takes for success.
  //
  // `outside_core_filter`: the coredump_filter a task that leaves the group's
  // address space gets back (a fork child, an exec'd member), which it would
  // otherwise inherit from the group: 0 (tracer/core_file.h).
  //
  // Every answered notification is recorded in `stats` (the group's, shared
  // by all its members' servers), which must outlive this object too.
  MemberSyscalls(const LaunchedMember& member, SharedAddressSpace& space, OwnerId owner, std::mutex& group_lock,
                 RerouteStats& stats, std::optional<std::uint32_t> outside_core_filter = std::nullopt);

  // Receives and answers ONE notification. Never blocks.
  //
  // ExecStarted means the member asked to exec a file that exists and is
  // executable; the exec may still fail in the kernel (ENOEXEC, E2BIG, ...),
  // and then the member goes on running in the mm. So the host releases the
  // member's layout only once shares_my_address_space(pid) is false or the
  // member has exited. exec_pending() tells whether an exec is in flight.
  Outcome handle_one();

  bool exec_pending() const { return exec_pending_; }
  int listener() const { return listener_; }
  const BrkEmulator& brk() const { return brk_; }  // read under the group lock
  pid_t pid() const { return pid_; }
  OwnerId owner() const { return owner_; }
  // O_PATH fd of the member's working directory as last changed by chdir or
  // fchdir (the launch directory before), borrowed. A zombie has no cwd left
  // in /proc, and a crashed member's relative core_pattern is resolved there.
  int cwd() const { return cwd_.get(); }

 private:
  using Reply = SyscallReply;

  Reply decide(const seccomp_notif& notif, Outcome& outcome);
  static bool needs_group_lock(long nr);
  bool in_my_address_space(pid_t task);
  bool runs_host_image(pid_t task) const;
  bool still_valid(const seccomp_notif& notif) const;
  Reply handle_exec(const seccomp_notif& notif, Outcome& outcome);
  Reply handle_readlink(const seccomp_notif& notif);
  Reply handle_chdir(const seccomp_notif& notif);
  void restore_core_filter_once(pid_t task);
  // False when the task is gone (or was interrupted) before the reply.
  bool send(const seccomp_notif& notif, const Reply& reply) const;

  pid_t pid_;
  int listener_;
  int pidfd_;
  SharedAddressSpace& space_;
  OwnerId owner_;
  std::mutex& group_lock_;
  RerouteStats& stats_;
  std::string exe_path_;
  std::optional<std::string> host_exe_;  // the kernel's /proc/self/exe for the host
  BrkEmulator brk_;
  bool exec_pending_ = false;
  UniqueFd cwd_;
  std::optional<std::uint32_t> outside_core_filter_;
  std::unordered_set<pid_t> filter_restored_;  // tasks outside the mm given their filter back
};

}  // namespace pat::tracer
