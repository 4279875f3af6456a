#include "tracer/attach/mapped_objects.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>

#include "tracer/attach/fd_transfer.h"
#include "tracer/attach/proc_status.h"

namespace pat::tracer {
namespace {

bool is_object_of(const struct stat& st, const ProcessMapping& m) {
  return major(st.st_dev) == m.dev_major && minor(st.st_dev) == m.dev_minor && st.st_ino == m.inode;
}

UniqueFd duplicate(const UniqueFd& fd) { return UniqueFd(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0)); }

}  // namespace

std::optional<UniqueFd> MappedObjects::open(const ProcessMapping& m) {
  const bool write = needs_write(m);
  Key key{m.dev_major, m.dev_minor, m.inode, write};
  if (auto it = cache_.find(key); it != cache_.end()) return duplicate(it->second);
  std::optional<UniqueFd> fd = m.deleted ? std::nullopt : from_path(m, write);
  if (!fd) fd = from_fd_table(m, write);
  if (!fd && privileged_opener_) {
    auto opened = privileged_opener_(pid_, m, write);
    if (opened) fd = std::move(opened.value());
  }
  if (!fd) return std::nullopt;
  auto copy = duplicate(*fd);
  cache_.emplace(key, std::move(*fd));
  return copy;
}

// The process and the host share their root and mount namespace (checked
// before), so the path smaps shows names the same place for both.
std::optional<UniqueFd> MappedObjects::from_path(const ProcessMapping& m, bool write) {
  if (m.path.empty() || m.path[0] != '/') return std::nullopt;
  UniqueFd fd(::open(m.path.c_str(), (write ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  struct stat st;
  if (!fd || ::fstat(fd.get(), &st) != 0 || !is_object_of(st, m)) return std::nullopt;
  return fd;
}

std::optional<UniqueFd> MappedObjects::from_fd_table(const ProcessMapping& m, bool write) {
  if (!table_) {
    table_.emplace();
    auto fds = list_fds(pid_);
    if (fds) {
      for (const auto& fd : fds.value()) {
        // stat(2) through the magic link reaches the object itself.
        struct stat st;
        std::string link = "/proc/" + std::to_string(pid_) + "/fd/" + std::to_string(fd.number);
        if (::stat(link.c_str(), &st) != 0) continue;
        auto info = read_proc_file("/proc/" + std::to_string(pid_) + "/fdinfo/" + std::to_string(fd.number));
        int access = O_RDONLY;
        if (info) {
          auto at = info->find("flags:");
          if (at != std::string::npos) access = static_cast<int>(std::strtoul(info->c_str() + at + 6, nullptr, 8) & O_ACCMODE);
        }
        auto k = std::make_tuple(static_cast<unsigned>(major(st.st_dev)), static_cast<unsigned>(minor(st.st_dev)),
                                 static_cast<std::uint64_t>(st.st_ino));
        auto [entry, added] = table_->try_emplace(k, TableEntry{fd.number, access});
        if (!added && access == O_RDWR) entry->second = TableEntry{fd.number, access};
      }
    }
  }
  auto it = table_->find(std::make_tuple(m.dev_major, m.dev_minor, m.inode));
  if (it == table_->end()) return std::nullopt;
  if (it->second.access == O_WRONLY || (write && it->second.access != O_RDWR)) return std::nullopt;
  long fd = ::syscall(SYS_pidfd_getfd, pidfd_, it->second.fd, 0);
  if (fd < 0) return std::nullopt;
  return UniqueFd(static_cast<int>(fd));
}

}  // namespace pat::tracer
