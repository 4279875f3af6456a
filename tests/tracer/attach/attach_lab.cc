#include "tests/tracer/attach/attach_lab.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/kcmp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace fs = std::filesystem;

namespace pat::tracer::attach_testing {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<pid_t> threads_of(pid_t pid) {
  std::vector<pid_t> out;
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(static_cast<pid_t>(std::stol(e.path().filename())));
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

Lab::Lab() {
  char tmpl[] = "/tmp/pat-attach-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp");
  dir_ = tmpl;
  ::chmod(dir_.c_str(), 0755);
  fs::create_directories(dir_ + "/bin");
  fs::create_directories(dir_ + "/work");
  ::chown((dir_ + "/work").c_str(), kTestUid, kTestGid);
  const std::string programs = ATTACH_PROGRAMS_DIR;
  for (const char* name : {"attach_driver", "attach_workload", "attach_parent", "attach_target", "attach_churn"})
    fs::copy_file(programs + "/" + name, bin(name));
  fs::copy_file(ATTACH_STUB, bin("pat-attach-stub"));
  fs::copy_file(std::string(ATTACH_SOURCE_DIR) + "/programs/attach_server.py", bin("attach_server.py"));
  for (const auto& e : fs::directory_iterator(dir_ + "/bin")) ::chmod(e.path().c_str(), 0755);
}

Lab::~Lab() {
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::optional<std::string> LineReader::next(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      seen_.push_back(line);
      return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(fd_, buf, sizeof(buf));
    if (n <= 0) return std::nullopt;
    buffer_.append(buf, static_cast<std::size_t>(n));
  }
}

std::optional<std::string> LineReader::until(const std::string& prefix, std::chrono::milliseconds timeout) {
  for (const auto& line : seen_) {
    if (line.rfind(prefix, 0) == 0 && consumed_.insert(&line - seen_.data()).second) return line;
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    auto line = next(std::max(left, std::chrono::milliseconds(0)));
    if (!line) return std::nullopt;
    if (line->rfind(prefix, 0) == 0) {
      consumed_.insert(seen_.size() - 1);
      return line;
    }
  }
}

Spawned::Spawned(const std::vector<std::string>& argv, bool as_root, bool with_stdin) {
  int out[2], in[2] = {-1, -1};
  if (::pipe2(out, O_CLOEXEC) != 0 || (with_stdin && ::pipe2(in, O_CLOEXEC) != 0)) throw std::runtime_error("pipe");
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    ::dup2(out[1], 1);
    if (with_stdin) ::dup2(in[0], 0);
    else ::close(0), ::open("/dev/null", O_RDONLY);
    if (!as_root && (::setgroups(0, nullptr) != 0 || ::setresgid(kTestGid, kTestGid, kTestGid) != 0 ||
                     ::setresuid(kTestUid, kTestUid, kTestUid) != 0))
      ::_exit(125);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(out[1]);
  out_ = out[0];
  if (with_stdin) {
    ::close(in[0]);
    in_ = in[1];
  }
  reader_.emplace(out_);
}

Spawned::~Spawned() {
  kill_now();
  if (out_ >= 0) ::close(out_);
  if (in_ >= 0) ::close(in_);
}

void Spawned::send(const std::string& line) {
  std::string data = line + "\n";
  (void)!::write(in_, data.data(), data.size());
}

void Spawned::kill_now() {
  if (reaped_ || pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status;
  ::waitpid(pid_, &status, 0);
  reaped_ = true;
}

std::optional<int> Spawned::wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status;
    pid_t got = ::waitpid(pid_, &status, WNOHANG);
    if (got == pid_) {
      reaped_ = true;
      return status;
    }
    if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
    ::usleep(10000);
  }
}

Driver::Driver(const Lab& lab, const std::string& stub)
    : process_({lab.bin("attach_driver"), "--stub", stub.empty() ? lab.bin("pat-attach-stub") : stub, "--uid",
                std::to_string(kTestUid), "--gid", std::to_string(kTestGid)},
               true, true) {
  if (!process_.out().until("ready", std::chrono::seconds(10))) throw std::runtime_error("attach_driver did not start");
}

std::string Driver::attach(pid_t pid, const std::string& options) {
  process_.send("attach " + std::to_string(pid) + (options.empty() ? "" : " " + options));
  for (;;) {
    auto line = process_.out().next(std::chrono::seconds(30));
    if (!line) return "(no answer)";
    for (const char* result : {"attached ", "refused ", "failed ", "holding "}) {
      if (line->rfind(result, 0) == 0) return *line;
    }
  }
}

std::optional<std::string> Driver::event(const std::string& prefix, std::chrono::milliseconds timeout) {
  return process_.out().until(prefix, timeout);
}

Target::Target(const Lab& lab, const std::vector<std::string>& argv, bool as_root) : parent_([&] {
  std::vector<std::string> full{lab.bin("attach_parent")};
  full.insert(full.end(), argv.begin(), argv.end());
  return full;
}(), as_root) {
  auto line = parent_.out().until("child ", std::chrono::seconds(10));
  if (!line) throw std::runtime_error("attach_parent did not start its child");
  child_ = static_cast<pid_t>(std::stol(line->substr(6)));
}

Target::~Target() {
  if (child_ > 0) ::kill(child_, SIGKILL);
  parent_.wait(std::chrono::seconds(5));  // it reaps the child and reports, then ends
}

std::optional<std::string> Target::report(const std::string& prefix, std::chrono::milliseconds timeout) {
  return parent_.out().until(prefix, timeout);
}

std::string ask(const std::string& socket_path, const std::string& command) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", socket_path.c_str());
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string reply;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    std::string line = command + "\n";
    (void)!::write(fd, line.data(), line.size());
    char c;
    while (::read(fd, &c, 1) == 1 && c != '\n') reply.push_back(c);
  }
  ::close(fd);
  return reply;
}

long field(const std::string& line, const std::string& key) {
  auto at = line.find(" " + key + "=");
  if (at == std::string::npos) return 0;
  return std::strtol(line.c_str() + at + key.size() + 2, nullptr, 10);
}

Snapshot snapshot(pid_t pid) {
  Snapshot s;
  const std::string proc = "/proc/" + std::to_string(pid);
  std::string status = slurp(proc + "/status");
  auto at = status.find("TracerPid:");
  if (at != std::string::npos) s.tracer = static_cast<pid_t>(std::strtol(status.c_str() + at + 10, nullptr, 10));
  at = status.find("State:");
  if (at != std::string::npos) s.state = status[status.find_first_not_of(" \t", at + 6)];
  // A thread just let go by a previous look (or by a rolled-back attach)
  // may still be on its way back into its blocking call.
  auto all_sleeping = [&] {
    for (pid_t tid : threads_of(pid)) {
      std::string st = slurp(proc + "/task/" + std::to_string(tid) + "/stat");
      auto close = st.rfind(')');
      if (close == std::string::npos || close + 2 >= st.size() || st[close + 2] == 'R') return false;
    }
    return true;
  };
  for (int i = 0; i < 200 && !all_sleeping(); ++i) ::usleep(5000);
  status = slurp(proc + "/status");
  at = status.find("State:");
  if (at != std::string::npos) s.state = status[status.find_first_not_of(" \t", at + 6)];
  s.maps = slurp(proc + "/maps");
  std::vector<pid_t> held;
  // Bytes the kernel itself rewrites whenever a thread runs again: each
  // thread's rseq area (cpu_id, mm_cid...). Not part of the comparison.
  std::vector<std::pair<unsigned long, unsigned long>> kernel_written;
  if (s.tracer == 0) {
    for (pid_t tid : threads_of(pid)) {
      if (::ptrace(PTRACE_SEIZE, tid, 0, 0) != 0) continue;
      ::ptrace(PTRACE_INTERRUPT, tid, 0, 0);
      int st;
      ::waitpid(tid, &st, __WALL);
      user_regs_struct regs{};
      ::ptrace(PTRACE_GETREGS, tid, 0, &regs);
      s.registers[tid] = regs;
      held.push_back(tid);
      struct {
        std::uint64_t pointer;
        std::uint32_t size, signature, flags, pad;
      } rseq{};
      if (::ptrace(static_cast<__ptrace_request>(0x420f) /* PTRACE_GET_RSEQ_CONFIGURATION */, tid, sizeof(rseq), &rseq) > 0 &&
          rseq.pointer != 0)
        kernel_written.emplace_back(rseq.pointer, rseq.pointer + rseq.size);
    }
  }
  // FNV-1a over every readable mapping the kernel does not own.
  int mem = ::open((proc + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
  std::uint64_t hash = 14695981039346656037ull;
  std::istringstream lines(s.maps);
  std::string line;
  std::vector<char> buf(1 << 16);
  while (std::getline(lines, line)) {
    unsigned long start, end;
    char perms[8];
    if (std::sscanf(line.c_str(), "%lx-%lx %7s", &start, &end, perms) != 3 || perms[0] != 'r') continue;
    if (line.find("[vvar") != std::string::npos || line.find("[vsyscall]") != std::string::npos) continue;
    for (unsigned long a = start; a < end; a += buf.size()) {
      std::size_t n = std::min<std::size_t>(buf.size(), end - a);
      if (::pread(mem, buf.data(), n, static_cast<off_t>(a)) != static_cast<ssize_t>(n)) continue;
      for (const auto& [from, to] : kernel_written) {
        for (unsigned long b = std::max(from, a); b < std::min<unsigned long>(to, a + n); ++b) buf[b - a] = 0;
      }
      for (std::size_t i = 0; i < n; ++i) hash = (hash ^ static_cast<unsigned char>(buf[i])) * 1099511628211ull;
    }
  }
  ::close(mem);
  s.memory_hash = hash;
  for (pid_t tid : held) ::ptrace(PTRACE_DETACH, tid, 0, 0);
  std::vector<std::string> fds;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(proc + "/fd", ec)) {
    std::string n = e.path().filename();
    std::string info = slurp(proc + "/fdinfo/" + n);
    std::string flags = info.substr(0, info.find("mnt_id"));
    fds.push_back(n + " -> " + fs::read_symlink(e.path(), ec).string() + " " + flags);
  }
  std::sort(fds.begin(), fds.end());
  for (const auto& f : fds) s.fds += f + "\n";
  for (pid_t tid : threads_of(pid)) s.children += slurp(proc + "/task/" + std::to_string(tid) + "/children");
  return s;
}

std::string difference(const Snapshot& a, const Snapshot& b) {
  if (a.tracer != b.tracer) return "tracer " + std::to_string(a.tracer) + " -> " + std::to_string(b.tracer);
  if (a.state != b.state) return std::string("state ") + a.state + " -> " + b.state;
  if (a.maps != b.maps) return "maps:\n" + a.maps + "---\n" + b.maps;
  if (a.fds != b.fds) return "fds:\n" + a.fds + "---\n" + b.fds;
  if (a.children != b.children) return "children: " + a.children + " -> " + b.children;
  if (a.memory_hash != b.memory_hash) return "memory hash";
  if (a.registers.size() != b.registers.size()) return "thread count";
  for (const auto& [tid, regs] : a.registers) {
    auto it = b.registers.find(tid);
    if (it == b.registers.end()) return "thread " + std::to_string(tid) + " gone";
    if (std::memcmp(&regs, &it->second, sizeof(regs)) != 0) return "registers of thread " + std::to_string(tid);
  }
  return "";
}

bool same_address_space(pid_t a, pid_t b) { return ::syscall(SYS_kcmp, a, b, KCMP_VM, 0, 0) == 0; }

}  // namespace pat::tracer::attach_testing
