// MappedObjects: the objects behind the file mappings of a process being
// attached, opened again for the group. Following /proc/PID/map_files needs
// CAP_SYS_ADMIN (fs/proc/base.c proc_map_files_get_link), which the host
// does not have, so an object is found, in order:
//  1. by its path, opened with the owner's credentials, and accepted only if
//     it is the same inode (device and inode number, as smaps shows them);
//  2. through a descriptor of the process's own table on the same inode
//     (pidfd_getfd): memfds and deleted files usually have one;
//  3. through `privileged_opener`, if the caller has one (patd opening
//     map_files for the host, with no more access than the mapping has).
// A private mapping whose object cannot be found is copied as anonymous
// memory; a shared one is refused.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <optional>
#include <tuple>

#include "base/result.h"
#include "base/unique_fd.h"
#include "tracer/attach/process_maps.h"

namespace pat::tracer {

class MappedObjects {
 public:
  // (pid, mapping, needs write access) -> an fd for the mapping's object.
  using PrivilegedOpener = std::function<Result<UniqueFd>(pid_t, const ProcessMapping&, bool)>;

  MappedObjects(pid_t pid, int pidfd, PrivilegedOpener privileged_opener = {})
      : pid_(pid), pidfd_(pidfd), privileged_opener_(std::move(privileged_opener)) {}

  // An fd (ours, to close) for `m`'s object with the access a mapping of
  // it needs; nullopt if none of the ways above finds it.
  std::optional<UniqueFd> open(const ProcessMapping& m);

  // The access a new mapping of `m` needs: writing only for a shared
  // mapping that may become writable (VM_MAYWRITE).
  static bool needs_write(const ProcessMapping& m) { return m.shared && (m.flags & kVmMayWrite); }

 private:
  using Key = std::tuple<unsigned, unsigned, std::uint64_t, bool>;  // major, minor, inode, write
  struct TableEntry {
    int fd;
    int access;  // O_RDONLY, O_WRONLY, O_RDWR
  };
  std::optional<UniqueFd> from_path(const ProcessMapping& m, bool write);
  std::optional<UniqueFd> from_fd_table(const ProcessMapping& m, bool write);

  pid_t pid_;
  int pidfd_;
  PrivilegedOpener privileged_opener_;
  std::map<Key, UniqueFd> cache_;
  std::optional<std::map<std::tuple<unsigned, unsigned, std::uint64_t>, TableEntry>> table_;
};

}  // namespace pat::tracer
