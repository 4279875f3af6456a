// Moving a non-PIC image (tracer/elf_relocations.h), checked over real
// files: the same objects linked at two addresses, once with their
// relocations kept. The first, moved to the second's address, must equal the
// second byte for byte, except in the sections ld.so adjusts by the load
// bias itself. Corrupt relocation data is rejected, never followed.
#include "tracer/elf_relocations.h"
#include "tracer/relocating_loader.h"

#include <doctest/doctest.h>
#include <elf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <set>

#include "base/unique_fd.h"
#include "tests/tracer/test_files.h"

using namespace pat::tracer;
using pat::tracer::testing::program;
using pat::tracer::testing::read_file;

namespace {

struct Parsed {
  ElfImage image;
  std::variant<ImageRelocations, ElfRejection> relocations;
};

Parsed parse(const std::string& bytes) {
  pat::UniqueFd fd(::memfd_create("relocations-test", MFD_CLOEXEC));
  REQUIRE(fd);
  REQUIRE(::write(fd.get(), bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  auto image = read_elf_image(fd.get(), bytes.size());
  REQUIRE(std::holds_alternative<ElfImage>(image));
  Parsed parsed{std::get<ElfImage>(image), ElfRejection{}};
  parsed.relocations = read_image_relocations(fd.get(), bytes.size(), parsed.image);
  return parsed;
}

std::string rejection(const std::string& bytes) {
  auto parsed = parse(bytes);
  REQUIRE(std::holds_alternative<ElfRejection>(parsed.relocations));
  return std::get<ElfRejection>(parsed.relocations).reason;
}

// The image as the loader lays it out: every PT_LOAD's file bytes at its
// address (from span_start), zeros after them.
std::vector<std::byte> loaded(const std::string& bytes, const ElfImage& image) {
  std::vector<std::byte> memory(image.span_end() - image.span_start());
  for (const LoadSegment& s : image.segments)
    std::memcpy(memory.data() + (s.vaddr - image.span_start()), bytes.data() + s.offset, s.filesz);
  return memory;
}

struct Section {
  std::string name;
  std::uint64_t address, size;
};

std::vector<Section> loaded_sections(const std::string& bytes) {
  Elf64_Ehdr eh;
  std::memcpy(&eh, bytes.data(), sizeof(eh));
  std::vector<Elf64_Shdr> headers(eh.e_shnum);
  std::memcpy(headers.data(), bytes.data() + eh.e_shoff, headers.size() * sizeof(Elf64_Shdr));
  const char* names = bytes.data() + headers[eh.e_shstrndx].sh_offset;
  std::vector<Section> sections;
  for (const Elf64_Shdr& h : headers)
    if ((h.sh_flags & SHF_ALLOC) && h.sh_type != SHT_NOBITS) sections.push_back({names + h.sh_name, h.sh_addr, h.sh_size});
  return sections;
}

// ld.so applies the load bias to these itself (rtld.c takes it from
// PT_PHDR): symbol values, the dynamic section's pointers, the offsets of
// the dynamic relocations and the lazy PLT slots. The build ID differs
// because the two files do.
// So are the program headers (ld.so reads them at AT_PHDR); the ELF header
// before them is not used once loaded.
const std::string kHeaders = "(ELF and program headers)";
const std::set<std::string> kLdSoSections = {".dynsym",   ".dynamic",  ".got",     ".got.plt",
                                             ".rela.dyn", ".rela.plt", ".note.gnu.build-id", kHeaders};

// Names of the sections whose bytes differ between `moved` and the reference image.
std::set<std::string> differing_sections(const std::vector<std::byte>& moved, const std::vector<std::byte>& reference,
                                         const std::vector<Section>& sections, std::uint64_t reference_start) {
  std::set<std::string> names;
  REQUIRE(moved.size() == reference.size());
  for (std::size_t i = 0; i < moved.size(); ++i) {
    if (moved[i] == reference[i]) continue;
    std::string name = reference_start + i < sections.front().address ? kHeaders : "(between sections)";
    for (const Section& s : sections)
      if (reference_start + i >= s.address && reference_start + i < s.address + s.size) name = s.name;
    names.insert(name);
  }
  return names;
}

// Moves `path` to where `reference_path` was linked and compares.
void check_moved_equals_reference(const std::string& path, const std::string& reference_path) {
  const std::string bytes = read_file(path), reference_bytes = read_file(reference_path);
  Parsed parsed = parse(bytes), reference = parse(reference_bytes);
  REQUIRE(std::holds_alternative<ImageRelocations>(parsed.relocations));
  const auto& relocations = std::get<ImageRelocations>(parsed.relocations);
  CHECK(relocations.inside.size() > 0);
  CHECK(relocations.link_start == parsed.image.span_start());
  const std::uint64_t target = reference.image.span_start();
  REQUIRE(target != relocations.link_start);

  std::vector<std::byte> memory = loaded(bytes, parsed.image);
  const std::vector<std::byte> expected = loaded(reference_bytes, reference.image);
  const auto sections = loaded_sections(reference_bytes);
  // Unmoved, the code differs: the comparison below can fail.
  CHECK(differing_sections(memory, expected, sections, target).count(".text") == 1);

  REQUIRE_FALSE(relocate_image(relocations, memory.data(), target).has_value());
  for (const std::string& name : differing_sections(memory, expected, sections, target)) {
    CAPTURE(name);
    CHECK(kLdSoSections.count(name) == 1);
  }
}

template <class T>
void poke(std::string& bytes, std::size_t offset, T value) {
  std::memcpy(bytes.data() + offset, &value, sizeof(value));
}

// Offset in the file of the first relocation of the first kept (non-loaded)
// SHT_RELA section applying to a loaded one.
std::size_t first_kept_relocation(const std::string& bytes) {
  Elf64_Ehdr eh;
  std::memcpy(&eh, bytes.data(), sizeof(eh));
  for (int i = 0; i < eh.e_shnum; ++i) {
    Elf64_Shdr h;
    std::memcpy(&h, bytes.data() + eh.e_shoff + i * sizeof(h), sizeof(h));
    if (h.sh_type == SHT_RELA && !(h.sh_flags & SHF_ALLOC) && h.sh_size > 0) return h.sh_offset;
  }
  FAIL("no kept relocations");
  return 0;
}

}  // namespace

TEST_CASE("a non-PIC C++ program moved to another address equals the same objects linked there") {
  check_moved_equals_reference(program("movable"), program("movable_reference"));
}

TEST_CASE("pat-python's non-PIC build moved to another address equals the same build linked there") {
  if (std::string(PAT_PYTHON_NONPIC).empty()) {
    MESSAGE("built with PAT_PYTHON_NONPIC_BUILD=OFF");
    return;
  }
  check_moved_equals_reference(PAT_PYTHON_NONPIC, PAT_PYTHON_NONPIC_REFERENCE);
  // A group of 256 members can run it for all of them (docs/pat-python.md).
  Parsed parsed = parse(read_file(PAT_PYTHON_NONPIC));
  CHECK(RelocatingLoader::slot_count(parsed.image.span_end() - parsed.image.span_start()) >= 256);
}

TEST_CASE("moving back undoes a move, and a move too high for 32-bit fields is refused") {
  const std::string bytes = read_file(program("movable"));
  Parsed parsed = parse(bytes);
  REQUIRE(std::holds_alternative<ImageRelocations>(parsed.relocations));
  const auto& relocations = std::get<ImageRelocations>(parsed.relocations);
  const std::vector<std::byte> original = loaded(bytes, parsed.image);
  std::vector<std::byte> memory = original;
  REQUIRE_FALSE(relocate_image(relocations, memory.data(), 0x70000000).has_value());
  CHECK(memory != original);
  ImageRelocations back = relocations;
  back.link_start = 0x70000000;
  back.link_end = relocations.link_end - relocations.link_start + 0x70000000;
  REQUIRE_FALSE(relocate_image(back, memory.data(), relocations.link_start).has_value());
  CHECK(memory == original);

  // Sign-extended 32-bit addresses end at 2 GiB.
  memory = original;
  auto refused = relocate_image(relocations, memory.data(), 0x80000000);
  REQUIRE(refused.has_value());
  CHECK(refused->find("cannot hold its address when moved to 0x80000000") != std::string::npos);
}

TEST_CASE("what cannot be moved says why") {
  CHECK(rejection(read_file(program("movable_unrelocatable"))) == "no relocations kept (not linked with --emit-relocs)");
  CHECK(rejection(read_file("/bin/true")) == "position-independent: nothing to move");
  CHECK(rejection(read_file(program("hello_static"))) == "no ELF interpreter or no PT_PHDR: ld.so could not follow a move");

  std::string bytes = read_file(program("movable"));
  const std::size_t first = first_kept_relocation(bytes);
  std::string b;
  b = bytes; poke<std::uint64_t>(b, first + offsetof(Elf64_Rela, r_info), ELF64_R_INFO(1, R_X86_64_16));
  CHECK(rejection(b) == "cannot move relocation type 12");
  b = bytes; poke<std::uint64_t>(b, first + offsetof(Elf64_Rela, r_info), ELF64_R_INFO(1, R_X86_64_RELATIVE));
  CHECK(rejection(b) == "cannot move relocation type 8");
  b = bytes; poke<std::uint64_t>(b, first + offsetof(Elf64_Rela, r_info), ELF64_R_INFO(0xffffff, R_X86_64_64));
  CHECK(rejection(b) == "relocation names a symbol beyond the symbol table");
  b = bytes; poke<std::uint64_t>(b, first + offsetof(Elf64_Rela, r_offset), 0x10);
  CHECK(rejection(b) == "relocation outside the section it applies to");
  // Section headers cut off (the file ends before them) or pointing elsewhere.
  Elf64_Ehdr eh;
  std::memcpy(&eh, bytes.data(), sizeof(eh));
  b = bytes.substr(0, eh.e_shoff + 10);
  CHECK(rejection(b) == "section header beyond the end of the file (truncated?)");
  b = bytes; poke<std::uint16_t>(b, offsetof(Elf64_Ehdr, e_shentsize), 32);
  CHECK(rejection(b) == "bad section header entry size");
}

TEST_CASE("random corruption of the section headers and relocations never crashes the reader") {
  const std::string bytes = read_file(program("movable"));
  Elf64_Ehdr eh;
  std::memcpy(&eh, bytes.data(), sizeof(eh));
  const std::size_t relocations = first_kept_relocation(bytes);
  std::mt19937 rng(20261203);
  int accepted = 0, rejected = 0;
  for (int round = 0; round < 500; ++round) {
    std::string b = bytes;
    for (int i = 0, flips = 1 + static_cast<int>(rng() % 6); i < flips; ++i) {
      bool headers = rng() % 2 == 0;
      std::size_t at = headers ? eh.e_shoff + rng() % (eh.e_shnum * sizeof(Elf64_Shdr)) : relocations + rng() % 2048;
      b[at] = static_cast<char>(rng());
    }
    auto parsed = parse(b);
    if (auto* kept = std::get_if<ImageRelocations>(&parsed.relocations)) {
      ++accepted;
      // Whatever was accepted lies inside the image.
      for (const auto& site : kept->inside) {
        const std::uint64_t width = site.field == ImageRelocations::Field::Absolute64 ? 8 : 4;
        CHECK(site.offset + width <= kept->link_end - kept->link_start);
      }
    } else {
      ++rejected;
      CHECK_FALSE(std::get<ElfRejection>(parsed.relocations).reason.empty());
    }
  }
  MESSAGE("fuzz: accepted " << accepted << ", rejected " << rejected);
  CHECK(rejected > 0);
}
