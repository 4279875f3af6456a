#include "tracer/attach/injected_syscalls.h"

#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include <csignal>
#include <cstring>
#include <vector>

#include "tracer/attach/process_maps.h"
#include "tracer/kernel_abi.h"

namespace pat::tracer {
namespace {

Status get_regs(pid_t tid, user_regs_struct& regs) {
  return ptrace_request(PTRACE_GETREGS, tid, 0, reinterpret_cast<std::uintptr_t>(&regs), "PTRACE_GETREGS");
}
Status set_regs(pid_t tid, const user_regs_struct& regs) {
  return ptrace_request(PTRACE_SETREGS, tid, 0, reinterpret_cast<std::uintptr_t>(&regs), "PTRACE_SETREGS");
}
Status set_mask(pid_t tid, std::uint64_t mask) {
  return ptrace_request(PTRACE_SETSIGMASK, tid, kernel::kSigsetSize, reinterpret_cast<std::uintptr_t>(&mask), "PTRACE_SETSIGMASK");
}

Status read_memory(pid_t pid, std::uint64_t at, void* out, std::size_t size) {
  iovec local{out, size};
  iovec remote{reinterpret_cast<void*>(at), size};
  ssize_t n = ::process_vm_readv(pid, &local, 1, &remote, 1, 0);
  if (n < 0) return last_error("process_vm_readv " + std::to_string(pid));
  if (static_cast<std::size_t>(n) != size) return SysError{EFAULT, "process_vm_readv " + std::to_string(pid)};
  return ok_status();
}

}  // namespace

Result<InjectedSyscalls> InjectedSyscalls::begin(SeizedProcess& process, pid_t tid, std::uint64_t gadget, Deadline deadline) {
  InjectedSyscalls session(process, tid, gadget, deadline);
  if (auto s = get_regs(tid, session.saved_regs_); !s) return s.error();
  if (auto s = ptrace_request(PTRACE_GETSIGMASK, tid, kernel::kSigsetSize, reinterpret_cast<std::uintptr_t>(&session.saved_mask_),
                              "PTRACE_GETSIGMASK");
      !s)
    return s.error();
  // From here on the thread is not in its own state: if the host dies, the
  // kernel must kill it rather than let it run on with our registers.
  if (auto s = process.set_exit_kill(tid, true); !s) return s.error();
  session.active_ = true;
  // Below the red zone (x86-64 psABI: 128 bytes under rsp belong to the
  // running function), 16-byte aligned.
  session.scratch_ = (session.saved_regs_.rsp - kernel::kRedZone - kScratchBytes) & ~std::uint64_t{15};
  session.saved_scratch_.resize(kScratchBytes);
  if (auto s = read_memory(tid, session.scratch_, session.saved_scratch_.data(), kScratchBytes); !s) {
    session.saved_scratch_.clear();
    return SysError{s.error().code, "no scratch room on the stack of thread " + std::to_string(tid)};
  }
  // Every signal blocked (SIGKILL and SIGSTOP cannot be): none may run a
  // handler on our registers, and none is lost: they stay pending.
  if (auto s = set_mask(tid, ~std::uint64_t{0}); !s) return s.error();
  return session;
}

InjectedSyscalls::InjectedSyscalls(InjectedSyscalls&& o) noexcept
    : process_(o.process_),
      tid_(o.tid_),
      gadget_(o.gadget_),
      deadline_(o.deadline_),
      active_(o.active_),
      execed_(o.execed_),
      saved_regs_(o.saved_regs_),
      saved_mask_(o.saved_mask_),
      scratch_(o.scratch_),
      saved_scratch_(std::move(o.saved_scratch_)) {
  o.active_ = false;
}

InjectedSyscalls::~InjectedSyscalls() {
  if (active_) (void)end();
}

Result<long> InjectedSyscalls::call(long nr, std::initializer_list<std::uint64_t> args) { return run_syscall(nr, args, false); }

Result<long> InjectedSyscalls::call_execve(std::uint64_t path, std::uint64_t argv, std::uint64_t envp) {
  return run_syscall(SYS_execve, {path, argv, envp}, true);
}

// The thread runs from the gadget with the call's registers; orig_rax = -1
// tells the kernel it is not coming back from an interrupted syscall, so no
// restart logic touches them on the way (arch/x86/kernel/signal.c
// arch_do_signal_or_restart()). Stops at the syscall's entry, then its exit.
Result<long> InjectedSyscalls::run_syscall(long nr, std::initializer_list<std::uint64_t> args, bool expect_exec) {
  if (!active_ || execed_) return SysError{EINVAL, "injected syscall outside a session"};
  user_regs_struct regs = saved_regs_;
  regs.rip = gadget_;
  regs.rax = static_cast<std::uint64_t>(nr);
  regs.orig_rax = ~std::uint64_t{0};
  unsigned long long* const slots[6] = {&regs.rdi, &regs.rsi, &regs.rdx, &regs.r10, &regs.r8, &regs.r9};
  std::size_t i = 0;
  for (std::uint64_t a : args) *slots[i++] = a;
  if (auto s = set_regs(tid_, regs); !s) return s.error();
  auto entry = process_->resume_until(tid_, PTRACE_SYSCALL, TraceStop::Kind::Syscall, deadline_);
  if (!entry) return entry.error();
  if (auto s = ptrace_request(PTRACE_SYSCALL, tid_, 0, 0, "PTRACE_SYSCALL"); !s) return s.error();
  if (expect_exec) {
    // Success shows as PTRACE_EVENT_EXEC before the exit stop; failure as
    // the exit stop alone. Meanwhile the other threads die (de_thread()), and
    // the exec waits until we have reaped them.
    auto stop = process_->wait_until_exec_or_syscall(tid_, deadline_);
    if (!stop) return stop.error();
    if (stop.value().kind == TraceStop::Kind::Event) {
      execed_ = true;
      if (auto s = process_->resume_until(tid_, PTRACE_SYSCALL, TraceStop::Kind::Syscall, deadline_); !s) return s.error();
      return 0L;
    }
  } else {
    auto exit = process_->wait_until(tid_, TraceStop::Kind::Syscall, deadline_);
    if (!exit) return exit.error();
  }
  if (auto s = get_regs(tid_, regs); !s) return s.error();
  return static_cast<long>(regs.rax);
}

Status InjectedSyscalls::write(RemoteAddress at, std::string_view bytes) { return write_remote(tid_, at, bytes); }

Status InjectedSyscalls::read(RemoteAddress at, void* out, std::size_t size) { return read_memory(tid_, at.value, out, size); }

// The thread is left in a syscall stop; its own registers must be put back
// in a stop inside signal handling, where the kernel still decides about
// restarting the syscall it was interrupted in (ERESTARTSYS and friends) as
// it would have without us. PTRACE_INTERRUPT brings it there before it runs
// a single instruction of its own.
Status InjectedSyscalls::end() {
  if (!active_) return ok_status();
  active_ = false;
  if (!execed_) {
    if (auto s = ptrace_request(PTRACE_INTERRUPT, tid_, 0, 0, "PTRACE_INTERRUPT"); !s) return s;
    if (auto s = process_->resume_until(tid_, PTRACE_CONT, TraceStop::Kind::Interrupt, deadline_); !s) return s.error();
    if (!saved_scratch_.empty()) {
      if (auto s = write_remote(tid_, RemoteAddress{scratch_}, saved_scratch_); !s) return s;
    }
    if (auto s = set_regs(tid_, saved_regs_); !s) return s;
  }
  if (auto s = set_mask(tid_, saved_mask_); !s) return s;
  return process_->set_exit_kill(tid_, false);
}

Result<std::uint64_t> find_syscall_gadget(pid_t pid) {
  auto mappings = read_process_mappings(pid);
  if (!mappings) return mappings.error();
  return find_syscall_gadget(pid, mappings.value());
}

Result<std::uint64_t> find_syscall_gadget(pid_t pid, const std::vector<ProcessMapping>& mappings) {
  auto search = [&](const ProcessMapping& m) -> std::optional<std::uint64_t> {
    std::size_t size = std::min<std::size_t>(m.range.size(), 1 << 20);
    std::vector<unsigned char> bytes(size);
    if (!read_memory(pid, m.range.start, bytes.data(), size)) return std::nullopt;
    for (std::size_t i = 0; i + 1 < size; ++i) {
      if (bytes[i] == 0x0f && bytes[i + 1] == 0x05) return m.range.start + i;
    }
    return std::nullopt;
  };
  for (const auto& m : mappings) {
    if (m.cls == MappingClass::Vdso) {
      if (auto at = search(m)) return *at;
    }
  }
  for (const auto& m : mappings) {
    if (m.cls == MappingClass::PrivateFile && (m.prot & PROT_EXEC) && (m.prot & PROT_READ)) {
      if (auto at = search(m)) return *at;
    }
  }
  return SysError{ENOENT, "no syscall instruction found in process " + std::to_string(pid)};
}

}  // namespace pat::tracer
