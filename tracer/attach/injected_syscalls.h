// InjectedSyscalls: system calls made by a stopped thread of another process
// on our behalf, for state that no ptrace request or /proc file reads
// (clear_child_tid, sigaltstack, signal dispositions, interval timers, the
// break) and for the switch's execve. As CRIU's compel does, but without
// writing code: the thread is pointed at a `syscall` instruction that is
// already in its own address space (its vdso's, normally). Its registers,
// signal mask and the few bytes of its own stack used as scratch are saved
// at begin() and restored by end() or the destructor, as rr's
// AutoRemoteSyscalls does.
#pragma once

#include <sys/types.h>
#include <sys/user.h>

#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "tracer/attach/process_maps.h"
#include "tracer/attach/seized_process.h"
#include "tracer/remote_memory.h"

namespace pat::tracer {

class InjectedSyscalls {
 public:
  // Scratch bytes taken from the thread's stack, below its red zone.
  static constexpr std::size_t kScratchBytes = 1024;

  // `tid` must be parked in a stop inside signal handling (an interrupt
  // stop: where SeizedProcess leaves every thread). `gadget`: the address
  // of a `syscall` instruction (0f 05) mapped executable in the process.
  static Result<InjectedSyscalls> begin(SeizedProcess& process, pid_t tid, std::uint64_t gadget, Deadline deadline);
  InjectedSyscalls(InjectedSyscalls&&) noexcept;
  InjectedSyscalls& operator=(InjectedSyscalls&&) = delete;
  ~InjectedSyscalls();

  // Makes syscall `nr` with up to six arguments; the kernel's return value
  // (negative errno on failure). All signals stay blocked meanwhile.
  Result<long> call(long nr, std::initializer_list<std::uint64_t> args);
  // execve(2) from this thread. On success the process is a new program
  // (the other threads gone, reaped through `process`); its registers are
  // then the new program's, and end() restores nothing but the mask.
  Result<long> call_execve(std::uint64_t path, std::uint64_t argv, std::uint64_t envp);

  // The scratch area: kScratchBytes of the thread's own stack.
  RemoteAddress scratch() const { return RemoteAddress{scratch_}; }
  Status write(RemoteAddress at, std::string_view bytes);
  Status read(RemoteAddress at, void* out, std::size_t size);

  // Back to a stop inside signal handling with the thread's own registers,
  // mask and stack bytes, PTRACE_O_EXITKILL off again. Once ended, nothing
  // else may be called.
  Status end();

  const user_regs_struct& saved_registers() const { return saved_regs_; }

 private:
  InjectedSyscalls(SeizedProcess& process, pid_t tid, std::uint64_t gadget, Deadline deadline)
      : process_(&process), tid_(tid), gadget_(gadget), deadline_(deadline) {}
  Result<long> run_syscall(long nr, std::initializer_list<std::uint64_t> args, bool expect_exec);

  SeizedProcess* process_;
  pid_t tid_;
  std::uint64_t gadget_;
  Deadline deadline_;
  bool active_ = false;
  bool execed_ = false;
  user_regs_struct saved_regs_{};
  std::uint64_t saved_mask_ = 0;
  std::uint64_t scratch_ = 0;
  std::string saved_scratch_;
};

// The address of a `syscall` instruction in the process's [vdso] (or, if it
// has none, in its first executable file mapping), found by reading it.
Result<std::uint64_t> find_syscall_gadget(pid_t pid);
// The same, from mappings already read.
Result<std::uint64_t> find_syscall_gadget(pid_t pid, const std::vector<ProcessMapping>& mappings);

}  // namespace pat::tracer
