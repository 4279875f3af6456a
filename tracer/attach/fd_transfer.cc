#include "tracer/attach/fd_transfer.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "tracer/attach/proc_status.h"

namespace pat::tracer {

std::optional<std::string> fd_refusal(const std::string& target) {
  // Bound to the old address space or task (fs/io_uring, fs/userfaultfd.c,
  // kernel/events, virt/kvm: each refuses or misbehaves from another mm or
  // keeps counting the old task).
  static const struct {
    const char* prefix;
    const char* why;
  } kRefused[] = {
      {"anon_inode:[io_uring]", "an io_uring instance, whose rings belong to the old address space"},
      {"anon_inode:[userfaultfd]", "a userfaultfd, which belongs to the old address space"},
      {"anon_inode:[perf_event]", "a perf event, which counts the old task"},
      {"anon_inode:kvm", "a KVM descriptor, which belongs to the old address space"},
  };
  for (const auto& r : kRefused) {
    if (target.rfind(r.prefix, 0) == 0) return std::string(r.why);
  }
  // Other anonymous inodes move only if known to be plain objects.
  static const char* const kMovable[] = {
      "anon_inode:[eventpoll]", "anon_inode:[eventfd]", "anon_inode:[signalfd]", "anon_inode:[timerfd]",
      "anon_inode:inotify",     "anon_inode:[fanotify]", "anon_inode:[pidfd]",  "anon_inode:[seccomp notify]",
      "anon_inode:bpf",         "anon_inode:[fscontext]",
  };
  if (target.rfind("anon_inode:", 0) == 0) {
    for (const char* ok : kMovable) {
      if (target.rfind(ok, 0) == 0) return std::nullopt;
    }
    return "a descriptor of an unknown kind (" + target + ")";
  }
  return std::nullopt;
}

Result<std::vector<TransferredFd>> list_fds(pid_t pid) {
  std::string dir_path = "/proc/" + std::to_string(pid) + "/fd";
  DIR* dir = ::opendir(dir_path.c_str());
  if (dir == nullptr) return last_error("opendir " + dir_path);
  std::vector<TransferredFd> fds;
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    TransferredFd fd;
    fd.number = static_cast<int>(std::strtol(e->d_name, nullptr, 10));
    char link[4096];
    ssize_t n = ::readlink((dir_path + "/" + e->d_name).c_str(), link, sizeof(link));
    if (n > 0) fd.target.assign(link, static_cast<std::size_t>(n));
    fds.push_back(std::move(fd));
  }
  ::closedir(dir);
  std::sort(fds.begin(), fds.end(), [](const auto& a, const auto& b) { return a.number < b.number; });
  return fds;
}

Result<std::vector<TransferredFd>> fetch_fds(pid_t pid, int pidfd) {
  auto fds = list_fds(pid);
  if (!fds) return fds.error();
  for (TransferredFd& fd : fds.value()) {
    if (auto why = fd_refusal(fd.target)) return SysError{EPERM, "fd " + std::to_string(fd.number) + " is " + *why};
    // fdinfo's "flags:" is octal and includes O_CLOEXEC (fs/proc/fd.c).
    auto info = read_proc_file("/proc/" + std::to_string(pid) + "/fdinfo/" + std::to_string(fd.number));
    if (!info) return info.error();
    auto at = info->find("flags:");
    if (at != std::string::npos) fd.cloexec = std::strtoul(info->c_str() + at + 6, nullptr, 8) & O_CLOEXEC;
    long copy = ::syscall(SYS_pidfd_getfd, pidfd, fd.number, 0);
    if (copy < 0) return last_error("pidfd_getfd " + std::to_string(fd.number));
    fd.copy.reset(static_cast<int>(copy));
  }
  return fds;
}

// /proc/PID/fdinfo/N lists the locks held through each fd (fs/proc/fd.c
// show_fd_locks()): "lock:\t1: POSIX  ADVISORY  WRITE 4242 fe:00:1234 0 EOF".
// A POSIX lock is released when its owner closes any fd of the file, so
// every one shows under some fd. (Not /proc/locks: reading it takes a
// global lock that waits for an RCU grace period, 9 ms here even when
// empty.) OFD locks show as OFDLCK and flock locks as FLOCK: they belong to
// the open file and move with it.
Result<bool> holds_posix_locks(pid_t pid) {
  auto fds = list_fds(pid);
  if (!fds) return fds.error();
  for (const auto& fd : fds.value()) {
    auto info = read_proc_file("/proc/" + std::to_string(pid) + "/fdinfo/" + std::to_string(fd.number));
    if (!info) continue;  // closed meanwhile
    std::istringstream lines(info.value());
    std::string line;
    while (std::getline(lines, line)) {
      if (line.rfind("lock:", 0) == 0 && line.find(" POSIX ") != std::string::npos) return true;
    }
  }
  return false;
}

Result<bool> has_posix_timers(pid_t pid) {
  auto text = read_proc_file("/proc/" + std::to_string(pid) + "/timers");
  if (!text) return text.error();
  return !text->empty();
}

}  // namespace pat::tracer
