// File helpers shared by the tracer tests: test programs, scratch files.
#pragma once

#include <sys/types.h>

#include <string>

namespace pat::tracer::testing {

// A member program built by tests/tracer/CMakeLists.txt.
std::string program(const std::string& name);

std::string read_file(const std::string& path);
// Writes `bytes` and sets `mode` (REQUIREs success).
void write_file(const std::string& path, const std::string& bytes, mode_t mode);
// A fresh directory under /tmp.
std::string temp_dir();
// realpath(3): what the kernel's /proc/PID/exe would show for `path`.
std::string real_path(const std::string& path);

}  // namespace pat::tracer::testing
