#include "tracer/attach/write_tracker.h"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#include <algorithm>

#include "base/pidfd.h"
#include "tracer/attach/injected_syscalls.h"
#include "tracer/kernel_abi.h"

namespace pat::tracer {

Result<WriteTracker> WriteTracker::start(SeizedProcess& process, std::uint64_t gadget, Deadline deadline) {
  WriteTracker tracker;
  tracker.pid_ = process.pid();
  {
    auto session = InjectedSyscalls::begin(process, process.pid(), gadget, deadline);
    if (!session) return session.error();
    auto fd = session->call(SYS_userfaultfd, {O_CLOEXEC | kernel::kUffdUserModeOnly});
    if (!fd) return fd.error();
    if (fd.value() < 0) return SysError{static_cast<int>(-fd.value()), "userfaultfd in process " + std::to_string(process.pid())};
    auto pidfd = pidfd_open(process.pid());
    long ours = pidfd ? ::syscall(SYS_pidfd_getfd, pidfd->get(), static_cast<int>(fd.value()), 0) : -1;
    int error = errno;
    (void)session->call(SYS_close, {static_cast<std::uint64_t>(fd.value())});
    if (auto s = session->end(); !s) return s.error();
    if (ours < 0) return SysError{error, "pidfd_getfd of the userfaultfd"};
    tracker.uffd_.reset(static_cast<int>(ours));
  }
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = kernel::kUffdFeatureWpAsync | kernel::kUffdFeatureWpUnpopulated;
  if (::ioctl(tracker.uffd_.get(), UFFDIO_API, &api) != 0) return last_error("UFFDIO_API (asynchronous write protection)");
  std::string path = "/proc/" + std::to_string(tracker.pid_) + "/pagemap";
  tracker.pagemap_.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!tracker.pagemap_) return last_error("open " + path);
  return tracker;
}

Status WriteTracker::track(Range range) {
  uffdio_register reg{};
  reg.range = uffdio_range{range.start, range.size()};
  reg.mode = UFFDIO_REGISTER_MODE_WP;
  if (::ioctl(uffd_.get(), UFFDIO_REGISTER, &reg) != 0) return last_error("UFFDIO_REGISTER");
  tracked_.push_back(range);
  // Arms every page (WP_UNPOPULATED: the unpopulated too); what it reports
  // is everything, which the first copy takes anyway.
  auto armed = written(range, true);
  if (!armed) return armed.error();
  return ok_status();
}

bool WriteTracker::tracks(Range range) const {
  return std::any_of(tracked_.begin(), tracked_.end(), [&](const Range& r) { return r.start <= range.start && range.end <= r.end; });
}

Result<std::vector<Range>> WriteTracker::written(Range range, bool rearm) {
  std::vector<Range> out;
  std::vector<kernel::PageRegion> regions(512);
  std::uint64_t at = range.start;
  while (at < range.end) {
    kernel::PmScanArg arg{};
    arg.size = sizeof(arg);
    arg.flags = rearm ? kernel::kPmScanWpMatching | kernel::kPmScanCheckWpAsync : 0;
    arg.start = at;
    arg.end = range.end;
    arg.vec = reinterpret_cast<std::uint64_t>(regions.data());
    arg.vec_len = regions.size();
    arg.category_mask = kernel::kPageIsWritten;
    arg.return_mask = kernel::kPageIsWritten;
    long n = ::ioctl(pagemap_.get(), kernel::kPagemapScan, &arg);
    if (n < 0) return last_error("PAGEMAP_SCAN");
    for (long i = 0; i < n; ++i) out.push_back(Range{regions[i].start, regions[i].end});
    if (arg.walk_end <= at) break;
    at = arg.walk_end;
  }
  return out;
}

}  // namespace pat::tracer
