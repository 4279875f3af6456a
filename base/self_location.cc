#include "base/self_location.h"

#include <cassert>
#include <system_error>

namespace pat {

std::filesystem::path self_directory() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  // /proc is always mounted where pat runs; without it nothing else works either.
  assert(!ec && "/proc/self/exe unreadable");
  return exe.parent_path();
}

static std::filesystem::path prefix() { return self_directory().parent_path(); }

std::filesystem::path libexec_path(const std::string& name) { return prefix() / "libexec" / "pat" / name; }

std::filesystem::path private_lib_path(const std::string& relative) { return prefix() / "lib" / "pat" / relative; }

std::filesystem::path bin_path(const std::string& name) { return prefix() / "bin" / name; }

}  // namespace pat
