#include "tracer/elf_relocations.h"

#include <elf.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <span>

#include "tracer/kernel_abi.h"
#include "tracer/mapped_file.h"

namespace pat::tracer {
namespace {

using Field = ImageRelocations::Field;

ElfRejection reject(std::string reason) { return ElfRejection{std::move(reason)}; }

bool fits(std::uint64_t a, std::uint64_t b, std::uint64_t limit) { return a <= limit && b <= limit - a; }

// What a link-time relocation type means for a moved image (the x86-64 psABI,
// "Relocation Types"; numbers from <elf.h>).
enum class Effect {
  Moves,      // writes an address (absolute or PC-relative): see Field
  Unchanged,  // an offset between two places inside the image, or within a TLS block
  Refused,    // a type this file does not know how to move, or one only ld.so applies
};

struct TypeMeaning {
  Effect effect;
  Field field;
};

TypeMeaning meaning_of(std::uint32_t type) {
  switch (type) {
    case R_X86_64_64: return {Effect::Moves, Field::Absolute64};
    case R_X86_64_32: return {Effect::Moves, Field::Absolute32};
    case R_X86_64_32S: return {Effect::Moves, Field::Absolute32Signed};
    case R_X86_64_PC32:
    case R_X86_64_PLT32: return {Effect::Moves, Field::Relative32};
    case R_X86_64_PC64: return {Effect::Moves, Field::Relative64};
    // PC-relative to the image's own GOT, GOT-relative, and TLS-block offsets:
    // both ends move together, or neither is an address.
    case R_X86_64_NONE:
    case R_X86_64_GOT32:
    case R_X86_64_GOTPCREL:
    case R_X86_64_GOTPCRELX:
    case R_X86_64_REX_GOTPCRELX:
    case R_X86_64_GOTOFF64:
    case R_X86_64_GOTPC32:
    case R_X86_64_GOT64:
    case R_X86_64_GOTPCREL64:
    case R_X86_64_GOTPC64:
    case R_X86_64_GOTPLT64:
    case R_X86_64_PLTOFF64:
    case R_X86_64_SIZE32:
    case R_X86_64_SIZE64:
    case R_X86_64_DTPOFF64:
    case R_X86_64_TPOFF64:
    case R_X86_64_TLSGD:
    case R_X86_64_TLSLD:
    case R_X86_64_DTPOFF32:
    case R_X86_64_GOTTPOFF:
    case R_X86_64_TPOFF32:
    case R_X86_64_GOTPC32_TLSDESC:
    case R_X86_64_TLSDESC_CALL: return {Effect::Unchanged, Field::Absolute64};
    // 8- and 16-bit fields cannot hold an address that moves; the rest are
    // dynamic types that have no place among link-time relocations.
    default: return {Effect::Refused, Field::Absolute64};
  }
}

bool is_relative(Field field) { return field == Field::Relative32 || field == Field::Relative64; }

std::size_t width_of(Field field) {
  return field == Field::Absolute64 || field == Field::Relative64 ? 8 : 4;
}

// A table of fixed-size entries in the mapped file, checked against its size
// and read entry by entry (memcpy: a corrupt file may misalign it).
template <class T>
class Table {
 public:
  static std::variant<Table, ElfRejection> in(std::span<const std::byte> file, std::uint64_t offset,
                                              std::uint64_t size, std::uint64_t entry_size, const char* what) {
    if (entry_size != sizeof(T) || size % sizeof(T) != 0) return reject(std::string("bad ") + what + " entry size");
    if (!fits(offset, size, file.size())) return reject(std::string(what) + " beyond the end of the file (truncated?)");
    return Table(file.subspan(offset, size));
  }
  std::size_t size() const { return bytes_.size() / sizeof(T); }
  T operator[](std::size_t index) const {
    T entry;
    std::memcpy(&entry, bytes_.data() + index * sizeof(T), sizeof(T));
    return entry;
  }

 private:
  explicit Table(std::span<const std::byte> bytes) : bytes_(bytes) {}
  std::span<const std::byte> bytes_;
};

// The file's section headers, checked against its size.
std::variant<Table<Elf64_Shdr>, ElfRejection> section_headers(std::span<const std::byte> file) {
  Elf64_Ehdr eh;
  if (file.size() < sizeof(eh)) return reject("truncated ELF header");
  std::memcpy(&eh, file.data(), sizeof(eh));
  // e_shnum 0 with a non-zero e_shoff would mean "more than 0xff00 sections,
  // count in section 0": not what a linked program looks like.
  if (eh.e_shoff == 0 || eh.e_shnum == 0) return reject("no section headers (relocations cannot have been kept)");
  return Table<Elf64_Shdr>::in(file, eh.e_shoff, std::uint64_t{eh.e_shnum} * eh.e_shentsize, eh.e_shentsize,
                               "section header");
}

bool is_loaded(const Elf64_Shdr& section) { return (section.sh_flags & SHF_ALLOC) != 0; }

// True if [start, start + size) lies in the file-backed part of one PT_LOAD.
bool in_file_bytes(const ElfImage& image, std::uint64_t start, std::uint64_t size) {
  for (const LoadSegment& s : image.segments)
    if (start >= s.vaddr && fits(start - s.vaddr, size, s.filesz)) return true;
  return false;
}

// Collects the sites of the SHT_RELA sections that apply to loaded sections.
class SectionReader {
 public:
  SectionReader(std::span<const std::byte> file, const Table<Elf64_Shdr>& sections, ImageRelocations& out)
      : file_(file), sections_(sections), out_(out) {}

  std::optional<ElfRejection> read(const Elf64_Shdr& rela, const Elf64_Shdr& target, const ElfImage& image) {
    if (target.sh_type == SHT_NOBITS) return reject("relocations for a section without file bytes");
    if (!in_file_bytes(image, target.sh_addr, target.sh_size)) return reject("relocated section outside the loaded image");
    if (rela.sh_link >= sections_.size() || sections_[rela.sh_link].sh_type != SHT_SYMTAB)
      return reject("relocations without a symbol table");
    const Elf64_Shdr symbol_header = sections_[rela.sh_link];
    auto symbols = Table<Elf64_Sym>::in(file_, symbol_header.sh_offset, symbol_header.sh_size,
                                        symbol_header.sh_entsize, "symbol");
    if (auto* error = std::get_if<ElfRejection>(&symbols)) return *error;
    auto entries = Table<Elf64_Rela>::in(file_, rela.sh_offset, rela.sh_size, rela.sh_entsize, "relocation");
    if (auto* error = std::get_if<ElfRejection>(&entries)) return *error;
    const auto& table = std::get<Table<Elf64_Rela>>(entries);
    for (std::size_t i = 0; i < table.size(); ++i) {
      if (auto error = add(table[i], target, std::get<Table<Elf64_Sym>>(symbols))) return error;
    }
    return std::nullopt;
  }

 private:
  // A symbol defined in one of the loaded sections is inside the image. Any
  // other (undefined, absolute, or none at all) is decided by value later.
  bool defined_inside(const Elf64_Sym& symbol) const {
    return symbol.st_shndx != SHN_UNDEF && symbol.st_shndx < SHN_LORESERVE && symbol.st_shndx < sections_.size() &&
           is_loaded(sections_[symbol.st_shndx]);
  }

  std::optional<ElfRejection> add(const Elf64_Rela& entry, const Elf64_Shdr& target, const Table<Elf64_Sym>& symbols) {
    const std::uint32_t type = ELF64_R_TYPE(entry.r_info);
    const std::uint64_t symbol_index = ELF64_R_SYM(entry.r_info);
    TypeMeaning meaning = meaning_of(type);
    if (meaning.effect == Effect::Refused) return reject("cannot move relocation type " + std::to_string(type));
    const std::size_t width = meaning.effect == Effect::Moves ? width_of(meaning.field) : 1;
    if (entry.r_offset < target.sh_addr || !fits(entry.r_offset - target.sh_addr, width, target.sh_size))
      return reject("relocation outside the section it applies to");
    if (meaning.effect == Effect::Unchanged) return std::nullopt;
    if (symbol_index >= symbols.size()) return reject("relocation names a symbol beyond the symbol table");
    const auto offset = static_cast<std::uint32_t>(entry.r_offset - out_.link_start);
    if (symbol_index != 0 && defined_inside(symbols[symbol_index])) {
      // Both ends of a PC-relative field inside the image move together.
      if (!is_relative(meaning.field)) out_.inside.push_back({offset, meaning.field});
    } else {
      out_.value_dependent.push_back({offset, meaning.field, entry.r_addend});
    }
    return std::nullopt;
  }

  std::span<const std::byte> file_;
  const Table<Elf64_Shdr>& sections_;
  ImageRelocations& out_;
};

template <class Sites>
void sort_by_offset(Sites& sites) {
  std::sort(sites.begin(), sites.end(), [](const auto& a, const auto& b) { return a.offset < b.offset; });
}

// Two fields that share bytes would be moved twice: refuse such a file. Both
// lists are sorted; walk them together, without allocating.
std::optional<ElfRejection> check_no_overlap(const ImageRelocations& relocations) {
  const auto& a = relocations.inside;
  const auto& b = relocations.value_dependent;
  std::size_t i = 0, j = 0;
  std::uint64_t previous_end = 0;
  while (i < a.size() || j < b.size()) {
    const bool from_a = j == b.size() || (i < a.size() && a[i].offset <= b[j].offset);
    const std::uint64_t offset = from_a ? a[i].offset : b[j].offset;
    const std::uint64_t end = offset + width_of(from_a ? a[i++].field : b[j++].field);
    if (offset < previous_end) return reject("two relocations write the same bytes");
    previous_end = end;
  }
  return std::nullopt;
}

// The runs of pages the sites lie in (a field may straddle two pages).
std::vector<ImageRelocations::PageRun> pages_written(const ImageRelocations& relocations) {
  std::vector<ImageRelocations::PageRun> runs;
  auto add = [&runs](std::uint64_t offset, std::size_t width) {
    const auto first = static_cast<std::uint32_t>(kernel::page_down(offset));
    const auto end = static_cast<std::uint32_t>(kernel::page_up(offset + width));
    if (!runs.empty() && first <= runs.back().offset + runs.back().length) {
      runs.back().length = std::max<std::uint32_t>(runs.back().length, end - runs.back().offset);
    } else {
      runs.push_back({first, end - first});
    }
  };
  std::size_t i = 0, j = 0;
  const auto& a = relocations.inside;
  const auto& b = relocations.value_dependent;
  while (i < a.size() || j < b.size()) {  // in offset order, both lists being sorted
    if (j == b.size() || (i < a.size() && a[i].offset <= b[j].offset)) {
      add(a[i].offset, width_of(a[i].field));
      ++i;
    } else {
      add(b[j].offset, width_of(b[j].field));
      ++j;
    }
  }
  return runs;
}

template <class T>
T load(const std::byte* at) {
  T value;
  std::memcpy(&value, at, sizeof(value));
  return value;
}

template <class T>
void store(std::byte* at, T value) {
  std::memcpy(at, &value, sizeof(value));
}

// The value a field holds, widened as the CPU widens it.
std::int64_t stored_value(Field field, const std::byte* at) {
  switch (field) {
    case Field::Absolute64:
    case Field::Relative64: return load<std::int64_t>(at);
    case Field::Absolute32: return load<std::uint32_t>(at);
    case Field::Absolute32Signed:
    case Field::Relative32: return load<std::int32_t>(at);
  }
  return 0;
}

// Adds `delta` to a field; false if the result does not fit it.
bool shift_field(Field field, std::byte* at, std::int64_t delta) {
  // Unsigned arithmetic: 64-bit fields wrap as the CPU's would.
  const auto value = static_cast<std::int64_t>(static_cast<std::uint64_t>(stored_value(field, at)) +
                                               static_cast<std::uint64_t>(delta));
  switch (field) {
    case Field::Absolute64:
    case Field::Relative64: store<std::int64_t>(at, value); return true;
    case Field::Absolute32:
      if (value < 0 || value > std::numeric_limits<std::uint32_t>::max()) return false;
      store(at, static_cast<std::uint32_t>(value));
      return true;
    case Field::Absolute32Signed:
    case Field::Relative32:
      if (value < std::numeric_limits<std::int32_t>::min() || value > std::numeric_limits<std::int32_t>::max()) return false;
      store(at, static_cast<std::int32_t>(value));
      return true;
  }
  return false;
}

std::string overflow(std::uint64_t link_address, std::uint64_t new_start) {
  char text[128];
  std::snprintf(text, sizeof(text), "the field at 0x%lx cannot hold its address when moved to 0x%lx", link_address,
                new_start);
  return text;
}

}  // namespace

std::variant<ImageRelocations, ElfRejection> read_image_relocations(int fd, std::uint64_t file_size,
                                                                    const ElfImage& image) {
  if (!image.fixed_address) return reject("position-independent: nothing to move");
  // A static executable applies its own IRELATIVE relocations at link-time
  // addresses, and without PT_PHDR ld.so would take the bias for 0.
  if (!image.interpreter || !image.has_phdr_header) return reject("no ELF interpreter or no PT_PHDR: ld.so could not follow a move");
  ImageRelocations relocations;
  relocations.link_start = image.span_start();
  relocations.link_end = image.span_end();
  if (relocations.link_end - relocations.link_start > std::numeric_limits<std::uint32_t>::max())
    return reject("image larger than 4 GiB");

  auto mapped = MappedFile::of(fd);
  if (!mapped) return reject(std::string("mapping the file: ") + std::strerror(errno));
  const std::span<const std::byte> file = mapped->bytes().first(std::min<std::uint64_t>(file_size, mapped->bytes().size()));
  auto headers = section_headers(file);
  if (auto* error = std::get_if<ElfRejection>(&headers)) return *error;
  const auto& sections = std::get<Table<Elf64_Shdr>>(headers);
  // Room for every kept relocation, reserved once: a vector grown by
  // doubling would free megabytes of mmap()ed chunks, which raises glibc's
  // mmap threshold in the host for good. Capacity never written to is never
  // touched, so it costs address space, not memory.
  std::size_t kept_entries = 0;
  for (std::size_t i = 0; i < sections.size(); ++i) {
    const Elf64_Shdr section = sections[i];
    if (section.sh_type == SHT_RELA && !is_loaded(section) && fits(section.sh_offset, section.sh_size, file.size()))
      kept_entries += section.sh_size / sizeof(Elf64_Rela);
  }
  relocations.inside.reserve(kept_entries);
  relocations.value_dependent.reserve(kept_entries);
  SectionReader reader(file, sections, relocations);
  bool kept_any = false;
  for (std::size_t i = 0; i < sections.size(); ++i) {
    const Elf64_Shdr section = sections[i];
    // Loaded relocation sections (.rela.dyn, .rela.plt) are ld.so's.
    if ((section.sh_type != SHT_RELA && section.sh_type != SHT_REL) || is_loaded(section)) continue;
    if (section.sh_info >= sections.size()) return reject("relocation section for a section that does not exist");
    const Elf64_Shdr target = sections[section.sh_info];
    if (!is_loaded(target)) continue;  // debug information, .note.stapsdt: not in memory
    if (section.sh_type == SHT_REL) return reject("SHT_REL relocations (x86-64 links use SHT_RELA)");
    if (auto error = reader.read(section, target, image)) return *error;
    kept_any = true;
  }
  if (!kept_any) return reject("no relocations kept (not linked with --emit-relocs)");
  sort_by_offset(relocations.inside);
  sort_by_offset(relocations.value_dependent);
  if (auto error = check_no_overlap(relocations)) return *error;
  relocations.written_pages = pages_written(relocations);
  return relocations;
}

std::optional<std::string> relocate_image(const ImageRelocations& relocations, std::byte* local,
                                          std::uint64_t new_start) {
  const auto delta = static_cast<std::int64_t>(new_start - relocations.link_start);
  for (const auto& site : relocations.inside) {
    if (!shift_field(site.field, local + site.offset, delta)) return overflow(relocations.link_start + site.offset, new_start);
  }
  for (const auto& site : relocations.value_dependent) {
    std::byte* at = local + site.offset;
    const std::uint64_t place = relocations.link_start + site.offset;
    // The symbol's link-time value, recovered from the field: S + A for an
    // absolute field, S + A - P for a PC-relative one.
    std::uint64_t symbol = static_cast<std::uint64_t>(stored_value(site.field, at) - site.addend);
    if (is_relative(site.field)) symbol += place;
    const bool inside = symbol >= relocations.link_start && symbol <= relocations.link_end;
    // An absolute address inside moves with the image; a PC-relative
    // reference to something outside must shrink by what its place moved.
    std::int64_t shift = is_relative(site.field) ? (inside ? 0 : -delta) : (inside ? delta : 0);
    if (shift != 0 && !shift_field(site.field, at, shift)) return overflow(place, new_start);
  }
  return std::nullopt;
}

}  // namespace pat::tracer
