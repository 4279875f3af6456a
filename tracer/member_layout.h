// MemberLayout: the address ranges one member's launch created in the shared
// address space (program image, ld.so image, brk reservation, stack), so they
// can be given back when the member has left it. The full mapping ledger
// (what the member mapped itself) will extend this type.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pat::tracer {

// [start, end) in the shared address space, page-aligned.
struct Range {
  std::uintptr_t start = 0;
  std::uintptr_t end = 0;
  std::size_t size() const { return end - start; }
  bool contains(std::uintptr_t a) const { return a >= start && a < end; }
  bool overlaps(const Range& o) const { return start < o.end && o.start < end; }
  bool operator==(const Range&) const = default;
};

class MemberLayout {
 public:
  // Mapping and SysvShm: what an attached process had mapped (tracer/attach/).
  enum class Kind { ProgramImage, InterpreterImage, BrkReservation, Stack, Mapping, SysvShm };
  struct Entry {
    Kind kind;
    Range range;
  };

  MemberLayout() = default;
  MemberLayout(const MemberLayout&) = delete;
  MemberLayout& operator=(const MemberLayout&) = delete;
  // Deliberately does NOT unmap: while the member may still run, leaking is
  // harmless and unmapping is fatal. The owner calls release() when the member
  // has exited or exec'd out.
  ~MemberLayout() = default;

  void add(Kind kind, Range range) { entries_.push_back(Entry{kind, range}); }

  // Unmaps every range and forgets them; calling it again does nothing.
  void release();

  std::vector<Range> ranges() const;
  const std::vector<Entry>& entries() const { return entries_; }
  // The first range of `kind`, or an empty one.
  Range range_of(Kind kind) const;

 private:
  std::vector<Entry> entries_;
};

const char* to_string(MemberLayout::Kind kind);

}  // namespace pat::tracer
