// Test support: files for one test case under /tmp, removed with it.
#pragma once

#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

namespace pat::testing {

class ScratchDir {
 public:
  ScratchDir() {
    char templ[] = "/tmp/pat-test-XXXXXX";
    REQUIRE(::mkdtemp(templ) != nullptr);
    path_ = templ;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  std::string path(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }
  std::string write(const std::string& name, const std::string& bytes, std::filesystem::perms mode) const {
    std::string file = path(name);
    std::ofstream(file, std::ios::binary) << bytes;
    std::filesystem::permissions(file, mode);
    return file;
  }

 private:
  std::string path_;
};

constexpr auto kExecutable = std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                             std::filesystem::perms::group_exec | std::filesystem::perms::others_read |
                             std::filesystem::perms::others_exec;
constexpr auto kReadWrite = std::filesystem::perms::owner_read | std::filesystem::perms::owner_write;

}  // namespace pat::testing
