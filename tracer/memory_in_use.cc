#include "tracer/memory_in_use.h"

#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/auxv.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <fstream>
#include <string_view>

#include "base/result.h"
#include "base/unique_fd.h"
#include "tracer/kernel_abi.h"

namespace pat::tracer {
namespace {

constexpr std::uint64_t kPage = 4096;
// fs/proc/task_mmu.c pagemap_read(): one 64-bit entry per page.
constexpr std::uint64_t kPagePresent = 1ull << 63;
constexpr std::uint64_t kPageSwapped = 1ull << 62;
constexpr std::uint64_t kPageFileOrSharedAnon = 1ull << 61;

// proc(5): "start-end perms offset dev inode   path". A group has
// thousands of lines, so they are parsed by hand.
std::vector<Mapping> read_maps() {
  std::vector<Mapping> maps;
  std::ifstream in("/proc/self/maps");
  std::string line;
  auto hex = [](std::string_view& text, char stop) {
    std::uint64_t value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value, 16);
    text.remove_prefix(static_cast<std::size_t>(end - text.data()));
    if (!text.empty() && text.front() == stop) text.remove_prefix(1);
    return value;
  };
  auto skip_field = [](std::string_view& text) {
    text.remove_prefix(std::min(text.size(), text.find(' ') + 1));
  };
  while (std::getline(in, line)) {
    std::string_view text(line);
    Mapping m;
    m.range.start = hex(text, '-');
    m.range.end = hex(text, ' ');
    if (text.size() < 5) continue;
    m.read = text[0] == 'r';
    m.write = text[1] == 'w';
    m.exec = text[2] == 'x';
    m.shared = text[3] == 's';
    text.remove_prefix(5);
    m.offset = hex(text, ' ');
    skip_field(text);  // device
    skip_field(text);  // inode
    auto path = text.find_first_not_of(' ');
    if (path != std::string_view::npos) m.path = text.substr(path);
    maps.push_back(std::move(m));
  }
  return maps;
}

void add_run(std::vector<Range>& runs, Range run) {
  if (!runs.empty() && runs.back().end == run.start) {
    runs.back().end = run.end;
  } else {
    runs.push_back(run);
  }
}

// From the whole of /proc/self/maps: a group has thousands of lines.
MappingPieces pieces_of(const std::vector<Mapping>& maps, const std::vector<Range>& owned) {
  MappingPieces pieces;
  auto own = owned.begin();
  for (const Mapping& m : maps) {
    if (m.path == "[vdso]") {
      pieces.emplace_back(m, m.range);
      continue;
    }
    while (own != owned.end() && own->end <= m.range.start) ++own;
    for (auto it = own; it != owned.end() && it->start < m.range.end; ++it) {
      Range piece{std::max(it->start, m.range.start), std::min(it->end, m.range.end)};
      if (piece.start < piece.end) pieces.emplace_back(m, piece);
    }
  }
  return pieces;
}

// The mapping at or after `address`, by PROCMAP_QUERY. Nothing past the
// last one; an error where the kernel lacks the ioctl (before Linux 6.11).
Result<std::optional<Mapping>> query_mapping(int maps, std::uintptr_t address) {
  char name[PATH_MAX + 32];
  kernel::ProcmapQuery query{};
  query.size = sizeof(query);
  query.query_flags = kernel::kProcmapCoveringOrNext;
  query.query_addr = address;
  query.vma_name_addr = reinterpret_cast<std::uint64_t>(name);
  query.vma_name_size = sizeof(name);
  if (::ioctl(maps, kernel::kProcmapQuery, &query) != 0) {
    if (errno == ENOENT) return std::optional<Mapping>();
    return last_error("PROCMAP_QUERY");
  }
  Mapping m;
  m.range = Range{query.vma_start, query.vma_end};
  m.read = query.vma_flags & kernel::kProcmapVmaReadable;
  m.write = query.vma_flags & kernel::kProcmapVmaWritable;
  m.exec = query.vma_flags & kernel::kProcmapVmaExecutable;
  m.shared = query.vma_flags & kernel::kProcmapVmaShared;
  m.offset = query.vma_offset;
  if (query.vma_name_size > 0) m.path.assign(name, query.vma_name_size - 1);  // the size counts the NUL
  return std::optional<Mapping>(std::move(m));
}

}  // namespace

// One PROCMAP_QUERY per mapping the ranges lie in: for a member's core the
// cost follows the member, not the group's thousands of mappings.
std::optional<MappingPieces> mapping_pieces_by_query(const std::vector<Range>& owned) {
  UniqueFd maps(::open("/proc/self/maps", O_RDONLY | O_CLOEXEC));
  if (!maps) return std::nullopt;
  MappingPieces pieces;
  auto vdso = query_mapping(maps.get(), ::getauxval(AT_SYSINFO_EHDR));
  if (!vdso) return std::nullopt;
  if (vdso->has_value() && (*vdso)->path == "[vdso]") pieces.emplace_back(**vdso, (*vdso)->range);
  for (const Range& range : owned) {
    for (std::uintptr_t at = range.start; at < range.end;) {
      auto found = query_mapping(maps.get(), at);
      if (!found) return std::nullopt;
      if (!found->has_value() || (*found)->range.start >= range.end) break;
      const Mapping& m = **found;
      pieces.emplace_back(m, Range{std::max(range.start, m.range.start), std::min(range.end, m.range.end)});
      at = m.range.end;
    }
  }
  std::sort(pieces.begin(), pieces.end(), [](const auto& a, const auto& b) { return a.second.start < b.second.start; });
  return pieces;
}

MappingPieces mapping_pieces_from_maps(const std::vector<Range>& owned) { return pieces_of(read_maps(), owned); }

MappingPieces mapping_pieces(const std::vector<Range>& owned) {
  if (auto queried = mapping_pieces_by_query(owned)) return std::move(*queried);
  return mapping_pieces_from_maps(owned);
}

// PAGEMAP_SCAN (Linux 6.7): the kernel hands back runs of pages with the
// same categories, a few for a whole heap, and tells the zero page apart.
// Nothing if this kernel lacks it.
std::optional<PagesInUse> scan_pages(int pagemap, Range range) {
  PagesInUse use;
  std::vector<kernel::PageRegion> regions(256);
  for (std::uint64_t at = range.start; at < range.end;) {
    kernel::PmScanArg arg{};
    arg.size = sizeof(arg);
    arg.start = at;
    arg.end = range.end;
    arg.vec = reinterpret_cast<std::uint64_t>(regions.data());
    arg.vec_len = regions.size();
    arg.category_inverted = kernel::kPageIsPfnZero;  // required below: not the zero page
    arg.category_mask = kernel::kPageIsPfnZero;
    arg.category_anyof_mask = kernel::kPageIsPresent | kernel::kPageIsSwapped;
    arg.return_mask = kernel::kPageIsFile | kernel::kPageIsSwapped;
    long n = ::ioctl(pagemap, kernel::kPagemapScan, &arg);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    for (long i = 0; i < n; ++i) {
      const kernel::PageRegion& region = regions[static_cast<std::size_t>(i)];
      add_run(use.runs, Range{region.start, region.end});
      use.written = use.written || (region.categories & kernel::kPageIsSwapped) || !(region.categories & kernel::kPageIsFile);
    }
    if (arg.walk_end <= at) break;
    at = arg.walk_end;
  }
  return use;
}

// Before Linux 6.7: 8 bytes per page from /proc/self/pagemap, which cannot
// tell the zero page (its frame number is hidden without CAP_SYS_ADMIN), so
// pages only ever read are written as zeros.
PagesInUse read_page_flags(int pagemap, Range range) {
  std::vector<std::uint64_t> flags(range.size() / kPage);
  ssize_t want = static_cast<ssize_t>(flags.size() * sizeof(std::uint64_t));
  if (::pread(pagemap, flags.data(), static_cast<std::size_t>(want), static_cast<off_t>(range.start / kPage * 8)) != want)
    std::fill(flags.begin(), flags.end(), kPagePresent);  // unreadable: let the copy find out
  PagesInUse use;
  for (std::size_t i = 0; i < flags.size(); ++i) {
    if (!(flags[i] & (kPagePresent | kPageSwapped))) continue;
    std::uintptr_t page = range.start + i * kPage;
    add_run(use.runs, Range{page, page + kPage});
    use.written = use.written || (flags[i] & kPageSwapped) || !(flags[i] & kPageFileOrSharedAnon);
  }
  return use;
}

PagesInUse pages_in_use(int pagemap, Range range) {
  if (auto scanned = scan_pages(pagemap, range)) return std::move(*scanned);
  return read_page_flags(pagemap, range);
}

}  // namespace pat::tracer
