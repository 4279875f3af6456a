#include "tracer/attach/proc_status.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <sstream>

#include "base/unique_fd.h"

namespace pat::tracer {
namespace {

std::uint64_t hex(const std::string& v) { return std::strtoull(v.c_str(), nullptr, 16); }
long dec(const std::string& v) { return std::strtol(v.c_str(), nullptr, 10); }

template <class T, std::size_t N>
void fill_ids(const std::string& v, std::array<T, N>& out) {
  std::istringstream in(v);
  for (auto& id : out) in >> id;
}

}  // namespace

Result<std::string> read_proc_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return last_error("open " + path);
  std::string text;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return last_error("read " + path);
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  return text;
}

ProcStatus parse_proc_status(const std::string& text) {
  ProcStatus s;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    std::string v = line.substr(colon + 1);
    v.erase(0, v.find_first_not_of(" \t"));
    if (key == "Name") s.name = v;
    else if (key == "State") s.state = v.empty() ? '?' : v[0];
    else if (key == "Tgid") s.tgid = static_cast<pid_t>(dec(v));
    else if (key == "Pid") s.pid = static_cast<pid_t>(dec(v));
    else if (key == "PPid") s.ppid = static_cast<pid_t>(dec(v));
    else if (key == "TracerPid") s.tracer_pid = static_cast<pid_t>(dec(v));
    else if (key == "Uid") fill_ids(v, s.uids);
    else if (key == "Gid") fill_ids(v, s.gids);
    else if (key == "Groups") {
      std::istringstream in(v);
      gid_t g;
      while (in >> g) s.groups.push_back(g);
    } else if (key == "Kthread") s.kernel_thread = dec(v) != 0;
    else if (key == "Threads") s.threads = static_cast<int>(dec(v));
    else if (key == "Umask") s.umask = static_cast<unsigned>(std::strtoul(v.c_str(), nullptr, 8));
    else if (key == "SigPnd") s.sig_pending = hex(v);
    else if (key == "ShdPnd") s.shared_pending = hex(v);
    else if (key == "SigBlk") s.sig_blocked = hex(v);
    else if (key == "SigIgn") s.sig_ignored = hex(v);
    else if (key == "SigCgt") s.sig_caught = hex(v);
    else if (key == "CapInh") s.cap_inheritable = hex(v);
    else if (key == "CapPrm") s.cap_permitted = hex(v);
    else if (key == "CapEff") s.cap_effective = hex(v);
    else if (key == "CapAmb") s.cap_ambient = hex(v);
    else if (key == "NoNewPrivs") s.no_new_privs = dec(v) != 0;
    else if (key == "Seccomp") s.seccomp_mode = static_cast<int>(dec(v));
    else if (key == "Seccomp_filters") s.seccomp_filters = static_cast<int>(dec(v));
    else if (key == "RssAnon") s.rss_anon_bytes = static_cast<std::uint64_t>(dec(v)) * 1024;  // "1234 kB"
  }
  std::sort(s.groups.begin(), s.groups.end());
  return s;
}

Result<ProcStatus> read_proc_status(pid_t pid, pid_t tid) {
  std::string path = "/proc/" + std::to_string(pid) + (tid != 0 ? "/task/" + std::to_string(tid) : "") + "/status";
  auto text = read_proc_file(path);
  if (!text) return text.error();
  return parse_proc_status(text.value());
}

std::optional<ProcStatLayout> parse_proc_stat_layout(const std::string& text) {
  auto close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  // After ") " comes field 3 (state).
  std::istringstream in(text.substr(close + 1));
  std::vector<std::string> fields{"", "", ""};  // fields 1 and 2 are pid and comm
  std::string f;
  while (in >> f) fields.push_back(f);
  if (fields.size() < 52) return std::nullopt;
  auto at = [&](std::size_t n) { return std::strtoull(fields[n].c_str(), nullptr, 10); };
  ProcStatLayout l;
  l.start_code = at(26);
  l.end_code = at(27);
  l.start_stack = at(28);
  l.start_data = at(45);
  l.end_data = at(46);
  l.start_brk = at(47);
  l.arg_start = at(48);
  l.arg_end = at(49);
  l.env_start = at(50);
  l.env_end = at(51);
  return l;
}

Result<ProcStatLayout> read_proc_stat_layout(pid_t pid) {
  auto text = read_proc_file("/proc/" + std::to_string(pid) + "/stat");
  if (!text) return text.error();
  auto layout = parse_proc_stat_layout(text.value());
  if (!layout) return SysError{EINVAL, "/proc/" + std::to_string(pid) + "/stat: unexpected format"};
  return *layout;
}

Result<std::vector<pid_t>> list_threads(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/task";
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return last_error("opendir " + path);
  std::vector<pid_t> tids;
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    tids.push_back(static_cast<pid_t>(std::strtol(e->d_name, nullptr, 10)));
  }
  ::closedir(dir);
  std::sort(tids.begin(), tids.end());
  return tids;
}

}  // namespace pat::tracer
