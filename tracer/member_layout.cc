#include "tracer/member_layout.h"

#include <sys/mman.h>

#include <cassert>

namespace pat::tracer {

void MemberLayout::release() {
  for (const Entry& e : entries_) {
    // munmap only fails for a bad range, which would be a bug in whoever
    // recorded it: stop loudly (STYLE: assertions stay on).
    [[maybe_unused]] int rc = ::munmap(reinterpret_cast<void*>(e.range.start), e.range.size());
    assert(rc == 0);
  }
  entries_.clear();
}

std::vector<Range> MemberLayout::ranges() const {
  std::vector<Range> out;
  out.reserve(entries_.size());
  for (const Entry& e : entries_) out.push_back(e.range);
  return out;
}

Range MemberLayout::range_of(Kind kind) const {
  for (const Entry& e : entries_)
    if (e.kind == kind) return e.range;
  return {};
}

const char* to_string(MemberLayout::Kind kind) {
  switch (kind) {
    case MemberLayout::Kind::ProgramImage: return "program";
    case MemberLayout::Kind::InterpreterImage: return "interpreter";
    case MemberLayout::Kind::BrkReservation: return "brk";
    case MemberLayout::Kind::Stack: return "stack";
    case MemberLayout::Kind::Mapping: return "mapping";
    case MemberLayout::Kind::SysvShm: return "sysv_shm";
  }
  return "?";
}

}  // namespace pat::tracer
