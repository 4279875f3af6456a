// MappingLedger: who owns each part of the group's shared address space.
// The kernel keeps one set of mappings for all members; the ledger adds the
// owner the kernel does not record, so that a member's memory can be given
// back when it ends and one member cannot unmap or remap another's.
//
// It tracks address ranges, not kernel VMAs: mprotect splitting a VMA, or a
// partial munmap, changes nothing about who owns the bytes that remain.
// Adjacent ranges with the same owner and kind are merged.
#pragma once

#include "tracer/member_layout.h"

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

namespace pat::tracer {

// Owners are numbered by the host, never reused (pids are). 0 is nobody.
using OwnerId = std::uint64_t;
inline constexpr OwnerId kNoOwner = 0;

enum class MappingKind : std::uint8_t {
  Image,           // a program or ld.so loaded at launch
  Stack,           // the main stack made at launch
  BrkReservation,  // the private brk heap's reservation (only part is in use)
  Mapping,         // anything the member mapped itself (libraries, arenas, thread stacks...)
  SysvShm,         // a SysV shared memory attachment (shmat)
  Pinned,          // handed to other members on purpose: outlives its maker
  GroupArena,      // the group's own data-plane arena (libpat): no member owns it, never reclaimed
};
const char* to_string(MappingKind kind);

class MappingLedger {
 public:
  struct Segment {
    Range range;
    OwnerId owner;
    MappingKind kind;
  };

  // `range` belongs to `owner` from now on, whatever the ledger said before.
  void assign(Range range, OwnerId owner, MappingKind kind);
  // Nobody owns `range` any more.
  void erase(Range range);

  // The first part of `range` owned by someone other than `self`.
  std::optional<Segment> foreign_in(Range range, OwnerId self) const;
  // The parts of `range` that nobody owns, in address order.
  std::vector<Range> gaps_in(Range range) const;
  // Owned parts of `range`, clipped to it, in address order.
  std::vector<Segment> segments_in(Range range) const;
  std::vector<Segment> segments_of(OwnerId owner) const;
  // The segment holding `address`, if any.
  std::optional<Segment> segment_at(std::uintptr_t address) const;

  std::size_t bytes_of(OwnerId owner) const;
  std::size_t segment_count() const { return segments_.size(); }

 private:
  struct Entry {
    std::uintptr_t end;
    OwnerId owner;
    MappingKind kind;
  };
  // Cuts segments so that none straddles `address`.
  void split_at(std::uintptr_t address);
  void merge_around(std::uintptr_t start, std::uintptr_t end);

  std::map<std::uintptr_t, Entry> segments_;  // by start; never overlapping
};

}  // namespace pat::tracer
