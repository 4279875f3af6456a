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
  bool has_phdr_header = false;    // a PT_PHDR: ld.so takes the load bias from it
  std::vector<LoadSegment> segments;
  std::optional<std::string> interpreter;  // PT_INTERP path
  bool executable_stack = false;           // PT_GNU_STACK with PF_X
  std::uint64_t max_align = 4096;          // largest p_align of a PT_LOAD (>= page size)
  // From pat's notes (proto/elf_note.h). PAT_NOTE_NONPIC_BUILD: the path of
  // this program's non-PIC build, relative to its own directory.
  std::optional<std::string> nonpic_build;
  // PAT_NOTE_BUILD_INPUTS: what this build was linked from, as text
  // (tracer/build_inputs.h reads it).
  std::optional<std::string> build_inputs;

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

// pread exactly `size` bytes at `offset`, or explain why not (a short file
// is "file shrank while being read"). For readers of other parts of the file.
std::optional<ElfRejection> read_file_bytes(int fd, void* out, std::size_t size, std::uint64_t offset);

// True if `head` (the first bytes of a file) starts with the ELF magic.
bool has_elf_magic(const char* head, std::size_t size);

}  // namespace pat::tracer
