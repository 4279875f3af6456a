// tracer/memory_in_use.h on this test process's own memory: the ioctls
// (PROCMAP_QUERY, PAGEMAP_SCAN) and the text and table older kernels have
// must describe the same mappings and the same pages, except the zero page,
// which only PAGEMAP_SCAN tells apart.
#include "tracer/memory_in_use.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "base/unique_fd.h"
#include "tests/support/skip.h"

using pat::tracer::Range;

namespace {

constexpr std::size_t kPage = 4096;

// An anonymous private mapping of `pages`, unmapped at the end.
struct Scratch {
  explicit Scratch(std::size_t pages) : size(pages * kPage) {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(p != MAP_FAILED);
    base = static_cast<char*>(p);
  }
  ~Scratch() { ::munmap(base, size); }
  Range pages(std::size_t from, std::size_t to) const {
    return Range{reinterpret_cast<std::uintptr_t>(base) + from * kPage, reinterpret_cast<std::uintptr_t>(base) + to * kPage};
  }
  std::size_t size;
  char* base;
};

pat::UniqueFd open_pagemap() {
  pat::UniqueFd fd(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  REQUIRE(fd);
  return fd;
}

}  // namespace

TEST_CASE("pages in use: written pages, never-touched ones as holes, the zero page only by PAGEMAP_SCAN") {
  Scratch scratch(64);
  std::memset(scratch.base, 1, 4 * kPage);               // pages 0-3 written
  volatile char read = scratch.base[10 * kPage];         // page 10 only read: the zero page
  (void)read;
  scratch.base[20 * kPage] = 1;                          // page 20 written
  auto pagemap = open_pagemap();

  auto table = pat::tracer::read_page_flags(pagemap.get(), scratch.pages(0, 64));
  CHECK(table.written);
  CHECK(table.runs == std::vector<Range>{scratch.pages(0, 4), scratch.pages(10, 11), scratch.pages(20, 21)});

  auto scanned = pat::tracer::scan_pages(pagemap.get(), scratch.pages(0, 64));
  if (!scanned) PAT_SKIP("this kernel has no PAGEMAP_SCAN (Linux 6.7)");
  CHECK(scanned->written);
  CHECK(scanned->runs == std::vector<Range>{scratch.pages(0, 4), scratch.pages(20, 21)});
  CHECK(pat::tracer::pages_in_use(pagemap.get(), scratch.pages(0, 64)).runs == scanned->runs);

  // A file mapping only read holds the file's pages: in use, not written.
  pat::UniqueFd self(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
  REQUIRE(self);
  void* file = ::mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE, self.get(), 0);
  REQUIRE(file != MAP_FAILED);
  volatile char first = *static_cast<char*>(file);
  (void)first;
  auto start = reinterpret_cast<std::uintptr_t>(file);
  auto file_pages = pat::tracer::scan_pages(pagemap.get(), Range{start, start + kPage});
  ::munmap(file, kPage);
  REQUIRE(file_pages);
  CHECK(file_pages->runs == std::vector<Range>{Range{start, start + kPage}});
  CHECK_FALSE(file_pages->written);
}

TEST_CASE("mapping pieces: PROCMAP_QUERY and /proc/self/maps agree, split where the mappings are") {
  Scratch scratch(16);
  // Two mappings from one: pages 4-7 read-only.
  REQUIRE(::mprotect(scratch.base + 4 * kPage, 4 * kPage, PROT_READ) == 0);
  const std::vector<Range> owned{scratch.pages(2, 6), scratch.pages(10, 12)};

  auto from_maps = pat::tracer::mapping_pieces_from_maps(owned);
  auto described = [&](const pat::tracer::MappingPieces& pieces) {
    std::vector<std::pair<Range, bool>> out;  // the piece, and whether its mapping is writable
    for (const auto& [mapping, piece] : pieces) {
      if (mapping.path == "[vdso]") continue;
      out.emplace_back(piece, mapping.write);
    }
    return out;
  };
  const std::vector<std::pair<Range, bool>> expected{
      {scratch.pages(2, 4), true}, {scratch.pages(4, 6), false}, {scratch.pages(10, 12), true}};
  CHECK(described(from_maps) == expected);
  CHECK(std::count_if(from_maps.begin(), from_maps.end(), [](const auto& p) { return p.first.path == "[vdso]"; }) == 1);

  auto queried = pat::tracer::mapping_pieces_by_query(owned);
  if (!queried) PAT_SKIP("this kernel has no PROCMAP_QUERY (Linux 6.11)");
  REQUIRE(queried->size() == from_maps.size());
  for (std::size_t i = 0; i < from_maps.size(); ++i) {
    const auto& [a, a_piece] = (*queried)[i];
    const auto& [b, b_piece] = from_maps[i];
    CAPTURE(i);
    CHECK(a_piece == b_piece);
    CHECK(a.range == b.range);
    CHECK(a.path == b.path);
    CHECK(a.offset == b.offset);
    CHECK((a.read == b.read && a.write == b.write && a.exec == b.exec && a.shared == b.shared));
  }
}
