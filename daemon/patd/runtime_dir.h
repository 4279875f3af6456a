// patd's runtime directory (default /run/patd):
//   patd.sock                  the control socket
//   groups/                    root, 0711: traversable, not listable
//   groups/<name>/             the owner's, 0700
//   groups/<name>/host.sock    created by that group's host
// A restarted patd re-discovers live groups by their host sockets.
#pragma once

#include "base/result.h"
#include "base/unique_fd.h"
#include "proto/defaults.h"

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace pat::patd {

class RuntimeDir {
 public:
  explicit RuntimeDir(std::filesystem::path root) : root_(std::move(root)) {}

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path control_socket() const { return root_ / proto::kControlSocketName; }
  std::filesystem::path groups_dir() const { return root_ / "groups"; }
  std::filesystem::path group_dir(const std::string& name) const { return groups_dir() / name; }
  std::filesystem::path host_socket(const std::string& name) const { return group_dir(name) / "host.sock"; }

  // Creates root (0755) and groups/ (0711) when missing. Refuses a root that
  // others could write to: patd trusts what it finds there. Finishes group
  // directory removals an earlier patd left.
  Status prepare() const;

  // groups/<name>, owned by uid:gid, mode 0700. A leftover directory of a dead
  // group is cleared first. EEXIST if a live group could own it (caller checks).
  Status create_group_dir(const std::string& name, uid_t uid, gid_t gid) const;

  // Removes groups/<name> and everything in it, never following links: the
  // directory belongs to the group's owner, who could plant anything. The
  // name is free when this returns, even if some of the owner's files could
  // not be removed (they stay in a renamed directory, removed again by
  // remove_abandoned_removals).
  void remove_group_dir(const std::string& name) const;

  // Retries what earlier removals left behind (at start-up).
  void remove_abandoned_removals() const;

  struct GroupDirEntry {
    std::string name;
    uid_t owner_uid;
    gid_t owner_gid;
  };
  // Directories under groups/ with a valid group name.
  std::vector<GroupDirEntry> list_group_dirs() const;

 private:
  std::filesystem::path root_;
};

}  // namespace pat::patd
