#include "python/launcher/own_executable.h"

#include <sys/auxv.h>

#include <array>
#include <fstream>
#include <string_view>
#include <system_error>

namespace pat::python {

namespace fs = std::filesystem;

namespace {

// The same normalisation as getpath's abspath() in CPython 3.11, so that
// sys.executable reads as python3.11's would: a relative path is normalised
// first and then joined to the cwd, so "/usr/lib" + "../bin/python3.11" stays
// "/usr/lib/../bin/python3.11".
fs::path absolute_like_python(const fs::path& path) {
  if (path.is_absolute()) return path.lexically_normal();
  std::error_code error;
  fs::path cwd = fs::current_path(error);
  if (error) return {};
  return cwd / path.lexically_normal();
}

// AT_EXECFN is the file name handed to execve. For a `#!` script, or a
// binfmt_misc format, that is the script, not its interpreter (fs/exec.c copies
// the name before binfmt_script runs), so it names us only if it is an ELF
// file. Unreadable files (mode 0711) also fail here; /proc/self/exe covers them.
bool is_elf_file(const fs::path& path) {
  constexpr std::string_view kElfMagic = "\x7f" "ELF";  // ELFMAG, <elf.h>
  std::array<char, kElfMagic.size()> head{};
  std::ifstream file(path, std::ios::binary);
  file.read(head.data(), head.size());
  return file && std::string_view(head.data(), head.size()) == kElfMagic;
}

std::optional<fs::path> path_from_execfn() {
  const auto* execfn = reinterpret_cast<const char*>(getauxval(AT_EXECFN));
  if (execfn == nullptr || *execfn == '\0') return std::nullopt;
  fs::path path = absolute_like_python(execfn);
  if (path.empty() || !is_elf_file(path)) return std::nullopt;
  return path;
}

std::optional<fs::path> path_from_proc_self_exe() {
  std::error_code error;
  fs::path path = fs::read_symlink("/proc/self/exe", error);
  if (error) return std::nullopt;
  return path;
}

}  // namespace

std::optional<OwnExecutable> locate_own_executable() {
  std::optional<fs::path> invoked = path_from_execfn();
  if (!invoked) invoked = path_from_proc_self_exe();
  if (!invoked) return std::nullopt;

  std::error_code error;
  fs::path resolved = fs::canonical(*invoked, error);
  if (error) return std::nullopt;
  return OwnExecutable{*invoked, resolved};
}

}  // namespace pat::python
