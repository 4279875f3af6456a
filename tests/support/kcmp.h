// kcmp(2) for tests, with its three outcomes kept apart: 0 is "the same
// object", 1 or 2 an ordering of different ones, and -1 an error (ESRCH: a
// task is gone; EPERM: not ours to inspect). `kcmp(...) != 0` would take an
// error for "different"; these tests must not.
#pragma once

#include <doctest/doctest.h>
#include <linux/kcmp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace pat::testing {

enum class Kcmp { Same, Different, Error };

// How `type` (KCMP_VM, KCMP_FILES, ...) of tasks a and b compares.
inline Kcmp kcmp(pid_t a, pid_t b, int type) {
  errno = 0;
  long rc = ::syscall(SYS_kcmp, a, b, type, 0, 0);
  if (rc == 0) return Kcmp::Same;
  if (rc == 1 || rc == 2) return Kcmp::Different;
  return Kcmp::Error;
}

}  // namespace pat::testing

// How a failed CHECK prints the value.
namespace doctest {
template <>
struct StringMaker<pat::testing::Kcmp> {
  static String convert(pat::testing::Kcmp value) {
    switch (value) {
      case pat::testing::Kcmp::Same: return "Same";
      case pat::testing::Kcmp::Different: return "Different";
      case pat::testing::Kcmp::Error: return String(("Error (" + std::string(std::strerror(errno)) + ")").c_str());
    }
    return "?";
  }
};
}  // namespace doctest
