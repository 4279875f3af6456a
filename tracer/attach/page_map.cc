#include "tracer/attach/page_map.h"

#include <fcntl.h>
#include <unistd.h>

#include "tracer/kernel_abi.h"

namespace pat::tracer {

Result<PageMap> PageMap::open(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/pagemap";
  PageMap map;
  map.pid_ = pid;
  map.pagemap_.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!map.pagemap_) return last_error("open " + path);
  return map;
}

Result<std::vector<PageEntry>> PageMap::read(Range range) const {
  const std::size_t pages = range.size() / kernel::kPageSize;
  std::vector<PageEntry> entries(pages);
  std::size_t done = 0;
  while (done < pages) {
    off_t at = static_cast<off_t>((range.start / kernel::kPageSize + done) * sizeof(std::uint64_t));
    ssize_t n = ::pread(pagemap_.get(), entries.data() + done, (pages - done) * sizeof(std::uint64_t), at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return last_error("reading /proc/" + std::to_string(pid_) + "/pagemap");
    if (n == 0) return SysError{EIO, "short read of /proc/" + std::to_string(pid_) + "/pagemap"};
    done += static_cast<std::size_t>(n) / sizeof(std::uint64_t);
  }
  return entries;
}

}  // namespace pat::tracer
