// From the path a user asked to run to the ELF files to map, checked the way
// execve(2) checks them: regular file, execute permission, no noexec mount,
// `#!` scripts rewritten as fs/binfmt_script.c does (up to the kernel's
// depth), PT_INTERP opened the same way. Runs in the host with the host's
// credentials, which are the group owner's.
//
// Setuid/setgid bits and file capabilities are ignored, not refused: we never
// call execve, so the kernel never raises credentials, and the program runs
// with the host's (the caller's) uid, as if the file had no such bits. That is
// also what execve does under NO_NEW_PRIVS.
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "base/unique_fd.h"
#include "tracer/elf_image.h"
#include "tracer/launch_error.h"

namespace pat::tracer {

// An ELF file opened for mapping.
struct OpenedElf {
  UniqueFd fd;
  std::string path;  // canonical path, as /proc/PID/exe shows it (symlinks resolved)
  ElfImage image;
};

struct ResolvedProgram {
  OpenedElf program;
  std::optional<OpenedElf> interpreter;  // PT_INTERP (ld.so), if any
  std::vector<std::string> argv;         // after `#!` rewriting
};

// `path` and relative interpreter paths are looked up from `cwd_fd`
// (AT_FDCWD for the caller's cwd). `search_path` is the member's PATH, used
// only for pat's `#!/usr/bin/env NAME` shortcut (see shebang.h).
std::variant<ResolvedProgram, LaunchError> resolve_program(int cwd_fd, const std::string& path,
                                                           const std::vector<std::string>& argv,
                                                           const std::string& search_path);

// One ELF file, opened with execve's checks (regular file, execute
// permission, no noexec mount); a script is refused as not ELF. No PT_INTERP
// is followed.
std::variant<OpenedElf, LaunchError> open_elf(int cwd_fd, const std::string& path);

// PATH lookup as execvp(3) does it: the first regular file we may execute.
// A name containing '/' is returned unchanged.
std::optional<std::string> search_in_path(int cwd_fd, const std::string& name, const std::string& search_path);

}  // namespace pat::tracer
