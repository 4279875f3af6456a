// SyscallReply: what the host tells the kernel about one rerouted syscall
// (seccomp_unotify(2), struct seccomp_notif_resp).
#pragma once

#include "tracer/member_layout.h"

namespace pat::tracer {

struct SyscallReply {
  enum class Kind {
    Value,     // the syscall "returned" `value`
    Error,     // the syscall failed with errno `value`
    Continue,  // run the real syscall (SECCOMP_USER_NOTIF_FLAG_CONTINUE)
  };
  Kind kind = Kind::Continue;
  long value = 0;
  // A mapping the host made for this reply: undone if the reply cannot be
  // delivered (the task died meanwhile), so nothing is left owned by nobody.
  Range created{};

  static SyscallReply returns(long value) { return {Kind::Value, value}; }
  static SyscallReply fails(int error) { return {Kind::Error, error}; }
  static SyscallReply proceed() { return {}; }
};

}  // namespace pat::tracer
