#include "tracer/address_space.h"

#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "base/unique_fd.h"

namespace pat::tracer {

bool shares_my_address_space(pid_t pid) {
  // kcmp returns 0 for "same object"; glibc has no wrapper.
  return ::syscall(SYS_kcmp, ::getpid(), pid, KCMP_VM, 0, 0) == 0;
}

std::optional<pid_t> thread_group_of(pid_t tid) {
  std::string path = "/proc/" + std::to_string(tid) + "/status";
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  char buf[4096];
  ssize_t n = ::read(fd.get(), buf, sizeof(buf) - 1);
  if (n <= 0) return std::nullopt;
  buf[n] = '\0';
  const char* line = std::strstr(buf, "\nTgid:");
  if (line == nullptr) return std::nullopt;
  return static_cast<pid_t>(std::strtol(line + 6, nullptr, 10));
}

std::optional<std::string> executable_of(pid_t pid) {
  char buf[4096];
  std::string link = "/proc/" + std::to_string(pid) + "/exe";
  ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf));
  if (n <= 0) return std::nullopt;
  return std::string(buf, static_cast<std::size_t>(n));
}

}  // namespace pat::tracer
