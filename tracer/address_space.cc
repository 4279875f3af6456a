#include "tracer/address_space.h"

#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <limits>
#include <string>

#include "base/unique_fd.h"
#include "tracer/proc_text.h"

namespace pat::tracer {

bool shares_my_address_space(pid_t pid) {
  // kcmp returns 0 for "same object"; glibc has no wrapper.
  return ::syscall(SYS_kcmp, ::getpid(), pid, KCMP_VM, 0, 0) == 0;
}

std::optional<pid_t> thread_group_of(pid_t tid) {
  std::string path = "/proc/" + std::to_string(tid) + "/status";
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  char buf[4096];  // Tgid is the 4th line (fs/proc/array.c)
  ssize_t n = ::read(fd.get(), buf, sizeof(buf));
  if (n <= 0) return std::nullopt;
  auto tgid = parse_status_number(std::string_view(buf, static_cast<std::size_t>(n)), "Tgid");
  if (!tgid || *tgid == 0 || *tgid > static_cast<std::uint64_t>(std::numeric_limits<pid_t>::max())) return std::nullopt;
  return static_cast<pid_t>(*tgid);
}

std::optional<std::string> executable_of(pid_t pid) {
  char buf[4096];
  std::string link = "/proc/" + std::to_string(pid) + "/exe";
  ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf));
  if (n <= 0) return std::nullopt;
  return std::string(buf, static_cast<std::size_t>(n));
}

}  // namespace pat::tracer
