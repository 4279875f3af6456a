// The initial stack of a new program, laid out exactly as fs/binfmt_elf.c
// create_elf_tables() and fs/exec.c copy_strings() lay it out: argc, argv[],
// NULL, envp[], NULL, the aux vector, then (above) the random bytes, the
// platform string and the argument, environment and file name strings. Pure
// memory writing, so it can be built into a test buffer and walked back.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pat::tracer {

// The aux vector entries that describe the machine and kernel rather than the
// program. Members share the host's mm (so its vdso) and its kernel, so the
// host's own values are the right ones.
struct MachineAuxv {
  std::uint64_t sysinfo_ehdr = 0;  // AT_SYSINFO_EHDR: the vdso of this mm (0: none)
  std::uint64_t minsigstksz = 0;   // AT_MINSIGSTKSZ
  std::uint64_t hwcap = 0, hwcap2 = 0;
  std::uint64_t pagesz = 4096;
  std::uint64_t clktck = 100;
  std::uint64_t rseq_feature_size = 0, rseq_align = 0;  // 0: the kernel has no rseq auxv (before 6.3)

  // getauxval(3) of the calling process.
  static MachineAuxv of_this_process();
};

struct InitialStackSpec {
  std::vector<std::string> argv;
  std::vector<std::string> envp;
  std::string execfn;                 // AT_EXECFN: the path the program was started by
  std::string platform = "x86_64";    // AT_PLATFORM (ELF_PLATFORM on x86-64)
  std::array<std::uint8_t, 16> random{};  // AT_RANDOM bytes
  MachineAuxv machine;
  std::uint64_t phdr = 0, phnum = 0;  // AT_PHDR, AT_PHNUM of the program
  std::uint64_t base = 0;             // AT_BASE: load address of the interpreter (0 if none)
  std::uint64_t entry = 0;            // AT_ENTRY: the program's entry (not ld.so's)
  std::uint64_t uid = 0, euid = 0, gid = 0, egid = 0;
};

// Writes the stack into [low, high), memory that is writable here and lies at
// the addresses the program will see. Returns the initial rsp (pointing at
// argc, 16-byte aligned), or nothing if the strings and tables would need
// more than a quarter of the stack (the kernel's limit, bprm_stack_limits():
// E2BIG).
std::optional<std::uintptr_t> build_initial_stack(std::uintptr_t low, std::uintptr_t high, const InitialStackSpec& spec);

// The aux vector of an initial stack whose argc is at `rsp`, read the way
// ld.so reads it (past argv and envp): type/value pairs, AT_NULL pair last.
// The host keeps this copy of what it built: a core file's NT_AUXV (the
// kernel's is the host's own, per address space) and debuggers need it.
std::vector<std::uint64_t> aux_vector_at(std::uintptr_t rsp);

}  // namespace pat::tracer
