// FileDigests: the SHA-256 of files, each computed once per version of the
// file. A version is told apart by what stat(2) reports: device, inode, size,
// mtime and ctime. dpkg replaces a file by renaming a new one over it (a new
// inode), and any write or utimes(2) sets ctime to now, which no caller can
// set back; so an unchanged identity means unchanged content, without
// trusting the mtime alone (dpkg gives files the package's old mtimes).
#pragma once

#include <sys/types.h>

#include <ctime>
#include <map>
#include <string>
#include <variant>

namespace pat::tracer {

class FileDigests {
 public:
  // The lowercase hex SHA-256 of the file's content, or the errno that kept
  // it from being read (ENOENT: the file is gone).
  std::variant<std::string, int> sha256_hex(const std::string& path);

 private:
  struct Version {
    dev_t device = 0;
    ino_t inode = 0;
    off_t size = 0;
    timespec modified{}, changed{};
    bool operator==(const Version& other) const;
  };
  struct Known {
    Version version;
    std::string digest;
  };
  std::map<std::string, Known> known_;
};

}  // namespace pat::tracer
