// ElfImage: what the loader needs to know about one ELF executable or
// interpreter, read from an open file and checked field by field against the
// file's size. The file comes from a user: a corrupt or truncated one must
// yield a one-line reason, never a crash or an out-of-bounds read.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace pat::tracer {

// One PT_LOAD program header, as validated.
struct LoadSegment {
  std::uint64_t vaddr = 0;   // unbiased p_vaddr
  std::uint64_t memsz = 0;
  std::uint64_t offset = 0;  // p_offset in the file
  std::uint64_t filesz = 0;
  int prot = 0;              // PROT_* from p_flags
};

struct ElfImage {
  bool fixed_address = false;  // ET_EXEC: must be mapped at its own addresses
  std::uint64_t entry = 0;     // unbiased e_entry
  std::uint16_t phnum = 0;
  std::uint64_t phdr_vaddr = 0;  // unbiased address of the program headers in memory
  std::vector<LoadSegment> segments;
  std::optional<std::string> interpreter;  // PT_INTERP path
  bool executable_stack = false;           // PT_GNU_STACK with PF_X
  std::uint64_t max_align = 4096;          // largest p_align of a PT_LOAD (>= page size)
  // From a "pat" PAT_NOTE_FIXED_BUILDS note (proto/elf_note.h): the directory
  // of this program's fixed-address builds, relative to its own directory.
  std::optional<std::string> fixed_builds_dir;

  // [lowest page of a segment, end of the highest segment rounded up to a page),
  // unbiased.
  std::uint64_t span_start() const;
  std::uint64_t span_end() const;
};

// Why a file is not a loadable ELF image, e.g. "bad ELF magic".
struct ElfRejection {
  std::string reason;
};

// Reads and validates the ELF header, the program headers and PT_INTERP of
// `fd` (a regular file of `file_size` bytes) with pread, so the file offset is
// untouched. Read errors are reported as rejections too.
std::variant<ElfImage, ElfRejection> read_elf_image(int fd, std::uint64_t file_size);

// True if `head` (the first bytes of a file) starts with the ELF magic.
bool has_elf_magic(const char* head, std::size_t size);

}  // namespace pat::tracer
