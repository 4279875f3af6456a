// MemberSyscalls: answers one member's rerouted syscalls (DESIGN "Rerouted
// syscalls") from its seccomp user-notification listener: a private brk,
// /proc/self/exe, execve bookkeeping, and the mapping calls and hostcalls that
// SharedAddressSpace performs for it. Its syscall server
// (syscall_servers.h) calls handle_one() each time the listener is
// readable; it never blocks.
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

#include <mutex>
#include <optional>
#include <string>

#include "tracer/address_space.h"
#include "tracer/brk_emulator.h"
#include "tracer/member_launcher.h"
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
  MemberSyscalls(const LaunchedMember& member, SharedAddressSpace& space, OwnerId owner, std::mutex& group_lock);

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

 private:
  using Reply = SyscallReply;

  Reply decide(const seccomp_notif& notif, Outcome& outcome);
  static bool needs_group_lock(long nr);
  bool in_my_address_space(pid_t task);
  bool runs_host_image(pid_t task) const;
  bool still_valid(const seccomp_notif& notif) const;
  Reply handle_exec(const seccomp_notif& notif, Outcome& outcome);
  Reply handle_readlink(const seccomp_notif& notif);
  // False when the task is gone (or was interrupted) before the reply.
  bool send(const seccomp_notif& notif, const Reply& reply) const;

  pid_t pid_;
  int listener_;
  int pidfd_;
  SharedAddressSpace& space_;
  OwnerId owner_;
  std::mutex& group_lock_;
  std::string exe_path_;
  std::optional<std::string> host_exe_;  // the kernel's /proc/self/exe for the host
  BrkEmulator brk_;
  bool exec_pending_ = false;
};

}  // namespace pat::tracer
