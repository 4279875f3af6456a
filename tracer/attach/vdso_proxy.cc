#include "tracer/attach/vdso_proxy.h"

#include <elf.h>

#include <algorithm>
#include <cstring>
#include <map>

namespace pat::tracer {
namespace {

template <class T>
bool fits(std::size_t size, std::uint64_t offset, std::uint64_t count = 1) {
  return offset <= size && count <= (size - offset) / sizeof(T);
}

}  // namespace

// The vdso carries section headers (arch/x86/entry/vdso/vdso-layout.lds.S
// keeps them), so the dynamic symbols are found through SHT_DYNSYM and its
// string table.
Result<std::vector<VdsoFunction>> vdso_functions(const std::uint8_t* image, std::size_t size) {
  if (!fits<Elf64_Ehdr>(size, 0)) return SysError{EINVAL, "vdso image too small"};
  Elf64_Ehdr ehdr;
  std::memcpy(&ehdr, image, sizeof(ehdr));
  if (std::memcmp(ehdr.e_ident, ELFMAG, SELFMAG) != 0 || ehdr.e_shentsize != sizeof(Elf64_Shdr) ||
      !fits<Elf64_Shdr>(size, ehdr.e_shoff, ehdr.e_shnum))
    return SysError{EINVAL, "vdso image: bad ELF header"};
  std::vector<Elf64_Shdr> sections(ehdr.e_shnum);
  std::memcpy(sections.data(), image + ehdr.e_shoff, sections.size() * sizeof(Elf64_Shdr));
  std::vector<VdsoFunction> out;
  for (const Elf64_Shdr& sh : sections) {
    if (sh.sh_type != SHT_DYNSYM || sh.sh_link >= sections.size()) continue;
    const Elf64_Shdr& strtab = sections[sh.sh_link];
    if (!fits<Elf64_Sym>(size, sh.sh_offset, sh.sh_size / sizeof(Elf64_Sym)) || strtab.sh_offset + strtab.sh_size > size)
      return SysError{EINVAL, "vdso image: bad symbol table"};
    for (std::size_t i = 0; i < sh.sh_size / sizeof(Elf64_Sym); ++i) {
      Elf64_Sym sym;
      std::memcpy(&sym, image + sh.sh_offset + i * sizeof(Elf64_Sym), sizeof(sym));
      if (ELF64_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_shndx == SHN_UNDEF || sym.st_name >= strtab.sh_size) continue;
      const char* name = reinterpret_cast<const char*>(image + strtab.sh_offset + sym.st_name);
      std::size_t max = strtab.sh_size - sym.st_name;
      out.push_back(VdsoFunction{std::string(name, strnlen(name, max)), sym.st_value});
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.offset < b.offset; });
  return out;
}

Status make_vdso_proxy(std::vector<std::uint8_t>& image, const std::uint8_t* group_vdso, std::size_t group_size,
                       std::uint64_t group_base) {
  auto old_functions = vdso_functions(image.data(), image.size());
  if (!old_functions) return old_functions.error();
  auto group_functions = vdso_functions(group_vdso, group_size);
  if (!group_functions) return group_functions.error();
  std::map<std::string, std::uint64_t> group_offset;
  for (const auto& f : group_functions.value()) group_offset[f.name] = f.offset;

  const auto& functions = old_functions.value();
  for (std::size_t i = 0; i < functions.size(); ++i) {
    const VdsoFunction& f = functions[i];
    if (i > 0 && functions[i - 1].offset == f.offset) continue;  // an alias (time and __vdso_time)
    auto target = group_offset.find(f.name);
    if (target == group_offset.end()) return SysError{ENOENT, "the group's vdso has no " + f.name};
    std::uint64_t next = image.size();
    for (std::size_t j = i + 1; j < functions.size(); ++j) {
      if (functions[j].offset != f.offset) {
        next = functions[j].offset;
        break;
      }
    }
    if (next - f.offset < kVdsoTrampolineBytes) return SysError{ENOSPC, "vdso function " + f.name + " too short for a jump"};
    // ff 25 00 00 00 00: jmp *0(%rip), i.e. through the 8 bytes that follow.
    const std::uint8_t jump[6] = {0xff, 0x25, 0, 0, 0, 0};
    const std::uint64_t destination = group_base + target->second;
    std::memcpy(image.data() + f.offset, jump, sizeof(jump));
    std::memcpy(image.data() + f.offset + sizeof(jump), &destination, sizeof(destination));
  }
  return ok_status();
}

}  // namespace pat::tracer
