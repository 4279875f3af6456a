#include "tracer/initial_stack.h"

#include <elf.h>
#include <sys/auxv.h>

#include <cstring>

namespace pat::tracer {
namespace {

// Writes downward from `top_`, refusing to pass `floor_`.
class DownwardWriter {
 public:
  DownwardWriter(std::uintptr_t floor, std::uintptr_t top) : floor_(floor), p_(top) {}

  // Copies the bytes below the current position; returns their address.
  std::optional<std::uintptr_t> push(const void* data, std::size_t size) {
    if (p_ - floor_ < size) return std::nullopt;
    p_ -= size;
    std::memcpy(reinterpret_cast<void*>(p_), data, size);
    return p_;
  }
  std::optional<std::uintptr_t> push_string(const std::string& s) { return push(s.c_str(), s.size() + 1); }
  bool skip_to(std::uintptr_t p) {
    if (p < floor_ || p > p_) return false;
    p_ = p;
    return true;
  }
  std::uintptr_t position() const { return p_; }

 private:
  std::uintptr_t floor_;
  std::uintptr_t p_;
};

// copy_strings() copies the last string first, so the first ends up lowest.
std::optional<std::vector<std::uint64_t>> push_strings(DownwardWriter& w, const std::vector<std::string>& strings) {
  std::vector<std::uint64_t> addresses(strings.size());
  for (std::size_t i = strings.size(); i-- > 0;) {
    auto at = w.push_string(strings[i]);
    if (!at) return std::nullopt;
    addresses[i] = *at;
  }
  return addresses;
}

// The aux vector in create_elf_tables() order (ARCH_DLINFO first on x86-64).
std::vector<std::uint64_t> aux_vector(const InitialStackSpec& s, std::uint64_t random_at, std::uint64_t execfn_at,
                                      std::uint64_t platform_at) {
  std::vector<std::uint64_t> v;
  auto add = [&v](std::uint64_t type, std::uint64_t value) {
    v.push_back(type);
    v.push_back(value);
  };
  if (s.machine.sysinfo_ehdr != 0) add(AT_SYSINFO_EHDR, s.machine.sysinfo_ehdr);
  add(AT_MINSIGSTKSZ, s.machine.minsigstksz);
  add(AT_HWCAP, s.machine.hwcap);
  add(AT_PAGESZ, s.machine.pagesz);
  add(AT_CLKTCK, s.machine.clktck);
  add(AT_PHDR, s.phdr);
  add(AT_PHENT, sizeof(Elf64_Phdr));
  add(AT_PHNUM, s.phnum);
  add(AT_BASE, s.base);
  add(AT_FLAGS, 0);
  add(AT_ENTRY, s.entry);
  add(AT_UID, s.uid);
  add(AT_EUID, s.euid);
  add(AT_GID, s.gid);
  add(AT_EGID, s.egid);
  add(AT_SECURE, 0);  // never: we never raise privileges (see program_resolver.h)
  add(AT_RANDOM, random_at);
  add(AT_HWCAP2, s.machine.hwcap2);
  add(AT_EXECFN, execfn_at);
  add(AT_PLATFORM, platform_at);
  if (s.machine.rseq_feature_size != 0) {
    add(AT_RSEQ_FEATURE_SIZE, s.machine.rseq_feature_size);
    add(AT_RSEQ_ALIGN, s.machine.rseq_align);
  }
  add(AT_NULL, 0);
  return v;
}

}  // namespace

MachineAuxv MachineAuxv::of_this_process() {
  MachineAuxv m;
  m.sysinfo_ehdr = ::getauxval(AT_SYSINFO_EHDR);
  m.minsigstksz = ::getauxval(AT_MINSIGSTKSZ);
  m.hwcap = ::getauxval(AT_HWCAP);
  m.hwcap2 = ::getauxval(AT_HWCAP2);
  m.pagesz = ::getauxval(AT_PAGESZ);
  m.clktck = ::getauxval(AT_CLKTCK);
  m.rseq_feature_size = ::getauxval(AT_RSEQ_FEATURE_SIZE);
  m.rseq_align = ::getauxval(AT_RSEQ_ALIGN);
  return m;
}

std::vector<std::uint64_t> aux_vector_at(std::uintptr_t rsp) {
  auto word = [](std::uintptr_t at) {
    std::uint64_t value;
    std::memcpy(&value, reinterpret_cast<const void*>(at), sizeof(value));
    return value;
  };
  std::uintptr_t p = rsp + 8 * (word(rsp) + 2);  // past argc, argv[] and its NULL
  while (word(p) != 0) p += 8;                   // past envp[]
  p += 8;                                        // and its NULL
  std::vector<std::uint64_t> auxv;
  for (;; p += 16) {
    auxv.push_back(word(p));
    auxv.push_back(word(p + 8));
    if (auxv[auxv.size() - 2] == AT_NULL) return auxv;
  }
}

std::optional<std::uintptr_t> build_initial_stack(std::uintptr_t low, std::uintptr_t high, const InitialStackSpec& spec) {
  // Strings and tables may use a quarter of the stack (bprm_stack_limits()).
  const std::uintptr_t floor = high - (high - low) / 4;
  DownwardWriter w(floor, high);
  // fs/exec.c __bprm_mm_init(): the topmost word stays zero.
  const std::uint64_t zero = 0;
  if (!w.push(&zero, sizeof(zero))) return std::nullopt;
  auto execfn_at = w.push_string(spec.execfn);
  if (!execfn_at) return std::nullopt;
  auto env_at = push_strings(w, spec.envp);
  auto arg_at = env_at ? push_strings(w, spec.argv) : std::nullopt;
  if (!arg_at) return std::nullopt;

  // arch_align_stack() also subtracts a random amount below 8 KiB; we only
  // align (the member's stack mapping itself is at a random address).
  if (!w.skip_to(w.position() & ~std::uintptr_t{15})) return std::nullopt;
  auto platform_at = w.push_string(spec.platform);
  auto random_at = platform_at ? w.push(spec.random.data(), spec.random.size()) : std::nullopt;
  if (!random_at) return std::nullopt;

  std::vector<std::uint64_t> table;  // argc, argv, NULL, envp, NULL, auxv
  table.push_back(spec.argv.size());
  table.insert(table.end(), arg_at->begin(), arg_at->end());
  table.push_back(0);
  table.insert(table.end(), env_at->begin(), env_at->end());
  table.push_back(0);
  std::vector<std::uint64_t> auxv = aux_vector(spec, *random_at, *execfn_at, *platform_at);
  table.insert(table.end(), auxv.begin(), auxv.end());

  // STACK_ROUND(): rsp, where argc lies, is 16-byte aligned.
  std::uintptr_t table_bytes = table.size() * sizeof(std::uint64_t);
  if (w.position() - floor < table_bytes + 16) return std::nullopt;
  std::uintptr_t rsp = (w.position() - table_bytes) & ~std::uintptr_t{15};
  std::memcpy(reinterpret_cast<void*>(rsp), table.data(), table_bytes);
  return rsp;
}

}  // namespace pat::tracer
