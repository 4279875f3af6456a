// Maps an ELF image's PT_LOAD segments into the current (shared) address
// space, as fs/binfmt_elf.c load_elf_binary()/elf_load() do for a new mm:
// ET_DYN at a fresh base, ET_EXEC only at its own addresses and only where
// nothing is mapped yet. Also reserves the program's private brk heap.
// Which file to map for a program (it or its non-PIC build) is
// nonpic_build.h's choice; moving an ET_EXEC is relocating_loader.h's.
#pragma once

#include <cstdint>
#include <variant>

#include "tracer/launch_error.h"
#include "tracer/member_layout.h"
#include "tracer/program_resolver.h"

namespace pat::tracer {

// Address space for each member's brk heap, reserved PROT_NONE right after
// its image (ET_DYN) or anywhere (ET_EXEC). Reserving costs no memory and no commit charge (PROT_NONE,
// MAP_NORESERVE), only a VMA. glibc's malloc uses brk for its main arena and
// falls back to mmap when brk fails, so this caps only the contiguous main
// arena, not what a member can allocate. 4 GiB is far beyond what the kernel
// would normally give without a collision, and 30,000 members' reservations
// still fit in the 128 TiB user address space.
inline constexpr std::uint64_t kBrkReservationBytes = std::uint64_t{4} << 30;

struct MappedElf {
  std::uintptr_t bias = 0;   // added to every p_vaddr (0 for ET_EXEC)
  std::uintptr_t entry = 0;  // biased e_entry
  std::uintptr_t phdr = 0;   // AT_PHDR
  Range image;               // the whole span of the PT_LOAD segments
  Range brk;                 // the brk reservation, if one was asked for
  std::uint64_t data_size = 0;  // bytes of writable segments, for RLIMIT_DATA (like end_data - start_data)
};

// Maps `elf`. With `brk_bytes` > 0 also reserves that much PROT_NONE right
// after the image (for ET_EXEC: anywhere, see elf_mapper.cc). Every
// mapping made is recorded in `layout` under `kind` (and BrkReservation), also
// when a later step fails, so the caller releases it all.
std::variant<MappedElf, LaunchError> map_elf(const OpenedElf& elf, MemberLayout::Kind kind, std::uint64_t brk_bytes,
                                             MemberLayout& layout);

// Maps an ET_EXEC image `bias` bytes away from its own addresses, for a
// caller that relocates it (tracer/relocating_loader.h): every segment is
// mapped writable as well, until protect_segments() gives each its own
// protection. A range already in use is an AddressConflict, as for map_elf.
std::variant<MappedElf, LaunchError> map_elf_moved(const OpenedElf& elf, std::uintptr_t bias, MemberLayout::Kind kind,
                                                   std::uint64_t brk_bytes, MemberLayout& layout);
bool protect_segments(const OpenedElf& elf, std::uintptr_t bias);

}  // namespace pat::tracer
