#include "tracer/relocating_loader.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "base/log.h"

namespace pat::tracer {

bool RelocatingLoader::FileVersion::operator==(const FileVersion& other) const {
  return device == other.device && inode == other.inode && size == other.size &&
         changed.tv_sec == other.changed.tv_sec && changed.tv_nsec == other.changed.tv_nsec;
}

const RelocatingLoader::Relocations& RelocatingLoader::relocations_of(const OpenedElf& elf) {
  struct stat info;
  if (::fstat(elf.fd.get(), &info) != 0) {
    unversioned_ = ElfRejection{std::string("fstat: ") + std::strerror(errno)};
    return unversioned_;
  }
  // ctime moves on every write and utimes, so an equal one means these bytes.
  FileVersion version{info.st_dev, info.st_ino, info.st_size, info.st_ctim};
  if (auto it = known_.find(elf.path); it != known_.end() && it->second.version == version) return it->second.relocations;
  Known& known = known_[elf.path];
  known.version = version;
  auto read = read_image_relocations(elf.fd.get(), static_cast<std::uint64_t>(info.st_size), elf.image);
  if (auto* relocations = std::get_if<ImageRelocations>(&read)) {
    known.relocations = std::make_shared<const ImageRelocations>(std::move(*relocations));
  } else {
    known.relocations = std::get<ElfRejection>(read);
  }
  return known.relocations;
}

std::size_t RelocatingLoader::slot_count(std::uint64_t span) {
  if (span == 0 || span > kSlotsEnd - kSlotsStart) return 0;
  return (kSlotsEnd - kSlotsStart) / span;
}

std::variant<MappedElf, LaunchError> RelocatingLoader::map(const OpenedElf& elf, MemberLayout::Kind kind,
                                                           std::uint64_t brk_bytes, MemberLayout& layout) {
  // Its own addresses first: nothing to rewrite, and the pages stay the
  // page cache's, shared with every other group.
  MemberLayout attempt;
  auto own = map_elf(elf, kind, brk_bytes, attempt);
  if (std::holds_alternative<MappedElf>(own) || std::get<LaunchError>(own).kind != LaunchError::Kind::AddressConflict) {
    for (const MemberLayout::Entry& entry : attempt.entries()) layout.add(entry.kind, entry.range);
    return own;
  }
  attempt.release();
  auto kept = relocations_of(elf);
  if (std::holds_alternative<ElfRejection>(kept)) return own;
  const ImageRelocations& relocations = *std::get<std::shared_ptr<const ImageRelocations>>(kept);

  // The span is whole pages (span_start and span_end are page-aligned).
  const std::uint64_t span = relocations.link_end - relocations.link_start;
  for (std::size_t slot = 0; slot < slot_count(span); ++slot) {
    const std::uintptr_t start = kSlotsStart + slot * span;
    if (start == relocations.link_start) continue;  // just found taken
    auto moved = map_moved(elf, relocations, start - relocations.link_start, kind, brk_bytes, layout);
    if (std::holds_alternative<MappedElf>(moved) || std::get<LaunchError>(moved).kind != LaunchError::Kind::AddressConflict)
      return moved;
  }
  return own;  // every slot taken: the conflict at its own addresses says so
}

// The order: reserve the slot and map the file writable, make private copies
// of the pages to be written, rewrite every address in them, then give each
// segment its own protection. Nothing runs in the image before the last
// step, and a failure unmaps all of it.
std::variant<MappedElf, LaunchError> RelocatingLoader::map_moved(const OpenedElf& elf,
                                                                 const ImageRelocations& relocations,
                                                                 std::uintptr_t bias, MemberLayout::Kind kind,
                                                                 std::uint64_t brk_bytes, MemberLayout& layout) {
  MemberLayout attempt;
  auto mapped = map_elf_moved(elf, bias, kind, brk_bytes, attempt);
  if (auto* error = std::get_if<LaunchError>(&mapped)) {
    attempt.release();
    return *error;
  }
  const std::uintptr_t new_start = relocations.link_start + bias;
  // One madvise per run of pages instead of a copy-on-write fault per page:
  // about 1.5 us a page here against 7-12 us (bench/relocation_bench.cc).
  // Best effort: before Linux 5.14 the faults do the same work, slower.
  for (const auto& run : relocations.written_pages)
    ::madvise(reinterpret_cast<void*>(new_start + run.offset), run.length, MADV_POPULATE_WRITE);
  if (auto problem = relocate_image(relocations, reinterpret_cast<std::byte*>(new_start), new_start)) {
    attempt.release();
    return LaunchError::not_executable(elf.path, *problem);
  }
  if (!protect_segments(elf, bias)) {
    int error = errno;
    attempt.release();
    return LaunchError::internal(elf.path + ": protecting its moved segments: " + std::strerror(error));
  }
  spdlog::debug("event=tracer.image_moved program={} start={:#x} sites={}", log_quote(elf.path), new_start,
                relocations.site_count());
  for (const MemberLayout::Entry& entry : attempt.entries()) layout.add(entry.kind, entry.range);
  return mapped;
}

}  // namespace pat::tracer
