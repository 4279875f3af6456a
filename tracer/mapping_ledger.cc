#include "tracer/mapping_ledger.h"

#include <algorithm>
#include <cassert>

namespace pat::tracer {

const char* to_string(MappingKind kind) {
  switch (kind) {
    case MappingKind::Image: return "image";
    case MappingKind::Stack: return "stack";
    case MappingKind::BrkReservation: return "brk";
    case MappingKind::Mapping: return "mapping";
    case MappingKind::SysvShm: return "shm";
    case MappingKind::Pinned: return "pinned";
    case MappingKind::GroupArena: return "group-arena";
  }
  return "?";
}

void MappingLedger::split_at(std::uintptr_t address) {
  auto it = segments_.upper_bound(address);
  if (it == segments_.begin()) return;
  --it;
  if (it->first < address && address < it->second.end) {
    Entry tail = it->second;
    it->second.end = address;
    segments_.emplace(address, tail);
  }
}

void MappingLedger::merge_around(std::uintptr_t start, std::uintptr_t end) {
  // Merge neighbours of equal owner and kind, from the segment before `start`
  // through the one starting at `end`.
  auto it = segments_.lower_bound(start);
  if (it != segments_.begin()) --it;
  while (it != segments_.end() && it->first <= end) {
    auto next = std::next(it);
    if (next == segments_.end()) break;
    if (it->second.end == next->first && it->second.owner == next->second.owner &&
        it->second.kind == next->second.kind) {
      it->second.end = next->second.end;
      segments_.erase(next);
      continue;
    }
    it = next;
  }
}

void MappingLedger::erase(Range range) {
  if (range.start >= range.end) return;
  split_at(range.start);
  split_at(range.end);
  segments_.erase(segments_.lower_bound(range.start), segments_.lower_bound(range.end));
}

void MappingLedger::assign(Range range, OwnerId owner, MappingKind kind) {
  assert(owner != kNoOwner);
  if (range.start >= range.end) return;
  erase(range);
  segments_.emplace(range.start, Entry{range.end, owner, kind});
  merge_around(range.start, range.end);
}

std::vector<MappingLedger::Segment> MappingLedger::segments_in(Range range) const {
  std::vector<Segment> out;
  auto it = segments_.upper_bound(range.start);
  if (it != segments_.begin()) --it;
  for (; it != segments_.end() && it->first < range.end; ++it) {
    Range clipped{std::max(it->first, range.start), std::min(it->second.end, range.end)};
    if (clipped.start < clipped.end) out.push_back({clipped, it->second.owner, it->second.kind});
  }
  return out;
}

std::optional<MappingLedger::Segment> MappingLedger::foreign_in(Range range, OwnerId self) const {
  for (const auto& segment : segments_in(range)) {
    if (segment.owner != self) return segment;
  }
  return std::nullopt;
}

std::vector<Range> MappingLedger::gaps_in(Range range) const {
  std::vector<Range> gaps;
  std::uintptr_t cursor = range.start;
  for (const auto& segment : segments_in(range)) {
    if (segment.range.start > cursor) gaps.push_back({cursor, segment.range.start});
    cursor = segment.range.end;
  }
  if (cursor < range.end) gaps.push_back({cursor, range.end});
  return gaps;
}

std::vector<MappingLedger::Segment> MappingLedger::segments_of(OwnerId owner) const {
  std::vector<Segment> out;
  for (const auto& [start, entry] : segments_) {
    if (entry.owner == owner) out.push_back({{start, entry.end}, entry.owner, entry.kind});
  }
  return out;
}

std::optional<MappingLedger::Segment> MappingLedger::segment_at(std::uintptr_t address) const {
  auto it = segments_.upper_bound(address);
  if (it == segments_.begin()) return std::nullopt;
  --it;
  if (address >= it->second.end) return std::nullopt;
  return Segment{{it->first, it->second.end}, it->second.owner, it->second.kind};
}

std::size_t MappingLedger::bytes_of(OwnerId owner) const {
  std::size_t total = 0;
  for (const auto& [start, entry] : segments_) {
    if (entry.owner == owner) total += entry.end - start;
  }
  return total;
}

}  // namespace pat::tracer
