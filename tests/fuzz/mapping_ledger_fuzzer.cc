// Fuzz target, differential: the MappingLedger against a reference model
// that is too simple to be wrong — one cell per page of a 64-page window,
// each holding its owner and kind. Every operation (assign, erase) goes to
// both; after each one every query of the ledger is compared with the
// model's answer, and the ledger's segments must be the model's maximal runs
// (mapping_ledger.h: adjacent ranges with the same owner and kind merge).
// The window sits at address 0 or just below the top of the address space,
// where an end computed carelessly would wrap.
#include "tracer/mapping_ledger.h"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <vector>

namespace {

using namespace pat::tracer;

constexpr std::size_t kPages = 64;
constexpr std::uintptr_t kPage = 4096;

struct Cell {
  OwnerId owner = kNoOwner;
  MappingKind kind = MappingKind::Image;
  bool operator==(const Cell&) const = default;
};

[[noreturn]] void mismatch(const char* what) {
  std::fprintf(stderr, "ledger and model disagree: %s\n", what);
  std::abort();
}

struct Model {
  std::uintptr_t base;
  std::array<Cell, kPages> cells{};

  std::uintptr_t address(std::size_t page) const { return base + page * kPage; }
  Range range(std::size_t first, std::size_t last) const { return {address(first), address(last)}; }

  void assign(std::size_t first, std::size_t last, OwnerId owner, MappingKind kind) {
    for (std::size_t p = first; p < last; ++p) cells[p] = Cell{owner, kind};
  }
  void erase(std::size_t first, std::size_t last) {
    for (std::size_t p = first; p < last; ++p) cells[p] = Cell{};
  }
  // Maximal runs of equal owned cells within [first, last).
  std::vector<MappingLedger::Segment> runs(std::size_t first, std::size_t last) const {
    std::vector<MappingLedger::Segment> out;
    for (std::size_t p = first; p < last;) {
      std::size_t end = p + 1;
      while (end < last && cells[end] == cells[p]) ++end;
      if (cells[p].owner != kNoOwner) out.push_back({range(p, end), cells[p].owner, cells[p].kind});
      p = end;
    }
    return out;
  }
};

bool same(const std::vector<MappingLedger::Segment>& a, const std::vector<MappingLedger::Segment>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].range.start != b[i].range.start || a[i].range.end != b[i].range.end || a[i].owner != b[i].owner ||
        a[i].kind != b[i].kind)
      return false;
  }
  return true;
}

// The ledger clips to the window the model covers; outside it stays empty.
void compare(const MappingLedger& ledger, const Model& model, std::size_t q1, std::size_t q2, OwnerId who) {
  auto whole = model.runs(0, kPages);
  if (!same(ledger.segments_in(model.range(0, kPages)), whole)) mismatch("segments_in(window)");
  if (ledger.segment_count() != whole.size()) mismatch("segment_count (not merged?)");
  std::size_t first = std::min(q1, q2), last = std::max(q1, q2);
  auto clipped = model.runs(first, last);
  if (!same(ledger.segments_in(model.range(first, last)), clipped)) mismatch("segments_in(range)");

  // foreign_in: the first clipped run not owned by `who`.
  std::optional<MappingLedger::Segment> foreign;
  for (const auto& run : clipped) {
    if (run.owner != who) {
      foreign = run;
      break;
    }
  }
  auto got = ledger.foreign_in(model.range(first, last), who);
  if (got.has_value() != foreign.has_value() || (got && !same({*got}, {*foreign}))) mismatch("foreign_in");

  std::vector<Range> gaps;
  for (std::size_t p = first; p < last;) {
    if (model.cells[p].owner != kNoOwner) {
      ++p;
      continue;
    }
    std::size_t end = p;
    while (end < last && model.cells[end].owner == kNoOwner) ++end;
    gaps.push_back(model.range(p, end));
    p = end;
  }
  auto ledger_gaps = ledger.gaps_in(model.range(first, last));
  if (ledger_gaps.size() != gaps.size()) mismatch("gaps_in count");
  for (std::size_t i = 0; i < gaps.size(); ++i) {
    if (ledger_gaps[i].start != gaps[i].start || ledger_gaps[i].end != gaps[i].end) mismatch("gaps_in");
  }

  std::vector<MappingLedger::Segment> of_owner;
  std::size_t bytes = 0;
  for (const auto& run : whole) {
    if (run.owner == who) {
      of_owner.push_back(run);
      bytes += run.range.end - run.range.start;
    }
  }
  if (!same(ledger.segments_of(who), of_owner)) mismatch("segments_of");
  if (ledger.bytes_of(who) != bytes) mismatch("bytes_of");

  std::uintptr_t probe = model.address(q1 % kPages) + (q2 % kPage);
  auto at = ledger.segment_at(probe);
  std::optional<MappingLedger::Segment> expected;
  for (const auto& run : whole) {
    if (run.range.start <= probe && probe < run.range.end) expected = run;
  }
  if (at.has_value() != expected.has_value() || (at && !same({*at}, {*expected}))) mismatch("segment_at");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  Model model{data[0] & 1 ? std::numeric_limits<std::uintptr_t>::max() - (kPages + 1) * kPage + 1 : 0};
  MappingLedger ledger;
  // Each operation is 5 bytes: op, first page, last page, owner, kind.
  for (std::size_t at = 1; at + 5 <= size; at += 5) {
    const std::uint8_t* op = data + at;
    std::size_t a = op[1] % (kPages + 1), b = op[2] % (kPages + 1);
    std::size_t first = std::min(a, b), last = std::max(a, b);
    OwnerId owner = 1 + op[3] % 3;
    auto kind = static_cast<MappingKind>(op[4] % 7);
    if (op[0] & 1) {
      ledger.assign(model.range(first, last), owner, kind);
      model.assign(first, last, owner, kind);
    } else {
      ledger.erase(model.range(first, last));
      model.erase(first, last);
    }
    compare(ledger, model, op[1] % (kPages + 1), op[2] % (kPages + 1), op[0] >> 1 & 3);
  }
  return 0;
}
