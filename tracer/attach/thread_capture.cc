#include "tracer/attach/thread_capture.h"

#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include <cstring>

#include "tracer/attach/injected_syscalls.h"
#include "tracer/attach/proc_status.h"
#include "tracer/kernel_abi.h"

namespace pat::tracer {
namespace {

Result<std::vector<siginfo_t>> peek(pid_t tid, unsigned flags) {
  std::vector<siginfo_t> out;
  for (;;) {
    siginfo_t batch[32];
    __ptrace_peeksiginfo_args args{static_cast<std::uint64_t>(out.size()), flags, 32};
    long n = ::ptrace(PTRACE_PEEKSIGINFO, tid, &args, batch);
    if (n < 0) return last_error("PTRACE_PEEKSIGINFO " + std::to_string(tid));
    out.insert(out.end(), batch, batch + n);
    if (n < 32) return out;
  }
}

Status capture_by_ptrace(pid_t tid, CapturedThread& t) {
  if (auto s = ptrace_request(PTRACE_GETREGS, tid, 0, reinterpret_cast<std::uintptr_t>(&t.regs), "PTRACE_GETREGS"); !s) return s;
  t.xstate.resize(kernel::kMaxXstateBytes);
  iovec xstate{t.xstate.data(), t.xstate.size()};
  if (auto s = ptrace_request(PTRACE_GETREGSET, tid, kernel::kNtX86Xstate, reinterpret_cast<std::uintptr_t>(&xstate), "PTRACE_GETREGSET");
      !s)
    return s;
  t.xstate.resize(xstate.iov_len);
  if (auto s = ptrace_request(PTRACE_GETSIGMASK, tid, kernel::kSigsetSize, reinterpret_cast<std::uintptr_t>(&t.sigmask), "PTRACE_GETSIGMASK");
      !s)
    return s;
  __ptrace_rseq_configuration rseq{};
  long size = ::ptrace(PTRACE_GET_RSEQ_CONFIGURATION, tid, sizeof(rseq), &rseq);
  if (size < 0) return last_error("PTRACE_GET_RSEQ_CONFIGURATION " + std::to_string(tid));
  t.rseq_address = rseq.rseq_abi_pointer;
  t.rseq_length = rseq.rseq_abi_size;
  t.rseq_signature = rseq.signature;
  void* head = nullptr;
  std::size_t len = 0;
  if (::syscall(SYS_get_robust_list, tid, &head, &len) != 0) return last_error("get_robust_list " + std::to_string(tid));
  t.robust_head = reinterpret_cast<std::uint64_t>(head);
  t.robust_len = len;
  auto pending = peek(tid, 0);
  if (!pending) return pending.error();
  t.pending = std::move(pending.value());
  return ok_status();
}

// What only the thread itself can say: its clear_child_tid (prctl
// PR_GET_TID_ADDRESS) and its sigaltstack.
Status capture_by_injection(SeizedProcess& process, pid_t tid, std::uint64_t gadget, Deadline deadline, CapturedThread& t) {
  auto session = InjectedSyscalls::begin(process, tid, gadget, deadline);
  if (!session) return session.error();
  const RemoteAddress scratch = session->scratch();
  auto rc = session->call(SYS_prctl, {PR_GET_TID_ADDRESS, scratch.value});
  if (!rc) return rc.error();
  if (rc.value() < 0) return SysError{static_cast<int>(-rc.value()), "prctl(PR_GET_TID_ADDRESS) in thread " + std::to_string(tid)};
  if (auto s = session->read(scratch, &t.clear_child_tid, sizeof(t.clear_child_tid)); !s) return s;
  rc = session->call(SYS_sigaltstack, {0, scratch.value});
  if (!rc) return rc.error();
  if (rc.value() < 0) return SysError{static_cast<int>(-rc.value()), "sigaltstack in thread " + std::to_string(tid)};
  if (auto s = session->read(scratch, &t.altstack, sizeof(t.altstack)); !s) return s;
  // include/uapi/linux/signal.h: SS_ONSTACK says where the thread runs now
  // (not a setting); SS_DISABLE means no stack.
  t.has_altstack = !(t.altstack.flags & SS_DISABLE);
  t.altstack.flags &= ~SS_ONSTACK;
  return session->end();
}

}  // namespace

Result<CapturedThread> capture_thread(SeizedProcess& process, pid_t tid, std::uint64_t gadget, Deadline deadline) {
  CapturedThread t;
  t.tid = tid;
  if (auto s = capture_by_ptrace(tid, t); !s) return s.error();
  if (auto s = capture_by_injection(process, tid, gadget, deadline, t); !s) return s.error();
  auto comm = read_proc_file("/proc/" + std::to_string(process.pid()) + "/task/" + std::to_string(tid) + "/comm");
  if (comm) {
    t.comm = comm.value();
    if (!t.comm.empty() && t.comm.back() == '\n') t.comm.pop_back();
  }
  return t;
}

Result<std::vector<siginfo_t>> peek_shared_pending(pid_t tid) { return peek(tid, PTRACE_PEEKSIGINFO_SHARED); }

Status load_thread(pid_t tid, const CapturedThread& thread) {
  if (auto s = ptrace_request(PTRACE_SETREGS, tid, 0, reinterpret_cast<std::uintptr_t>(&thread.regs), "PTRACE_SETREGS"); !s) return s;
  iovec xstate{const_cast<std::uint8_t*>(thread.xstate.data()), thread.xstate.size()};
  if (auto s = ptrace_request(PTRACE_SETREGSET, tid, kernel::kNtX86Xstate, reinterpret_cast<std::uintptr_t>(&xstate), "PTRACE_SETREGSET");
      !s)
    return s;
  return ptrace_request(PTRACE_SETSIGMASK, tid, kernel::kSigsetSize, reinterpret_cast<std::uintptr_t>(&thread.sigmask), "PTRACE_SETSIGMASK");
}

}  // namespace pat::tracer
