// ElfImage: real executables parse; corrupt, truncated and fuzzed ones are
// rejected with a reason and never read out of bounds (run under ASan too).
#include "tracer/elf_image.h"

#include <doctest/doctest.h>
#include <elf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <random>

#include "base/unique_fd.h"
#include "tests/tracer/test_files.h"

using namespace pat::tracer;
using pat::tracer::testing::program;
using pat::tracer::testing::read_file;

namespace {

std::variant<ElfImage, ElfRejection> parse(const std::string& bytes) {
  pat::UniqueFd fd(::memfd_create("elf-test", MFD_CLOEXEC));
  REQUIRE(fd);
  REQUIRE(::write(fd.get(), bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  return read_elf_image(fd.get(), bytes.size());
}

std::string rejection(const std::string& bytes) {
  auto result = parse(bytes);
  REQUIRE(std::holds_alternative<ElfRejection>(result));
  return std::get<ElfRejection>(result).reason;
}

template <class T>
void poke(std::string& bytes, std::size_t offset, T value) {
  std::memcpy(bytes.data() + offset, &value, sizeof(value));
}

const std::string kTrue = read_file("/bin/true");

// Offset of the first program header of `type` in kTrue.
std::size_t phdr_offset(const std::string& bytes, std::uint32_t type) {
  Elf64_Ehdr eh;
  std::memcpy(&eh, bytes.data(), sizeof(eh));
  for (int i = 0; i < eh.e_phnum; ++i) {
    std::size_t at = eh.e_phoff + i * sizeof(Elf64_Phdr);
    Elf64_Phdr ph;
    std::memcpy(&ph, bytes.data() + at, sizeof(ph));
    if (ph.p_type == type) return at;
  }
  FAIL("no such program header");
  return 0;
}

}  // namespace

TEST_CASE("a PIE with an interpreter parses: /bin/true") {
  auto result = parse(kTrue);
  REQUIRE(std::holds_alternative<ElfImage>(result));
  const ElfImage& image = std::get<ElfImage>(result);
  CHECK_FALSE(image.fixed_address);
  CHECK(image.interpreter == "/lib64/ld-linux-x86-64.so.2");
  CHECK(image.segments.size() >= 2);
  CHECK(image.span_start() == 0);
  CHECK(image.span_end() % 4096 == 0);
  CHECK_FALSE(image.executable_stack);
  CHECK(image.phdr_vaddr == 64);  // right after the ELF header, in the first PT_LOAD
}

TEST_CASE("ET_EXEC, static and static-pie executables parse with the right kind") {
  auto python = parse(read_file("/usr/bin/python3.11"));
  REQUIRE(std::holds_alternative<ElfImage>(python));
  CHECK(std::get<ElfImage>(python).fixed_address);
  CHECK(std::get<ElfImage>(python).span_start() == 0x400000);

  auto fixed = parse(read_file(program("hello_static")));
  REQUIRE(std::holds_alternative<ElfImage>(fixed));
  CHECK(std::get<ElfImage>(fixed).fixed_address);
  CHECK_FALSE(std::get<ElfImage>(fixed).interpreter.has_value());

  auto pie = parse(read_file(program("hello_static_pie")));
  REQUIRE(std::holds_alternative<ElfImage>(pie));
  CHECK_FALSE(std::get<ElfImage>(pie).fixed_address);
  CHECK_FALSE(std::get<ElfImage>(pie).interpreter.has_value());
}

TEST_CASE("header fields are checked one by one") {
  std::string b;
  b = kTrue; b[0] = 0x7e;                        CHECK(rejection(b) == "bad ELF magic");
  b = kTrue; b[EI_CLASS] = ELFCLASS32;           CHECK(rejection(b) == "not a 64-bit ELF file");
  b = kTrue; b[EI_DATA] = ELFDATA2MSB;           CHECK(rejection(b) == "not a little-endian ELF file");
  b = kTrue; b[EI_VERSION] = 0;                  CHECK(rejection(b) == "unknown ELF version");
  b = kTrue; poke<std::uint16_t>(b, 18, EM_386); CHECK(rejection(b) == "built for another machine (e_machine=3)");
  b = kTrue; poke<std::uint16_t>(b, 16, ET_REL); CHECK(rejection(b) == "not an executable (e_type=1)");
  b = kTrue; poke<std::uint16_t>(b, 16, ET_CORE); CHECK(rejection(b) == "not an executable (e_type=4)");
  b = kTrue; poke<std::uint16_t>(b, 54, 32);     CHECK(rejection(b) == "bad program header size");
  b = kTrue; poke<std::uint16_t>(b, 56, 0);      CHECK(rejection(b) == "bad program header count");
  b = kTrue; poke<std::uint16_t>(b, 56, 0xffff); CHECK(rejection(b) == "bad program header count");
  b = kTrue; poke<std::uint64_t>(b, 32, b.size() - 10);
  CHECK(rejection(b) == "program headers beyond the end of the file (truncated?)");
  b = kTrue; poke<std::uint64_t>(b, 32, ~std::uint64_t{0} - 8);  // e_phoff + size overflows
  CHECK(rejection(b) == "program headers beyond the end of the file (truncated?)");
  CHECK(rejection("") == "bad ELF magic");
  CHECK(rejection("\x7f" "EL") == "bad ELF magic");
  CHECK(rejection(kTrue.substr(0, 63)) == "truncated ELF header");
}

TEST_CASE("program header fields are checked against the file and the address space") {
  const std::size_t load = phdr_offset(kTrue, PT_LOAD);
  const std::size_t interp = phdr_offset(kTrue, PT_INTERP);
  auto field = [](std::size_t ph, std::size_t member) { return ph + member; };
  std::string b;
  b = kTrue; poke<std::uint64_t>(b, field(load, offsetof(Elf64_Phdr, p_filesz)), 1ull << 40);
  CHECK(rejection(b) == "segment file size exceeds its memory size");
  b = kTrue; poke<std::uint64_t>(b, field(load, offsetof(Elf64_Phdr, p_offset)), b.size());
  CHECK(rejection(b) == "segment beyond the end of the file (truncated?)");
  b = kTrue; poke<std::uint64_t>(b, field(load, offsetof(Elf64_Phdr, p_offset)), ~std::uint64_t{0} - 4096);
  CHECK(rejection(b) == "segment beyond the end of the file (truncated?)");
  b = kTrue; poke<std::uint64_t>(b, field(load, offsetof(Elf64_Phdr, p_vaddr)), 0x800000000000ull);
  CHECK(rejection(b) == "segment outside the user address space");
  b = kTrue; poke<std::uint64_t>(b, field(load, offsetof(Elf64_Phdr, p_vaddr)), 0x10);
  CHECK(rejection(b) == "segment offset and address are not congruent modulo the page size");
  b = kTrue; poke<std::uint64_t>(b, field(load, offsetof(Elf64_Phdr, p_align)), 0x3000);
  CHECK(rejection(b) == "segment alignment is not a power of two");
  b = kTrue; poke<std::uint64_t>(b, field(interp, offsetof(Elf64_Phdr, p_filesz)), 1);
  CHECK(rejection(b) == "bad interpreter path length");
  b = kTrue; poke<std::uint64_t>(b, field(interp, offsetof(Elf64_Phdr, p_filesz)), 10);
  CHECK(rejection(b) == "interpreter path is not NUL-terminated");
  b = kTrue; poke<std::uint64_t>(b, field(interp, offsetof(Elf64_Phdr, p_offset)), b.size() - 5);
  CHECK(rejection(b) == "interpreter path beyond the end of the file (truncated?)");
  b = kTrue; poke<std::uint64_t>(b, 24, 0x7fff0000);  // e_entry
  CHECK(rejection(b) == "entry point outside every loadable segment");
  b = kTrue; poke<std::uint32_t>(b, load, PT_NULL);  // only other PT_LOADs remain: still valid or a clean rejection
  CHECK_NOTHROW(parse(b));
}

TEST_CASE("every truncation into the loaded part of a real executable is rejected") {
  // Past the last segment's file bytes come only section headers, which
  // loading does not need: cutting those off leaves a loadable file.
  auto full = parse(kTrue);
  REQUIRE(std::holds_alternative<ElfImage>(full));
  std::uint64_t loaded_end = 0;
  for (const LoadSegment& s : std::get<ElfImage>(full).segments) loaded_end = std::max(loaded_end, s.offset + s.filesz);
  REQUIRE(loaded_end > 8192);
  for (std::size_t len = 0; len < loaded_end; len += (len < 8192 ? 1 : 97)) {
    CAPTURE(len);
    CHECK(std::holds_alternative<ElfRejection>(parse(kTrue.substr(0, len))));
  }
}

TEST_CASE("random corruption of the headers never crashes the parser") {
  std::mt19937 rng(20261127);
  int accepted = 0, rejected = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string b = kTrue;
    int flips = 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < flips; ++i) b[rng() % 1024] = static_cast<char>(rng());  // headers live in the first KiB
    auto result = parse(b);
    if (std::holds_alternative<ElfImage>(result)) {
      ++accepted;
      const ElfImage& image = std::get<ElfImage>(result);
      // Whatever was accepted is internally consistent.
      for (const LoadSegment& s : image.segments) {
        CHECK(s.filesz <= s.memsz);
        CHECK(s.offset + s.filesz <= b.size());
        CHECK(s.vaddr + s.memsz <= (std::uint64_t{1} << 47));
      }
    } else {
      ++rejected;
      CHECK_FALSE(std::get<ElfRejection>(result).reason.empty());
    }
  }
  MESSAGE("fuzz: accepted " << accepted << ", rejected " << rejected);
  CHECK(rejected > 0);
}

namespace {

// kTrue with its first PT_NOTE replaced by one note of (owner, type, desc),
// the segment cut to exactly that note.
std::string with_note(const std::string& owner, std::uint32_t type, const std::string& desc) {
  std::string bytes = kTrue;
  std::size_t at = phdr_offset(bytes, PT_NOTE);
  Elf64_Phdr ph;
  std::memcpy(&ph, bytes.data() + at, sizeof(ph));
  auto pad = [](std::size_t n) { return (n + 3) & ~std::size_t{3}; };
  std::string note(sizeof(Elf64_Nhdr), '\0');
  Elf64_Nhdr nh{static_cast<Elf64_Word>(owner.size()), static_cast<Elf64_Word>(desc.size()), type};
  std::memcpy(note.data(), &nh, sizeof(nh));
  note += owner + std::string(pad(owner.size()) - owner.size(), '\0');
  note += desc + std::string(pad(desc.size()) - desc.size(), '\0');
  REQUIRE(note.size() <= ph.p_filesz);
  bytes.replace(ph.p_offset, note.size(), note);
  ph.p_filesz = ph.p_memsz = note.size();
  ph.p_align = 4;
  poke(bytes, at, ph);
  return bytes;
}

}  // namespace

TEST_CASE("pat's notes: a non-PIC build's path, a build's inputs; other and malformed notes are not ours") {
  const std::string pat_owner("pat\0", 4);
  auto good = parse(with_note(pat_owner, 2, std::string("../lib/x\0", 9)));
  REQUIRE(std::holds_alternative<ElfImage>(good));
  CHECK(std::get<ElfImage>(good).nonpic_build == "../lib/x");
  CHECK_FALSE(std::get<ElfImage>(good).build_inputs.has_value());
  const std::string inputs = "a b\nc d\n";  // the text is build_inputs.h's to read
  auto build = parse(with_note(pat_owner, 3, inputs + '\0'));
  REQUIRE(std::holds_alternative<ElfImage>(build));
  CHECK(std::get<ElfImage>(build).build_inputs == inputs);
  CHECK_FALSE(std::get<ElfImage>(build).nonpic_build.has_value());

  auto plain = parse(kTrue);  // GNU notes only
  REQUIRE(std::holds_alternative<ElfImage>(plain));
  CHECK_FALSE(std::get<ElfImage>(plain).nonpic_build.has_value());
  CHECK(std::get<ElfImage>(plain).has_phdr_header);  // a PIE with an interpreter has PT_PHDR

  // Another owner or type is someone else's note; type 1 is retired.
  for (auto [owner, type] : {std::pair{std::string("GNU\0", 4), 2}, {pat_owner, 1}, {pat_owner, 7}}) {
    auto other = parse(with_note(owner, type, std::string("../lib/x\0", 9)));
    REQUIRE(std::holds_alternative<ElfImage>(other));
    CHECK_FALSE(std::get<ElfImage>(other).nonpic_build.has_value());
    CHECK_FALSE(std::get<ElfImage>(other).build_inputs.has_value());
  }

  // Ours, but not NUL-terminated text: refused, not guessed at. A path is one line.
  CHECK(rejection(with_note(pat_owner, 2, "../lib/x")) == "bad pat non-PIC build note");
  CHECK(rejection(with_note(pat_owner, 2, std::string("a\0b\0", 4))) == "bad pat non-PIC build note");
  CHECK(rejection(with_note(pat_owner, 2, std::string("\0", 1))) == "bad pat non-PIC build note");
  CHECK(rejection(with_note(pat_owner, 2, std::string("a\nb\0", 4))) == "bad pat non-PIC build note");
  CHECK(rejection(with_note(pat_owner, 3, inputs)) == "bad pat build inputs note");

  // A descsz that runs past the segment ends the walk without reading past it.
  std::string overlong = with_note(pat_owner, 2, std::string("../lib/x\0", 9));
  std::size_t at = phdr_offset(overlong, PT_NOTE);
  Elf64_Phdr ph;
  std::memcpy(&ph, overlong.data() + at, sizeof(ph));
  poke(overlong, ph.p_offset + offsetof(Elf64_Nhdr, n_descsz), Elf64_Word{0xfffffff0});
  auto truncated = parse(overlong);
  REQUIRE(std::holds_alternative<ElfImage>(truncated));
  CHECK_FALSE(std::get<ElfImage>(truncated).nonpic_build.has_value());
}
