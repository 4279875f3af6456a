// Where the running binary lives, and where its sibling helpers are. Installed
// and build trees share one layout (bin/, libexec/pat/, lib/pat/), so
// `<dir of /proc/self/exe>/../libexec/pat/pat-host` holds in both and no
// environment variable is needed.
#pragma once

#include <filesystem>

namespace pat {

// Directory holding the running executable (resolved through /proc/self/exe).
std::filesystem::path self_directory();

// <prefix>/libexec/pat/<name>, where <prefix> is self_directory()/..
std::filesystem::path libexec_path(const std::string& name);

// <prefix>/lib/pat/<relative>
std::filesystem::path private_lib_path(const std::string& relative);

// <prefix>/bin/<name>
std::filesystem::path bin_path(const std::string& name);

}  // namespace pat
