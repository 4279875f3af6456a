#include "daemon/patd/runtime_dir.h"

#include "proto/group_object.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace pat::patd {

namespace {

Status ensure_directory(const std::filesystem::path& path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST) return last_error("mkdir " + path.string());
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return last_error("stat " + path.string());
  if (!S_ISDIR(st.st_mode)) return SysError{ENOTDIR, path.string()};
  if (st.st_uid != ::geteuid()) return SysError{EPERM, path.string() + " is owned by another user"};
  if (::chmod(path.c_str(), mode) != 0) return last_error("chmod " + path.string());
  return ok_status();
}

// Files pat itself creates in a group directory; nothing else is touched.
constexpr const char* kGroupDirFiles[] = {"host.sock"};

}  // namespace

Status RuntimeDir::prepare() const {
  if (auto status = ensure_directory(root_, 0755); !status) return status;
  return ensure_directory(groups_dir(), 0711);
}

Status RuntimeDir::create_group_dir(const std::string& name, uid_t uid, gid_t gid) const {
  UniqueFd groups(::open(groups_dir().c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!groups) return last_error("open " + groups_dir().string());
  if (::mkdirat(groups.get(), name.c_str(), 0700) != 0) {
    if (errno != EEXIST) return last_error("mkdir " + group_dir(name).string());
    remove_group_dir(name);  // a dead group's leftovers; the caller ruled out a live one
    if (::mkdirat(groups.get(), name.c_str(), 0700) != 0) return last_error("mkdir " + group_dir(name).string());
  }
  if (::fchownat(groups.get(), name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
    auto error = last_error("chown " + group_dir(name).string());
    ::unlinkat(groups.get(), name.c_str(), AT_REMOVEDIR);
    return error;
  }
  return ok_status();
}

void RuntimeDir::remove_group_dir(const std::string& name) const {
  if (!proto::is_valid_group_name(name)) return;
  UniqueFd groups(::open(groups_dir().c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!groups) return;
  UniqueFd dir(::openat(groups.get(), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (dir) {
    for (const char* file : kGroupDirFiles) ::unlinkat(dir.get(), file, 0);
  }
  // Fails with ENOTEMPTY when the owner left other files: then it stays.
  ::unlinkat(groups.get(), name.c_str(), AT_REMOVEDIR);
}

std::vector<RuntimeDir::GroupDirEntry> RuntimeDir::list_group_dirs() const {
  std::vector<GroupDirEntry> entries;
  UniqueFd groups(::open(groups_dir().c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!groups) return entries;
  DIR* listing = ::fdopendir(::dup(groups.get()));
  if (listing == nullptr) return entries;
  while (dirent* entry = ::readdir(listing)) {
    std::string name = entry->d_name;
    if (!proto::is_valid_group_name(name)) continue;
    struct stat st {};
    if (::fstatat(groups.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) continue;
    entries.push_back({name, st.st_uid, st.st_gid});
  }
  ::closedir(listing);
  return entries;
}

}  // namespace pat::patd
