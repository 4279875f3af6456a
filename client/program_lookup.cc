#include "client/program_lookup.h"

#include "proto/defaults.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <optional>

namespace pat::client {

namespace {

std::string absolute(const std::string& path) {
  if (!path.empty() && path.front() == '/') return path;
  return (std::filesystem::current_path() / path).lexically_normal().string();
}

}  // namespace

std::variant<std::string, ProgramNotFound, ProgramNotPermitted> look_up_program(const std::string& name,
                                                                               const std::string& path_variable) {
  if (name.empty()) return ProgramNotFound{};
  // A path is taken as given: the host reports what is wrong with it, as the
  // owner would see it.
  if (name.find('/') != std::string::npos) return absolute(name);
  // As execvp: an empty PATH entry means the current directory; a candidate
  // that exists but may not be executed is remembered, and reported only if
  // no later entry has a runnable one.
  std::string search = path_variable.empty() ? proto::kDefaultSearchPath : path_variable;
  std::optional<std::string> denied;
  std::size_t start = 0;
  for (;;) {
    std::size_t end = search.find(':', start);
    std::string dir = search.substr(start, end == std::string::npos ? std::string::npos : end - start);
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      if (::access(candidate.c_str(), X_OK) == 0) return absolute(candidate);
      if (!denied) denied = absolute(candidate);
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  if (denied) return ProgramNotPermitted{*denied};
  return ProgramNotFound{};
}

}  // namespace pat::client
