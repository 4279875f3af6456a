// Moving an ET_EXEC image. Non-PIC code has its own addresses written into
// it, so it runs only where it was linked. `ld --emit-relocs` keeps, beside
// the code, the link-time relocations (SHT_RELA sections, one per loaded
// section) that say where each such address was written. From them this file
// finds every place whose bytes change when the whole image moves by some
// delta, and rewrites them. Verified byte for byte against the same objects
// linked at the target address (tests/tracer/elf_relocations_test.cc).
//
// Only the loaded sections are handled here. The dynamic relocations
// (.rela.dyn, .rela.plt), the dynamic symbols and .dynamic are ld.so's: it
// takes an executable's load bias from AT_PHDR and PT_PHDR (rtld.c,
// dl_main) and applies it to all of them, as it does for a PIE. The x86-64
// small code model writes addresses as 32-bit fields, so a moved image must
// stay below 2 GiB (sign-extended fields) or 4 GiB (zero-extended ones);
// relocate_image() checks every field it writes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "tracer/elf_image.h"

namespace pat::tracer {

// The places in one image whose contents depend on where it runs. Offsets
// are from the image's span_start(), so a site lies in the loaded image.
class ImageRelocations {
 public:
  enum class Field : std::uint8_t {
    Absolute64,        // R_X86_64_64
    Absolute32,        // R_X86_64_32: zero-extended
    Absolute32Signed,  // R_X86_64_32S: sign-extended
    Relative32,        // R_X86_64_PC32, R_X86_64_PLT32
    Relative64,        // R_X86_64_PC64
  };
  // An address of something inside the image: moves with it.
  struct Site {
    std::uint32_t offset;
    Field field;
  };
  // A reference to a symbol the image does not define in one of its
  // sections (an undefined one, resolved by the linker to a PLT entry or a
  // copy in .bss, or to 0 if weak; or an absolute one). Whether its target
  // lies inside the image is read from the stored value when moving.
  struct ValueDependentSite {
    std::uint32_t offset;
    Field field;
    std::int64_t addend;
  };

  // Pages holding at least one site, as runs: offset from span_start and
  // length, page-aligned. These are the pages a move writes.
  struct PageRun {
    std::uint32_t offset;
    std::uint32_t length;
  };

  std::uint64_t link_start = 0;  // the image's span at its link-time addresses
  std::uint64_t link_end = 0;
  std::vector<Site> inside;
  std::vector<ValueDependentSite> value_dependent;
  std::vector<PageRun> written_pages;

  std::size_t site_count() const { return inside.size() + value_dependent.size(); }
};

// Reads the relocations `ld --emit-relocs` kept in `fd` (a regular file of
// `file_size` bytes whose headers parsed into `image`). Rejected: a PIE or an
// image without an interpreter and PT_PHDR (ld.so must see the bias), a file
// without kept relocations, and any relocation type whose meaning after a
// move is not known here (the reason names it).
std::variant<ImageRelocations, ElfRejection> read_image_relocations(int fd, std::uint64_t file_size,
                                                                    const ElfImage& image);

// Rewrites the image loaded at `local` (the byte at its span_start, all of
// span_end() - span_start() bytes writable) so that it runs at `new_start`
// instead of relocations.link_start. Returns why not if a field would not
// hold its new value (nothing is rolled back: the caller discards the copy).
std::optional<std::string> relocate_image(const ImageRelocations& relocations, std::byte* local,
                                          std::uint64_t new_start);

}  // namespace pat::tracer
