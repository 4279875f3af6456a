#include "tracer/elf_image.h"

#include <elf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <string_view>

#include "proto/elf_note.h"
#include "tracer/kernel_abi.h"

namespace pat::tracer {
namespace {

using kernel::kPageSize;
using kernel::page_down;
using kernel::page_up;

ElfRejection reject(std::string reason) { return ElfRejection{std::move(reason)}; }

// a + b <= limit, without overflowing.
bool fits(std::uint64_t a, std::uint64_t b, std::uint64_t limit) { return a <= limit && b <= limit - a; }

std::optional<ElfRejection> check_header(const Elf64_Ehdr& eh, std::uint64_t file_size) {
  if (!has_elf_magic(reinterpret_cast<const char*>(eh.e_ident), EI_NIDENT)) return reject("bad ELF magic");
  if (eh.e_ident[EI_CLASS] != ELFCLASS64) return reject("not a 64-bit ELF file");
  if (eh.e_ident[EI_DATA] != ELFDATA2LSB) return reject("not a little-endian ELF file");
  if (eh.e_ident[EI_VERSION] != EV_CURRENT || eh.e_version != EV_CURRENT) return reject("unknown ELF version");
  if (eh.e_machine != EM_X86_64) return reject("built for another machine (e_machine=" + std::to_string(eh.e_machine) + ")");
  if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN) return reject("not an executable (e_type=" + std::to_string(eh.e_type) + ")");
  if (eh.e_phentsize != sizeof(Elf64_Phdr)) return reject("bad program header size");
  // PN_XNUM (0xffff) means "the real count is in section header 0"; the
  // kernel does not support that for executables either.
  if (eh.e_phnum == 0 || eh.e_phnum == PN_XNUM) return reject("bad program header count");
  std::uint64_t ph_bytes = std::uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr);
  if (ph_bytes > kernel::kMaxProgramHeaderBytes) return reject("too many program headers");
  if (!fits(eh.e_phoff, ph_bytes, file_size)) return reject("program headers beyond the end of the file (truncated?)");
  return std::nullopt;
}

std::optional<ElfRejection> add_load_segment(const Elf64_Phdr& ph, std::uint64_t file_size, ElfImage& image) {
  if (ph.p_memsz == 0) return std::nullopt;  // maps nothing (the kernel skips it too)
  if (ph.p_filesz > ph.p_memsz) return reject("segment file size exceeds its memory size");
  if (!fits(ph.p_offset, ph.p_filesz, file_size)) return reject("segment beyond the end of the file (truncated?)");
  if (!fits(ph.p_vaddr, ph.p_memsz, kernel::kTaskSize)) return reject("segment outside the user address space");
  // mmap(2) can only map a file page at a page: offset and address must agree
  // modulo the page size (the ELF spec demands it, binfmt_elf relies on it).
  if ((ph.p_vaddr - ph.p_offset) % kPageSize != 0) return reject("segment offset and address are not congruent modulo the page size");
  if (ph.p_align > kPageSize) {
    if ((ph.p_align & (ph.p_align - 1)) != 0) return reject("segment alignment is not a power of two");
    // Larger alignments only serve huge pages; we cap what we honour so a
    // hostile p_align cannot ask for an absurd reservation.
    if (ph.p_align <= (std::uint64_t{1} << 30) && ph.p_align > image.max_align) image.max_align = ph.p_align;
  }
  int prot = 0;
  if (ph.p_flags & PF_R) prot |= PROT_READ;
  if (ph.p_flags & PF_W) prot |= PROT_WRITE;
  if (ph.p_flags & PF_X) prot |= PROT_EXEC;
  image.segments.push_back(LoadSegment{ph.p_vaddr, ph.p_memsz, ph.p_offset, ph.p_filesz, prot});
  return std::nullopt;
}

std::optional<ElfRejection> read_interpreter(int fd, const Elf64_Phdr& ph, std::uint64_t file_size, ElfImage& image) {
  if (image.interpreter) return reject("more than one PT_INTERP");
  // fs/binfmt_elf.c: at least 2 bytes, at most PATH_MAX, NUL-terminated.
  if (ph.p_filesz < 2 || ph.p_filesz > kernel::kPathMax) return reject("bad interpreter path length");
  if (!fits(ph.p_offset, ph.p_filesz, file_size)) return reject("interpreter path beyond the end of the file (truncated?)");
  std::string path(ph.p_filesz, '\0');
  if (auto error = read_file_bytes(fd, path.data(), path.size(), ph.p_offset)) return error;
  if (path.back() != '\0') return reject("interpreter path is not NUL-terminated");
  path.resize(std::strlen(path.c_str()));
  if (path.empty()) return reject("empty interpreter path");
  image.interpreter = std::move(path);
  return std::nullopt;
}

// One of pat's notes whose desc is NUL-terminated text (proto/elf_note.h).
std::optional<ElfRejection> take_text_note(std::string_view desc, bool single_line, const char* what,
                                           std::optional<std::string>& field) {
  if (field) return reject(std::string("more than one pat ") + what + " note");
  if (desc.size() < 2 || desc.size() > kernel::kPathMax || desc.back() != '\0' ||
      desc.find('\0') != desc.size() - 1 || (single_line && desc.find('\n') != std::string_view::npos))
    return reject(std::string("bad pat ") + what + " note");
  field = std::string(desc.substr(0, desc.size() - 1));
  return std::nullopt;
}

// A PT_NOTE segment: a sequence of (namesz, descsz, type, name, desc), name
// and desc each padded to 4 bytes (8 in a segment aligned to 8, as GNU ld
// lays out .note.gnu.property). Only pat's own notes are taken; others, and
// notes too large to be ours, are skipped (the kernel ignores most notes too).
std::optional<ElfRejection> read_pat_notes(int fd, const Elf64_Phdr& ph, std::uint64_t file_size, ElfImage& image) {
  constexpr std::uint64_t kMaxNoteSegment = 64 * 1024;
  if (ph.p_filesz == 0 || ph.p_filesz > kMaxNoteSegment) return std::nullopt;
  if (!fits(ph.p_offset, ph.p_filesz, file_size)) return reject("note segment beyond the end of the file (truncated?)");
  std::string notes(ph.p_filesz, '\0');
  if (auto error = read_file_bytes(fd, notes.data(), notes.size(), ph.p_offset)) return error;
  const std::uint64_t align = ph.p_align == 8 ? 8 : 4;
  auto pad = [align](std::uint64_t n) { return (n + align - 1) & ~(align - 1); };
  std::uint64_t at = 0;
  while (notes.size() - at >= sizeof(Elf64_Nhdr)) {
    Elf64_Nhdr nh;
    std::memcpy(&nh, notes.data() + at, sizeof(nh));
    at += sizeof(nh);
    std::uint64_t name_size = pad(nh.n_namesz), desc_size = pad(nh.n_descsz);
    if (name_size > notes.size() - at || desc_size > notes.size() - at - name_size) break;  // malformed: stop reading
    std::string_view name(notes.data() + at, nh.n_namesz);
    std::string_view desc(notes.data() + at + name_size, nh.n_descsz);
    at += name_size + desc_size;
    if (name != std::string_view(PAT_NOTE_OWNER, sizeof(PAT_NOTE_OWNER))) continue;
    std::optional<ElfRejection> error;
    if (nh.n_type == PAT_NOTE_NONPIC_BUILD) error = take_text_note(desc, true, "non-PIC build", image.nonpic_build);
    if (nh.n_type == PAT_NOTE_BUILD_INPUTS) error = take_text_note(desc, false, "build inputs", image.build_inputs);
    if (error) return error;
  }
  return std::nullopt;
}

// Where the program headers are once mapped (AT_PHDR): inside the PT_LOAD
// that holds their file bytes, as fs/binfmt_elf.c computes it since 5.18;
// PT_PHDR as a fallback.
std::optional<ElfRejection> locate_program_headers(const Elf64_Ehdr& eh, std::optional<std::uint64_t> pt_phdr, ElfImage& image) {
  std::uint64_t ph_bytes = std::uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr);
  for (const LoadSegment& s : image.segments) {
    if (eh.e_phoff >= s.offset && eh.e_phoff - s.offset + ph_bytes <= s.filesz) {
      image.phdr_vaddr = s.vaddr + (eh.e_phoff - s.offset);
      return std::nullopt;
    }
  }
  if (pt_phdr) {
    image.phdr_vaddr = *pt_phdr;
    return std::nullopt;
  }
  return reject("program headers are not in a loadable segment");
}

bool entry_is_loaded(const ElfImage& image) {
  for (const LoadSegment& s : image.segments)
    if (image.entry >= s.vaddr && image.entry - s.vaddr < s.memsz) return true;
  return false;
}

}  // namespace

std::optional<ElfRejection> read_file_bytes(int fd, void* out, std::size_t size, std::uint64_t offset) {
  auto* bytes = static_cast<char*>(out);
  while (size > 0) {
    ssize_t n = ::pread(fd, bytes, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return reject(std::string("read failed: ") + std::strerror(errno));
    if (n == 0) return reject("file shrank while being read");
    bytes += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return std::nullopt;
}

bool has_elf_magic(const char* head, std::size_t size) { return size >= SELFMAG && std::memcmp(head, ELFMAG, SELFMAG) == 0; }

std::uint64_t ElfImage::span_start() const {
  std::uint64_t lo = UINT64_MAX;
  for (const LoadSegment& s : segments) lo = std::min(lo, page_down(s.vaddr));
  return lo;
}

std::uint64_t ElfImage::span_end() const {
  std::uint64_t hi = 0;
  for (const LoadSegment& s : segments) hi = std::max(hi, page_up(s.vaddr + s.memsz));
  return hi;
}

std::variant<ElfImage, ElfRejection> read_elf_image(int fd, std::uint64_t file_size) {
  Elf64_Ehdr eh{};
  std::size_t head = static_cast<std::size_t>(std::min<std::uint64_t>(file_size, sizeof(eh)));
  if (auto error = read_file_bytes(fd, &eh, head, 0)) return *error;
  if (!has_elf_magic(reinterpret_cast<const char*>(eh.e_ident), head)) return reject("bad ELF magic");
  if (head < sizeof(eh)) return reject("truncated ELF header");
  if (auto error = check_header(eh, file_size)) return *error;

  std::vector<Elf64_Phdr> phdrs(eh.e_phnum);
  if (auto error = read_file_bytes(fd, phdrs.data(), phdrs.size() * sizeof(Elf64_Phdr), eh.e_phoff)) return *error;

  ElfImage image;
  image.fixed_address = eh.e_type == ET_EXEC;
  image.entry = eh.e_entry;
  image.phnum = eh.e_phnum;
  std::optional<std::uint64_t> pt_phdr;
  for (const Elf64_Phdr& ph : phdrs) {
    std::optional<ElfRejection> error;
    switch (ph.p_type) {
      case PT_LOAD: error = add_load_segment(ph, file_size, image); break;
      case PT_INTERP: error = read_interpreter(fd, ph, file_size, image); break;
      case PT_GNU_STACK: image.executable_stack = (ph.p_flags & PF_X) != 0; break;
      case PT_PHDR: pt_phdr = ph.p_vaddr; image.has_phdr_header = true; break;
      case PT_NOTE: error = read_pat_notes(fd, ph, file_size, image); break;
      default: break;
    }
    if (error) return *error;
  }
  if (image.segments.empty()) return reject("no loadable segments");
  if (image.fixed_address && image.span_start() < kPageSize) return reject("fixed-address segment at page zero");
  if (!entry_is_loaded(image)) return reject("entry point outside every loadable segment");
  if (auto error = locate_program_headers(eh, pt_phdr, image)) return *error;
  return image;
}

}  // namespace pat::tracer
