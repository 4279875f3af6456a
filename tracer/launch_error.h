// LaunchError: why a program could not be launched as a member, in words a
// user can act on. The host maps Kind to the protocol's error names once.
#pragma once

#include <cstdint>
#include <string>

namespace pat::tracer {

struct LaunchError {
  enum class Kind { NotFound, NotExecutable, AddressConflict, Internal };
  Kind kind;
  std::string message;  // ONE line, e.g. "/tmp/x: not an ELF executable (bad ELF magic)"
  std::uintptr_t conflict_start = 0, conflict_end = 0;  // AddressConflict: the fixed range that is taken

  static LaunchError not_found(const std::string& path, const std::string& why) { return {Kind::NotFound, path + ": " + why}; }
  static LaunchError not_executable(const std::string& path, const std::string& why) {
    return {Kind::NotExecutable, path + ": " + why};
  }
  static LaunchError internal(const std::string& message) { return {Kind::Internal, message}; }
};

const char* to_string(LaunchError::Kind kind);

}  // namespace pat::tracer
