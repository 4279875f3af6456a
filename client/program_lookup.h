// Finds the program for `patctl run PROG` the way a shell does (execvp(3)
// semantics): a name with a slash is a path, relative to the current
// directory; otherwise each PATH entry is tried in order.
#pragma once

#include <string>
#include <variant>

namespace pat::client {

struct ProgramNotFound {};
struct ProgramNotPermitted {
  std::string path;  // found, but not executable by the caller (shell: 126)
};

// An absolute path, or why there is none.
std::variant<std::string, ProgramNotFound, ProgramNotPermitted> look_up_program(const std::string& name,
                                                                               const std::string& path_variable);

}  // namespace pat::client
