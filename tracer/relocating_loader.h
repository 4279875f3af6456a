// RelocatingLoader: maps an ET_EXEC that kept its link-time relocations
// (elf_relocations.h) at its own addresses while they are free in the group,
// and otherwise moves it into the first free slot below 2 GiB, so one such
// file serves many members of a group where an ordinary ET_EXEC fits once.
//
// A moved image is a private copy: the pages that hold an address are
// written at load time, so they stop being shared with the page cache
// (docs/pat-python.md has the cost in time and memory, and why we accept it).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <ctime>
#include <map>
#include <memory>
#include <string>
#include <variant>

#include "tracer/elf_mapper.h"
#include "tracer/elf_relocations.h"

namespace pat::tracer {

class RelocatingLoader {
 public:
  // Where moved images go: from 256 MiB, clear of the 0x400000 that most
  // non-PIE programs (python3.11, node) are linked at, up to 2 GiB, the limit
  // of the sign-extended 32-bit addresses of the small code model.
  static constexpr std::uintptr_t kSlotsStart = 0x10000000;
  static constexpr std::uintptr_t kSlotsEnd = 0x80000000;
  // Slots are the image's span, packed from kSlotsStart: pat-python's build
  // (6.8 MiB) has 264. Aligning them further would buy nothing: the kernel
  // gives no huge pages to file mappings here, and fewer slots would fit.

  // The relocations of `elf`, or why it cannot be moved: read once per
  // version of the file, and only once a move is wanted.
  using Relocations = std::variant<std::shared_ptr<const ImageRelocations>, ElfRejection>;
  const Relocations& relocations_of(const OpenedElf& elf);

  // Maps `elf` like map_elf(); when an ET_EXEC's own addresses are taken and
  // it kept its relocations, relocated into the first free slot instead.
  // AddressConflict (for its own addresses) when it cannot be moved or no
  // slot is free.
  std::variant<MappedElf, LaunchError> map(const OpenedElf& elf, MemberLayout::Kind kind, std::uint64_t brk_bytes,
                                           MemberLayout& layout);

  // How many slots an image of this span has below 2 GiB.
  static std::size_t slot_count(std::uint64_t span);

 private:
  std::variant<MappedElf, LaunchError> map_moved(const OpenedElf& elf, const ImageRelocations& relocations,
                                                 std::uintptr_t bias, MemberLayout::Kind kind,
                                                 std::uint64_t brk_bytes, MemberLayout& layout);

  struct FileVersion {
    dev_t device = 0;
    ino_t inode = 0;
    off_t size = 0;
    timespec changed{};
    bool operator==(const FileVersion& other) const;
  };
  struct Known {
    FileVersion version;
    Relocations relocations;
  };
  std::map<std::string, Known> known_;  // by canonical path
  Relocations unversioned_;             // for a file fstat(2) failed on
};

}  // namespace pat::tracer
