// How pat-python finds its own file: for sys.executable (so that
// multiprocessing's spawn and subprocess re-run pat-python) and for the
// directory holding the `pat` package. Inside a pat group /proc/self/exe is
// per mm and names the group's host, so it is only the last resort.
#pragma once

#include <filesystem>
#include <optional>

namespace pat::python {

struct OwnExecutable {
  // Absolute, symlinks kept: what sys.executable reports. python3.11 reports
  // abspath(argv[0]) the same way, and a venv's bin/python symlink must stay
  // visible, because getpath and site.py look for pyvenv.cfg next to it.
  std::filesystem::path invoked_path;
  // Symlinks resolved: the real install prefix, where lib/pat/python lives.
  std::filesystem::path resolved_path;
};

// Call before anything changes the cwd: a relative AT_EXECFN is relative to the
// cwd at execve time. Empty only if neither AT_EXECFN nor /proc/self/exe name
// a readable file.
std::optional<OwnExecutable> locate_own_executable();

}  // namespace pat::python
