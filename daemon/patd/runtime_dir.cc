#include "daemon/patd/runtime_dir.h"

#include "proto/group_object.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string_view>

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

// A group directory on its way out is first renamed to "+removing+NAME+N":
// '+' is never in a group name (proto::is_valid_group_name), so the name is
// free at once, whatever the owner left inside or keeps adding.
constexpr std::string_view kRemovingPrefix = "+removing+";

// Deeper than any tree pat makes; an owner's deeper tree is left in the
// renamed directory rather than recursed into without end.
constexpr int kMaxRemovalDepth = 32;

// Removes what is inside the directory `dir` (an fd opened O_DIRECTORY),
// never following a link: a link is unlinked like any file. Best effort:
// the owner may add files meanwhile.
void remove_contents(int dir, int depth) {
  DIR* listing = ::fdopendir(::fcntl(dir, F_DUPFD_CLOEXEC, 0));
  if (listing == nullptr) return;
  ::rewinddir(listing);
  while (dirent* entry = ::readdir(listing)) {
    std::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    if (::unlinkat(dir, entry->d_name, 0) == 0 || errno != EISDIR) continue;
    if (depth >= kMaxRemovalDepth) continue;
    UniqueFd child(::openat(dir, entry->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!child) continue;
    remove_contents(child.get(), depth + 1);
    ::unlinkat(dir, entry->d_name, AT_REMOVEDIR);
  }
  ::closedir(listing);
}

// Removes groups/<entry> and everything in it.
void remove_tree(int groups, const char* entry) {
  UniqueFd dir(::openat(groups, entry, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (dir) remove_contents(dir.get(), 0);
  ::unlinkat(groups, entry, AT_REMOVEDIR);
}

}  // namespace

Status RuntimeDir::prepare() const {
  if (auto status = ensure_directory(root_, 0755); !status) return status;
  if (auto status = ensure_directory(groups_dir(), 0711); !status) return status;
  remove_abandoned_removals();
  return ok_status();
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
  // Renamed first, so that nothing the owner left there (issue 13, 1.9: a
  // file kept the directory, and the name, forever) can hold the name.
  static unsigned removals = 0;
  std::string removing;
  for (int attempt = 0; attempt < 16; ++attempt) {
    removing = std::string(kRemovingPrefix) + name + "+" + std::to_string(::getpid()) + "." + std::to_string(++removals);
    if (::renameat2(groups.get(), name.c_str(), groups.get(), removing.c_str(), RENAME_NOREPLACE) == 0) break;
    if (errno != EEXIST) return;  // ENOENT: already gone
  }
  remove_tree(groups.get(), removing.c_str());
}

void RuntimeDir::remove_abandoned_removals() const {
  UniqueFd groups(::open(groups_dir().c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!groups) return;
  std::vector<std::string> abandoned;
  DIR* listing = ::fdopendir(::fcntl(groups.get(), F_DUPFD_CLOEXEC, 0));
  if (listing == nullptr) return;
  while (dirent* entry = ::readdir(listing)) {
    if (std::string_view(entry->d_name).starts_with(kRemovingPrefix)) abandoned.emplace_back(entry->d_name);
  }
  ::closedir(listing);
  for (const auto& entry : abandoned) remove_tree(groups.get(), entry.c_str());
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
