#include "tracer/elf_mapper.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>

#include "tracer/kernel_abi.h"

namespace pat::tracer {
namespace {

using kernel::page_down;
using kernel::page_up;

// Address-space reservations: PROT_NONE, no commit charge, later filled with
// MAP_FIXED. This is how binfmt_elf (total_mapping_size) and ld.so (the first
// mmap of _dl_map_segments) keep an image contiguous.
constexpr int kReserveFlags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;

void* reserve(std::uintptr_t hint, std::size_t size, int extra_flags) {
  return ::mmap(reinterpret_cast<void*>(hint), size, PROT_NONE, kReserveFlags | extra_flags, -1, 0);
}

// MAP_FIXED_NOREPLACE (Linux 4.17): EEXIST if anything is mapped there.
// Kernels that predate it treat it as a hint, hence the address check.
void* reserve_exactly(std::uintptr_t at, std::size_t size) {
  void* p = reserve(at, size, MAP_FIXED_NOREPLACE);
  if (p != MAP_FAILED && reinterpret_cast<std::uintptr_t>(p) != at) {
    ::munmap(p, size);
    errno = EEXIST;
    return MAP_FAILED;
  }
  return p;
}

// A fresh range of `size` bytes whose start is aligned to `align`, for ET_DYN
// images whose segments ask for more than page alignment (load_elf_binary
// honours p_align too).
std::variant<std::uintptr_t, LaunchError> reserve_aligned(std::size_t size, std::uint64_t align) {
  std::size_t padded = size + (align > kernel::kPageSize ? align : 0);
  void* p = reserve(0, padded, 0);
  if (p == MAP_FAILED) return LaunchError::internal(std::string("reserving address space: ") + std::strerror(errno));
  auto base = reinterpret_cast<std::uintptr_t>(p);
  std::uintptr_t aligned = (base + align - 1) & ~(align - 1);
  if (aligned > base) ::munmap(p, aligned - base);
  if (base + padded > aligned + size) ::munmap(reinterpret_cast<void*>(aligned + size), base + padded - aligned - size);
  return aligned;
}

// Writes zeros over [from, to) within one just-mapped page, making it writable for
// the moment if the segment is not (binfmt_elf's padzero; the kernel gives up
// silently on read-only pages, we do not leave file bytes in a bss).
bool zero_fill(std::uintptr_t from, std::uintptr_t to, int prot) {
  if (from >= to) return true;
  void* page = reinterpret_cast<void*>(page_down(from));
  if (!(prot & PROT_WRITE) && ::mprotect(page, kernel::kPageSize, prot | PROT_WRITE) != 0) return false;
  std::memset(reinterpret_cast<void*>(from), 0, to - from);
  return (prot & PROT_WRITE) || ::mprotect(page, kernel::kPageSize, prot) == 0;
}

// One PT_LOAD: file pages, the zeroed tail of the last file page, then
// anonymous zero pages up to p_memsz (elf_load() in fs/binfmt_elf.c).
// `extra_prot` is added to the segment's own protection (a moved image is
// written before it runs).
bool map_segment(int fd, const LoadSegment& segment, std::uintptr_t bias, int extra_prot) {
  LoadSegment seg = segment;
  seg.prot |= extra_prot;
  std::uintptr_t start = bias + seg.vaddr;
  std::uintptr_t file_end = start + seg.filesz;
  std::uintptr_t mem_end = page_up(start + seg.memsz);
  std::uintptr_t anon_start = page_down(start);
  if (seg.filesz > 0) {
    void* p = ::mmap(reinterpret_cast<void*>(page_down(start)), page_up(file_end) - page_down(start), seg.prot,
                     MAP_PRIVATE | MAP_FIXED, fd, static_cast<off_t>(page_down(seg.offset)));
    if (p == MAP_FAILED) return false;
    // Up to the end of the page, not just to p_memsz, as padzero() does:
    // ld.so's minimal malloc hands out the rest of that page as zeroed memory.
    if (seg.memsz > seg.filesz && !zero_fill(file_end, page_up(file_end), seg.prot)) return false;
    anon_start = page_up(file_end);
  }
  if (mem_end > anon_start) {
    void* p = ::mmap(reinterpret_cast<void*>(anon_start), mem_end - anon_start, seg.prot,
                     MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return false;
  }
  return true;
}

LaunchError conflict(const OpenedElf& elf, Range taken) {
  char buf[160];
  std::snprintf(buf, sizeof(buf), ": needs fixed addresses 0x%lx-0x%lx, already in use in this group", taken.start, taken.end);
  LaunchError error{LaunchError::Kind::AddressConflict, elf.path + buf};
  error.conflict_start = taken.start;
  error.conflict_end = taken.end;
  return error;
}

// Where an image goes: ET_DYN at a fresh base; ET_EXEC at its own addresses,
// or `fixed_bias` bytes away from them when it is being moved.
struct Placement {
  std::optional<std::uintptr_t> fixed_bias;
  int extra_prot = 0;
};

// Reserves the image's span (plus `after` bytes for ET_DYN) and returns the
// load bias.
std::variant<std::uintptr_t, LaunchError> reserve_image(const OpenedElf& elf, std::uint64_t after,
                                                        const Placement& placement) {
  const ElfImage& image = elf.image;
  std::uint64_t span = image.span_end() - image.span_start();
  if (image.fixed_address) {
    const std::uintptr_t bias = placement.fixed_bias.value_or(0);
    if (reserve_exactly(bias + image.span_start(), span) != MAP_FAILED) return bias;
    if (errno == EEXIST) return conflict(elf, Range{bias + image.span_start(), bias + image.span_end()});
    if (errno == EPERM) return LaunchError::not_executable(elf.path, "fixed addresses below vm.mmap_min_addr");
    return LaunchError::internal(elf.path + ": reserving its fixed addresses: " + std::strerror(errno));
  }
  auto base = reserve_aligned(span + after, image.max_align);
  if (auto* error = std::get_if<LaunchError>(&base)) return *error;
  return std::get<std::uintptr_t>(base) - image.span_start();
}

// ET_EXEC: the brk heap goes wherever the kernel finds room, not right after
// the image as the kernel's start_brk would put it. A 4 GiB reservation
// after an image in the low 2 GiB would cover the addresses where other
// fixed-address images (another program's, or moved non-PIC builds,
// relocating_loader.h) must go. Programs do not depend on the heap's place: the
// kernel randomises it too.
std::variant<Range, LaunchError> reserve_brk_anywhere(std::uint64_t size) {
  void* p = reserve(0, size, 0);
  if (p == MAP_FAILED) return LaunchError::internal(std::string("reserving the brk heap: ") + std::strerror(errno));
  auto start = reinterpret_cast<std::uintptr_t>(p);
  return Range{start, start + size};
}

std::uint64_t writable_bytes(const ElfImage& image) {
  std::uint64_t total = 0;
  for (const LoadSegment& s : image.segments)
    if (s.prot & PROT_WRITE) total += s.memsz;
  return total;
}

std::variant<MappedElf, LaunchError> map_image(const OpenedElf& elf, const Placement& placement,
                                               MemberLayout::Kind kind, std::uint64_t brk_bytes, MemberLayout& layout) {
  const ElfImage& image = elf.image;
  std::uint64_t brk_inline = image.fixed_address ? 0 : brk_bytes;
  auto bias_or_error = reserve_image(elf, brk_inline, placement);
  if (auto* error = std::get_if<LaunchError>(&bias_or_error)) return *error;

  MappedElf mapped;
  mapped.bias = std::get<std::uintptr_t>(bias_or_error);
  mapped.image = Range{mapped.bias + image.span_start(), mapped.bias + image.span_end()};
  layout.add(kind, mapped.image);
  if (brk_inline > 0) {
    mapped.brk = Range{mapped.image.end, mapped.image.end + brk_inline};
    layout.add(MemberLayout::Kind::BrkReservation, mapped.brk);
  }
  for (const LoadSegment& seg : image.segments) {
    if (!map_segment(elf.fd.get(), seg, mapped.bias, placement.extra_prot))
      return LaunchError::internal(elf.path + ": mapping a segment: " + std::strerror(errno));
  }
  if (image.fixed_address && brk_bytes > 0) {
    auto brk = reserve_brk_anywhere(brk_bytes);
    if (auto* error = std::get_if<LaunchError>(&brk)) return *error;
    mapped.brk = std::get<Range>(brk);
    layout.add(MemberLayout::Kind::BrkReservation, mapped.brk);
  }
  mapped.entry = mapped.bias + image.entry;
  mapped.phdr = mapped.bias + image.phdr_vaddr;
  mapped.data_size = writable_bytes(image);
  return mapped;
}

}  // namespace

std::variant<MappedElf, LaunchError> map_elf(const OpenedElf& elf, MemberLayout::Kind kind, std::uint64_t brk_bytes,
                                             MemberLayout& layout) {
  return map_image(elf, Placement{}, kind, brk_bytes, layout);
}

std::variant<MappedElf, LaunchError> map_elf_moved(const OpenedElf& elf, std::uintptr_t bias, MemberLayout::Kind kind,
                                                   std::uint64_t brk_bytes, MemberLayout& layout) {
  return map_image(elf, Placement{bias, PROT_WRITE}, kind, brk_bytes, layout);
}

bool protect_segments(const OpenedElf& elf, std::uintptr_t bias) {
  // In segment order, as they were mapped: where two share a page, the later one's protection wins.
  for (const LoadSegment& seg : elf.image.segments) {
    std::uintptr_t start = page_down(bias + seg.vaddr);
    std::uintptr_t end = page_up(bias + seg.vaddr + seg.memsz);
    if (::mprotect(reinterpret_cast<void*>(start), end - start, seg.prot) != 0) return false;
  }
  return true;
}

}  // namespace pat::tracer
