#include "tracer/core_file.h"

#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include "base/unique_fd.h"
#include "tracer/core_pattern.h"
#include "tracer/memory_in_use.h"

namespace pat::tracer {
namespace {

constexpr std::uint64_t kPage = 4096;
// include/uapi/linux/elfcore.h: struct elf_prpsinfo, x86-64 layout.
constexpr std::size_t kPrpsinfoSize = 136;
constexpr std::size_t kPsargsOffset = 56;
constexpr std::size_t kPsargsSize = 80;  // ELF_PRARGSZ

struct Note {
  std::string name;  // "CORE", "LINUX"
  std::uint32_t type;
  std::string desc;
};

struct Segment {
  Range range;
  std::uint32_t flags = 0;  // PF_R | PF_W | PF_X
  std::vector<Range> data;  // what has contents in the file; the rest are holes
  std::uint64_t filesz = 0;
};

bool is_pseudo(const Mapping& m) { return !m.path.empty() && m.path.front() == '['; }
bool is_file(const Mapping& m) { return !m.path.empty() && !is_pseudo(m); }
bool ends_with(const std::string& text, std::string_view end) {
  return text.size() >= end.size() && text.compare(text.size() - end.size(), end.size(), end) == 0;
}

// `mem` is /proc/self/mem: it fails where reading the address would fault.
bool starts_with_elf_magic(int mem, std::uintptr_t address) {
  char magic[SELFMAG];
  return ::pread(mem, magic, SELFMAG, static_cast<off_t>(address)) == SELFMAG && std::memcmp(magic, ELFMAG, SELFMAG) == 0;
}

// What of `piece` (part of `mapping`) goes into the core: fs/coredump.c
// vma_dump_size() under `filter`, with one difference: memory the member
// made PROT_NONE is left out (the kernel reads it with FOLL_FORCE; it is
// guard pages and reservations here, like the 4 GiB brk reservation).
//
// Unlike the kernel, the file part of a segment ends with its last page in
// use: what follows was never touched, reads as zeros from memsz alone, and
// would only make the file's apparent size larger (a member's heap is a
// 64 MiB mapping from the start, docs/memory.md).
Segment dump_of(const Mapping& mapping, Range piece, std::uint32_t filter, int pagemap, int mem) {
  Segment segment;
  segment.range = piece;
  segment.flags = (mapping.read ? PF_R : 0) | (mapping.write ? PF_W : 0) | (mapping.exec ? PF_X : 0);
  auto whole = [&](std::vector<Range> data) {
    segment.data = std::move(data);
    if (!segment.data.empty()) segment.filesz = segment.data.back().end - piece.start;
    return segment;
  };
  if (mapping.path == "[vdso]") return whole({piece});
  if (!mapping.read) return segment;
  PagesInUse use = pages_in_use(pagemap, piece);
  if (mapping.shared) {
    bool anonymous = !is_file(mapping) || ends_with(mapping.path, " (deleted)");  // i_nlink == 0
    bool wanted = filter & (anonymous ? dump_filter::kAnonShared : dump_filter::kMappedShared);
    return wanted ? whole(std::move(use.runs)) : segment;
  }
  // Private: written pages are anonymous (copied on write), the rest the file's.
  if (use.written && (filter & dump_filter::kAnonPrivate)) {
    // A file mapping written to is dumped whole: its unwritten pages are the file's.
    return whole(is_file(mapping) ? std::vector<Range>{piece} : std::move(use.runs));
  }
  if (!is_file(mapping)) return segment;
  if (filter & dump_filter::kMappedPrivate) return whole({piece});
  // The first page of an ELF file, so a debugger finds its build id.
  if ((filter & dump_filter::kElfHeaders) && mapping.offset == 0 && piece.start == mapping.range.start &&
      starts_with_elf_magic(mem, piece.start)) {
    segment.data = {Range{piece.start, piece.start + kPage}};
    segment.filesz = kPage;
  }
  return segment;
}

// NT_FILE (fs/binfmt_elf.c fill_files_note()): count, page size, then
// {start, end, file offset in pages} per file mapping, then their names.
std::string files_note(const MappingPieces& pieces) {
  std::vector<std::uint64_t> words{0, kPage};
  std::string names;
  for (const auto& [mapping, piece] : pieces) {
    if (!is_file(mapping)) continue;
    words.push_back(piece.start);
    words.push_back(piece.end);
    words.push_back((mapping.offset + (piece.start - mapping.range.start)) / kPage);
    names += mapping.path;
    names += '\0';
    ++words[0];
  }
  std::string desc(reinterpret_cast<const char*>(words.data()), words.size() * sizeof(std::uint64_t));
  return desc + names;
}

// The value of dynamic symbol `name` in the ELF file at `path` (its .dynsym).
std::optional<std::uint64_t> dynamic_symbol(const std::string& path, std::string_view name) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  Elf64_Ehdr ehdr{};
  if (!fd || ::pread(fd.get(), &ehdr, sizeof(ehdr), 0) != sizeof(ehdr) || ehdr.e_shentsize != sizeof(Elf64_Shdr))
    return std::nullopt;
  std::vector<Elf64_Shdr> sections(ehdr.e_shnum);
  auto bytes = static_cast<ssize_t>(sections.size() * sizeof(Elf64_Shdr));
  if (::pread(fd.get(), sections.data(), static_cast<std::size_t>(bytes), static_cast<off_t>(ehdr.e_shoff)) != bytes)
    return std::nullopt;
  for (const Elf64_Shdr& symtab : sections) {
    if (symtab.sh_type != SHT_DYNSYM || symtab.sh_link >= sections.size()) continue;
    const Elf64_Shdr& strtab = sections[symtab.sh_link];
    std::string strings(strtab.sh_size, '\0');
    std::vector<Elf64_Sym> symbols(symtab.sh_size / sizeof(Elf64_Sym));
    if (::pread(fd.get(), strings.data(), strings.size(), static_cast<off_t>(strtab.sh_offset)) !=
            static_cast<ssize_t>(strings.size()) ||
        ::pread(fd.get(), symbols.data(), symbols.size() * sizeof(Elf64_Sym), static_cast<off_t>(symtab.sh_offset)) !=
            static_cast<ssize_t>(symbols.size() * sizeof(Elf64_Sym))) {
      return std::nullopt;
    }
    for (const Elf64_Sym& symbol : symbols) {
      if (symbol.st_name < strings.size() && std::string_view(strings.c_str() + symbol.st_name) == name)
        return symbol.st_value;
    }
  }
  return std::nullopt;
}

// 4 bytes of our (the group's) memory, read safely: /proc/self/mem fails
// where a direct read would fault.
std::optional<std::uint32_t> read_word(int mem, std::uint64_t address) {
  std::uint32_t value;
  if (::pread(mem, &value, sizeof(value), static_cast<off_t>(address)) != sizeof(value)) return std::nullopt;
  return value;
}

// What the member's threads changed in its memory between the dump and the
// host's look at it: each thread, leaving, had the kernel write 0 to its
// clear_child_tid, which glibc points at its struct pthread's tid
// (set_tid_address(2)); libthread_db then finds no thread there. The tid
// comes back from the thread's NT_PRSTATUS (pr_pid), where its struct
// pthread is from the same note (fs_base is the thread pointer), and the
// field's offset from libc's libthread_db descriptor _thread_db_pthread_tid
// ({bits, count, offset}). Returned as (address, value) to write in the core.
std::vector<std::pair<std::uint64_t, std::uint32_t>> thread_ids_to_restore(
    const std::vector<Note>& notes, const MappingPieces& pieces, int mem) {
  std::vector<std::pair<std::uint64_t, std::uint32_t>> restores;
  std::optional<std::uint32_t> tid_offset;
  for (const auto& [mapping, piece] : pieces) {
    std::string name = mapping.path.substr(mapping.path.rfind('/') + 1);
    if (mapping.offset != 0 || piece.start != mapping.range.start || name.rfind("libc.so", 0) != 0) continue;
    auto descriptor = dynamic_symbol(mapping.path, "_thread_db_pthread_tid");  // libc's first PT_LOAD is at 0
    if (descriptor) tid_offset = read_word(mem, piece.start + *descriptor + 8);
    break;
  }
  if (!tid_offset) return restores;
  // include/uapi/linux/elfcore.h struct elf_prstatus: pr_pid at 32, pr_reg
  // (struct user_regs_struct) at 112, whose fs_base is its 22nd word.
  constexpr std::size_t kPid = 32, kFsBase = 112 + 21 * 8;
  for (const Note& note : notes) {
    if (note.name != "CORE" || note.type != NT_PRSTATUS || note.desc.size() < kFsBase + 8) continue;
    std::int32_t tid;
    std::uint64_t fs_base;
    std::memcpy(&tid, note.desc.data() + kPid, sizeof(tid));
    std::memcpy(&fs_base, note.desc.data() + kFsBase, sizeof(fs_base));
    if (fs_base != 0 && read_word(mem, fs_base + *tid_offset) == 0u)
      restores.emplace_back(fs_base + *tid_offset, static_cast<std::uint32_t>(tid));
  }
  return restores;
}

std::string psargs(const std::vector<std::string>& argv) {
  std::string joined;
  for (const auto& arg : argv) joined += (joined.empty() ? "" : " ") + arg;
  joined.resize(kPsargsSize - 1);  // cut, or padded with NULs
  return joined + '\0';
}

std::uint32_t padded(std::size_t size) { return static_cast<std::uint32_t>((size + 3) & ~std::size_t{3}); }

// What the kernel wrote: its headers and notes, and which bytes of the file
// it filled (headers, notes, the vdso). The member's core is written over
// it, so those bytes must end up the member's or zero: the group's command
// line and every member's files are in them.
struct KernelCore {
  Elf64_Ehdr ehdr{};
  std::vector<Note> notes;
  std::vector<Range> filled;  // file offsets, ascending
  std::uint64_t size = 0;     // of the file
};

Result<std::vector<Note>> parse_notes(const std::string& raw) {
  std::vector<Note> notes;
  for (std::size_t at = 0; at + sizeof(Elf64_Nhdr) <= raw.size();) {
    Elf64_Nhdr header;
    std::memcpy(&header, raw.data() + at, sizeof(header));
    std::size_t name_at = at + sizeof(header), desc_at = name_at + padded(header.n_namesz);
    if (desc_at + header.n_descsz > raw.size()) return SysError{EINVAL, "the kernel's core has a truncated note"};
    std::string name = raw.substr(name_at, header.n_namesz);
    if (!name.empty() && name.back() == '\0') name.pop_back();
    notes.push_back(Note{name, header.n_type, raw.substr(desc_at, header.n_descsz)});
    at = desc_at + padded(header.n_descsz);
  }
  return notes;
}

// The program headers are read in one go: a group has thousands of mappings,
// and the kernel wrote one PT_LOAD (without memory) for each.
Result<KernelCore> read_kernel_core(int fd) {
  KernelCore core;
  struct stat st {};
  if (::fstat(fd, &st) != 0) return last_error("reading the kernel's core");
  core.size = static_cast<std::uint64_t>(st.st_size);
  Elf64_Ehdr& ehdr = core.ehdr;
  if (::pread(fd, &ehdr, sizeof(ehdr), 0) != sizeof(ehdr)) return last_error("reading the kernel's core");
  if (std::memcmp(ehdr.e_ident, ELFMAG, SELFMAG) != 0 || ehdr.e_ident[EI_CLASS] != ELFCLASS64 ||
      ehdr.e_type != ET_CORE || ehdr.e_phentsize != sizeof(Elf64_Phdr)) {
    return SysError{EINVAL, "the kernel's core is not a 64-bit ELF core"};
  }
  std::size_t count = ehdr.e_phnum;
  std::uint64_t headers_end = ehdr.e_phoff;
  if (count == PN_XNUM) {  // extended numbering: the real count is in section 0's sh_info
    Elf64_Shdr section0{};
    if (::pread(fd, &section0, sizeof(section0), static_cast<off_t>(ehdr.e_shoff)) != sizeof(section0))
      return last_error("reading the kernel's core (section header)");
    count = section0.sh_info;
    headers_end = std::max<std::uint64_t>(headers_end, ehdr.e_shoff + sizeof(section0));
  }
  std::vector<Elf64_Phdr> phdrs(count);
  const auto phdr_bytes = static_cast<ssize_t>(count * sizeof(Elf64_Phdr));
  if (::pread(fd, phdrs.data(), static_cast<std::size_t>(phdr_bytes), static_cast<off_t>(ehdr.e_phoff)) != phdr_bytes)
    return last_error("reading the kernel's core (program headers)");
  headers_end = std::max<std::uint64_t>(headers_end, ehdr.e_phoff + static_cast<std::uint64_t>(phdr_bytes));
  bool have_notes = false;
  for (const Elf64_Phdr& phdr : phdrs) {
    if (phdr.p_type == PT_NOTE && !have_notes) {
      std::string raw(phdr.p_filesz, '\0');
      if (::pread(fd, raw.data(), raw.size(), static_cast<off_t>(phdr.p_offset)) != static_cast<ssize_t>(raw.size()))
        return last_error("reading the kernel's core (notes)");
      auto notes = parse_notes(raw);
      if (!notes) return notes.error();
      core.notes = std::move(notes.value());
      have_notes = true;
      headers_end = std::max<std::uint64_t>(headers_end, phdr.p_offset + phdr.p_filesz);
    } else if (phdr.p_type == PT_LOAD && phdr.p_filesz > 0) {
      core.filled.push_back(Range{phdr.p_offset, phdr.p_offset + phdr.p_filesz});
    }
  }
  if (!have_notes) return SysError{EINVAL, "the kernel's core has no notes"};
  core.filled.insert(core.filled.begin(), Range{0, headers_end});
  for (Range& range : core.filled) range.end = std::min<std::uint64_t>(range.end, core.size);
  std::sort(core.filled.begin(), core.filled.end(), [](const Range& a, const Range& b) { return a.start < b.start; });
  return core;
}

// The parts of `ranges` that none of `minus` covers; both ascending.
std::vector<Range> uncovered(const std::vector<Range>& ranges, const std::vector<Range>& minus) {
  std::vector<Range> left;
  auto cover = minus.begin();
  for (Range range : ranges) {
    while (cover != minus.end() && cover->end <= range.start) ++cover;
    for (auto it = cover; it != minus.end() && it->start < range.end && range.start < range.end; ++it) {
      if (it->start > range.start) left.push_back(Range{range.start, it->start});
      range.start = std::max(range.start, it->end);
    }
    if (range.start < range.end) left.push_back(range);
  }
  return left;
}

std::string encoded(const std::vector<Note>& notes) {
  std::string out;
  for (const Note& note : notes) {
    Elf64_Nhdr header{static_cast<std::uint32_t>(note.name.size() + 1), static_cast<std::uint32_t>(note.desc.size()),
                      note.type};
    out.append(reinterpret_cast<const char*>(&header), sizeof(header));
    out += note.name;
    out.append(padded(note.name.size() + 1) - note.name.size(), '\0');
    out += note.desc;
    out.append(padded(note.desc.size()) - note.desc.size(), '\0');
  }
  return out;
}

// pwrite(2) that stops at the core's size limit. False once it is reached.
class LimitedWriter {
 public:
  LimitedWriter(int fd, std::uint64_t limit) : fd_(fd), limit_(limit) {}

  Status write(const void* data, std::uint64_t size, std::uint64_t offset) {
    if (offset >= limit_) return reached();
    std::uint64_t allowed = std::min(size, limit_ - offset);
    const char* from = static_cast<const char*>(data);
    for (std::uint64_t done = 0; done < allowed;) {
      ssize_t n = ::pwrite(fd_, from + done, allowed - done, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      // EFAULT: memory gone or unreadable under us (it is the member's own,
      // and it is dead, so this should not happen): leave a hole.
      if (n < 0 && errno == EFAULT) return ok_status();
      if (n <= 0) return last_error("writing the member's core");
      done += static_cast<std::uint64_t>(n);
    }
    return allowed < size ? reached() : ok_status();
  }
  bool truncated() const { return truncated_; }

 private:
  Status reached() {
    truncated_ = true;
    return ok_status();
  }
  int fd_;
  std::uint64_t limit_;
  bool truncated_ = false;
};

// The three notes the kernel got from the address space rather than from the
// member: NT_PRPSINFO's arguments (the group's title), NT_AUXV (the host's)
// and NT_FILE (every file mapped in the group). Returns the thread count.
std::size_t rewrite_notes(std::vector<Note>& notes, const MemberCoreSource& member,
                          const MappingPieces& pieces) {
  std::size_t threads = 0;
  for (Note& note : notes) {
    if (note.name != "CORE") continue;
    if (note.type == NT_PRSTATUS) ++threads;
    if (note.type == NT_PRPSINFO && note.desc.size() == kPrpsinfoSize)
      note.desc.replace(kPsargsOffset, kPsargsSize, psargs(member.argv));
    if (note.type == NT_AUXV)
      note.desc.assign(reinterpret_cast<const char*>(member.auxv.data()), member.auxv.size() * sizeof(std::uint64_t));
    if (note.type == NT_FILE) note.desc = files_note(pieces);
  }
  return threads;
}

// Where everything goes in the file, as elf_core_dump() lays it out: the ELF
// header, the program headers (PT_NOTE first), the notes, with extended
// numbering a section header holding the real count, then the memory,
// page-aligned.
struct CoreLayout {
  Elf64_Ehdr ehdr;
  std::vector<Elf64_Phdr> phdrs;  // [0] is PT_NOTE; [i + 1] is segments[i]
  std::optional<Elf64_Shdr> section0;
  std::uint64_t size = 0;         // of the whole file
};

CoreLayout lay_out(Elf64_Ehdr ehdr, std::size_t note_bytes, const std::vector<Segment>& segments) {
  CoreLayout layout;
  const std::size_t phnum = 1 + segments.size();
  std::uint64_t offset = sizeof(Elf64_Ehdr) + phnum * sizeof(Elf64_Phdr);
  layout.phdrs.push_back(Elf64_Phdr{PT_NOTE, 0, offset, 0, 0, note_bytes, 0, 4});
  offset += note_bytes;
  ehdr.e_shoff = 0;
  if (phnum >= PN_XNUM) {
    layout.section0 = Elf64_Shdr{};
    layout.section0->sh_info = static_cast<std::uint32_t>(phnum);
    ehdr.e_shoff = offset;
    offset += sizeof(Elf64_Shdr);
  }
  offset = (offset + kPage - 1) / kPage * kPage;
  for (const Segment& segment : segments) {
    layout.phdrs.push_back(
        Elf64_Phdr{PT_LOAD, segment.flags, offset, segment.range.start, 0, segment.filesz, segment.range.size(), kPage});
    offset += segment.filesz;
  }
  ehdr.e_phoff = sizeof(Elf64_Ehdr);
  ehdr.e_phnum = layout.section0 ? PN_XNUM : static_cast<Elf64_Half>(phnum);
  ehdr.e_shentsize = layout.section0 ? sizeof(Elf64_Shdr) : 0;
  ehdr.e_shnum = layout.section0 ? 1 : 0;
  ehdr.e_shstrndx = SHN_UNDEF;
  layout.ehdr = ehdr;
  layout.size = offset;
  return layout;
}

// The bytes of the file `layout` fills: headers and notes, then each run
// of memory. Ascending.
std::vector<Range> filled_by(const CoreLayout& layout, const std::vector<Segment>& segments) {
  const Elf64_Phdr& notes = layout.phdrs[0];
  std::uint64_t headers_end = notes.p_offset + notes.p_filesz;
  if (layout.section0) headers_end = layout.ehdr.e_shoff + sizeof(Elf64_Shdr);
  std::vector<Range> filled{Range{0, headers_end}};
  for (std::size_t i = 0; i < segments.size(); ++i) {
    for (const Range& data : segments[i].data) {
      std::uint64_t at = layout.phdrs[i + 1].p_offset + (data.start - segments[i].range.start);
      filled.push_back(Range{at, at + data.size()});
    }
  }
  return filled;
}

// The headers, the notes and the member's memory straight from the shared
// address space (pwrite(2) from its addresses: the kernel copies, and fails
// with EFAULT rather than faulting us), then the thread ids put back, then
// zeros over what remains of the kernel's bytes (`stale`).
Status write_core(LimitedWriter& writer, const CoreLayout& layout, const std::string& note_bytes,
                  const std::vector<Segment>& segments,
                  const std::vector<std::pair<std::uint64_t, std::uint32_t>>& restores, const std::vector<Range>& stale) {
  if (auto s = writer.write(&layout.ehdr, sizeof(layout.ehdr), 0); !s) return s;
  if (auto s = writer.write(layout.phdrs.data(), layout.phdrs.size() * sizeof(Elf64_Phdr), layout.ehdr.e_phoff); !s)
    return s;
  if (auto s = writer.write(note_bytes.data(), note_bytes.size(), layout.phdrs[0].p_offset); !s) return s;
  if (layout.section0) {
    if (auto s = writer.write(&*layout.section0, sizeof(Elf64_Shdr), layout.ehdr.e_shoff); !s) return s;
  }
  for (std::size_t i = 0; i < segments.size() && !writer.truncated(); ++i) {
    for (const Range& data : segments[i].data) {
      auto s = writer.write(reinterpret_cast<const void*>(data.start), data.size(),
                            layout.phdrs[i + 1].p_offset + (data.start - segments[i].range.start));
      if (!s) return s;
    }
  }
  for (const auto& [address, tid] : restores) {
    for (std::size_t i = 0; i < segments.size(); ++i) {
      bool written = std::any_of(segments[i].data.begin(), segments[i].data.end(), [at = address](const Range& r) {
        return r.contains(at) && r.contains(at + sizeof(std::uint32_t) - 1);
      });
      if (!written) continue;
      if (auto s = writer.write(&tid, sizeof(tid), layout.phdrs[i + 1].p_offset + (address - segments[i].range.start)); !s)
        return s;
    }
  }
  static const std::vector<char> zeros(16 * kPage);
  for (const Range& range : stale) {
    for (std::uint64_t at = range.start; at < range.end; at += zeros.size()) {
      if (auto s = writer.write(zeros.data(), std::min<std::uint64_t>(zeros.size(), range.end - at), at); !s) return s;
    }
  }
  return ok_status();
}

// A stretch of at least this much never-touched memory inside a segment is
// left out of the file (a segment of its own, with no contents) rather than
// made a hole: a hole costs no disk but counts in the file's size.
constexpr std::uint64_t kLongHole = std::uint64_t{1} << 20;

// A member's stack is one mapping of RLIMIT_STACK made at launch, used
// from its top, with the launcher's scratch page near its bottom (an
// ordinary process's stack mapping grows down as it is used, so its core
// has no such stretch); a heap mapping is used from its bottom.
std::vector<Segment> without_long_holes(std::vector<Segment> segments) {
  std::vector<Segment> out;
  out.reserve(segments.size());
  auto finish = [&out](Segment& part, std::uintptr_t end) {
    part.range.end = end;
    part.filesz = part.data.empty() ? 0 : part.data.back().end - part.range.start;
    out.push_back(std::move(part));
  };
  for (Segment& segment : segments) {
    Segment part{Range{segment.range.start, 0}, segment.flags, {}, 0};
    std::uintptr_t used_to = segment.range.start;
    for (const Range& run : segment.data) {
      if (run.start - used_to >= kLongHole) {
        if (used_to > part.range.start) finish(part, used_to);
        out.push_back(Segment{Range{used_to, run.start}, segment.flags, {}, 0});
        part = Segment{Range{run.start, 0}, segment.flags, {}, 0};
      }
      part.data.push_back(run);
      used_to = run.end;
    }
    finish(part, segment.range.end);
  }
  return out;
}

}  // namespace

std::optional<std::uint32_t> exclude_memory_from_kernel_cores() {
  std::fstream file("/proc/self/coredump_filter");
  std::uint32_t previous = 0;
  if (!(file >> std::hex >> previous)) return std::nullopt;
  file.clear();
  file.seekp(0);
  if (!(file << "0" << std::flush)) return std::nullopt;
  return previous;
}

void restore_core_filter(pid_t pid, std::uint32_t filter) {
  std::ofstream file("/proc/" + std::to_string(pid) + "/coredump_filter");
  // The kernel parses the value with base 0 (kstrtouint): hex needs its 0x.
  file << "0x" << std::hex << filter << std::flush;  // a process that is gone has nothing to restore
}

Result<MemberCore> write_member_core(int core_fd, const MemberCoreSource& member) {
  auto kernel = read_kernel_core(core_fd);
  if (!kernel) return kernel.error();
  std::vector<Note>& notes = kernel->notes;

  UniqueFd pagemap(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  if (!pagemap) return last_error("opening /proc/self/pagemap");
  UniqueFd mem(::open("/proc/self/mem", O_RDONLY | O_CLOEXEC));
  if (!mem) return last_error("opening /proc/self/mem");
  auto pieces = mapping_pieces(member.owned);
  std::vector<Segment> segments;
  for (const auto& [mapping, piece] : pieces)
    segments.push_back(dump_of(mapping, piece, member.filter, pagemap.get(), mem.get()));
  segments = without_long_holes(std::move(segments));

  MemberCore core;
  core.threads = rewrite_notes(notes, member, pieces);
  const std::string note_bytes = encoded(notes);
  const CoreLayout layout = lay_out(kernel->ehdr, note_bytes.size(), segments);
  auto restores = thread_ids_to_restore(notes, pieces, mem.get());

  LimitedWriter writer(core_fd, member.limit);
  const auto stale = uncovered(kernel->filled, filled_by(layout, segments));
  if (auto written = write_core(writer, layout, note_bytes, segments, restores, stale); !written) return written.error();
  core.truncated = writer.truncated();
  core.bytes = core.truncated ? member.limit : layout.size;
  // Only ever grown: shrinking the kernel's freshly written file took about
  // 30 ms on ext4 here (docs/debugging.md), longer than the whole core
  // takes. Past the member's end it is zeros.
  if (core.bytes > kernel->size) {
    if (::ftruncate(core_fd, static_cast<off_t>(core.bytes)) != 0) return last_error("sizing the member's core");
  } else {
    core.bytes = kernel->size;
  }
  core.segments = segments.size();
  return core;
}

Result<MemberCore> complete_member_core(const MemberCoreSource& member) {
  auto pattern = CorePattern::of_this_system();
  if (!pattern) return pattern.error();
  DumpedProcess dumped;
  dumped.pid = member.pid;
  dumped.comm = member.comm;
  dumped.core_limit = member.limit;
  dumped.signal = member.signal;
  dumped.uid = ::getuid();  // members run with the host's credentials
  dumped.gid = ::getgid();
  char exe[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe));
  if (n > 0) dumped.kernel_exe.assign(exe, static_cast<std::size_t>(n));
  dumped.program = member.program;
  auto location = find_kernel_core(pattern.value(), dumped, member.cwd.get());
  if (!location) return location.error();

  // Written over the kernel's file, as the kernel writes its own: a new
  // file and the kernel's removed would cost more than the whole core
  // (removing the kernel's took about 30 ms on ext4 here, docs/debugging.md). Nobody sees it half written who waits
  // for the member: it is reaped only after. A file that cannot be
  // completed is removed: it would describe the group, not the member.
  const int dir = location->directory.get();
  auto core = write_member_core(location->kernel_core.get(), member);
  if (!core) {
    ::unlinkat(dir, location->kernel_name.c_str(), 0);
    return core.error();
  }
  if (location->member_name != location->kernel_name &&
      ::renameat(dir, location->kernel_name.c_str(), dir, location->member_name.c_str()) != 0) {
    SysError error = last_error("renaming the core to " + location->member_path());
    ::unlinkat(dir, location->kernel_name.c_str(), 0);
    return error;
  }
  core->path = location->member_path();
  return core;
}

}  // namespace pat::tracer
