#include "daemon/host/process_title.h"

#include <cstring>
#include <vector>

extern char** environ;

namespace pat::host {

std::string group_process_title(const std::string& group) { return "pat: group " + group; }

bool set_process_title(int argc, char** argv, const std::string& title) {
  if (argc < 1 || argv[0] == nullptr) return false;
  char* start = argv[0];
  char* end = start;
  for (int i = 0; i < argc; ++i) {
    if (argv[i] != end) return false;  // not where the previous string ended
    end += std::strlen(argv[i]) + 1;
  }
  const std::size_t area = static_cast<std::size_t>(end - start);
  const std::size_t length = std::min(title.size(), area - 1);
  std::memcpy(start, title.data(), length);
  // The rest of the area: a NUL right after the title, then non-NUL bytes up
  // to the last one. get_mm_cmdline() takes a non-NUL last byte to mean "the
  // program rewrote its arguments" and returns the text up to the first NUL,
  // so ps shows the title alone rather than the title followed by the NULs of
  // the old arguments (shown as spaces).
  std::memset(start + length, ' ', area - length);
  start[length] = '\0';
  return true;
}

void blank_environment_area() {
  if (environ == nullptr || environ[0] == nullptr) return;
  char* start = environ[0];
  char* end = start;
  std::size_t count = 0;
  for (; environ[count] != nullptr; ++count) {
    if (environ[count] != end) return;  // changed since execve (setenv): leave it
    end += std::strlen(environ[count]) + 1;
  }
  // Never freed: environ must stay valid for the life of the process.
  auto* moved = new char*[count + 1];
  for (std::size_t i = 0; i < count; ++i) moved[i] = ::strdup(environ[i]);
  moved[count] = nullptr;
  environ = moved;
  std::memset(start, 0, static_cast<std::size_t>(end - start));
}

}  // namespace pat::host
