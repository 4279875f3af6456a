#include "tracer/attach/process_capture.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "tracer/attach/injected_syscalls.h"
#include "tracer/attach/thread_capture.h"

namespace pat::tracer {
namespace {

// rt_sigaction(sig, NULL, &old) for the signals whose disposition is not
// the default (SigCgt and SigIgn of /proc status), and for SIGCHLD, whose
// SA_NOCLDSTOP/SA_NOCLDWAIT matter even with SIG_DFL; getitimer(2) for each
// timer; brk(0).
Status ask_the_process(SeizedProcess& process, std::uint64_t gadget, const ProcStatus& status, Deadline deadline,
                       CapturedProcess& out) {
  auto session = InjectedSyscalls::begin(process, process.pid(), gadget, deadline);
  if (!session) return session.error();
  const RemoteAddress scratch = session->scratch();
  const std::uint64_t asked = status.sig_caught | status.sig_ignored | (std::uint64_t{1} << (SIGCHLD - 1));
  for (int sig = 1; sig <= kernel::kNumSignals; ++sig) {
    if (!(asked >> (sig - 1) & 1) || sig == SIGKILL || sig == SIGSTOP) continue;
    auto rc = session->call(SYS_rt_sigaction, {static_cast<std::uint64_t>(sig), 0, scratch.value, kernel::kSigsetSize});
    if (!rc) return rc.error();
    if (rc.value() < 0) continue;  // a signal number the kernel refuses to report
    if (auto s = session->read(scratch, &out.actions[sig], sizeof(kernel::KernelSigaction)); !s) return s;
  }
  for (int which : {ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF}) {
    auto rc = session->call(SYS_getitimer, {static_cast<std::uint64_t>(which), scratch.value});
    if (!rc) return rc.error();
    itimerval value{};
    if (rc.value() == 0 && session->read(scratch, &value, sizeof(value)) && (value.it_value.tv_sec || value.it_value.tv_usec))
      out.timers.emplace_back(which, value);
  }
  auto brk = session->call(SYS_brk, {0});
  if (!brk) return brk.error();
  out.brk = static_cast<std::uint64_t>(brk.value());
  return session->end();
}

// The process's limits; a hard limit above ours cannot be given to the
// member (raising it needs CAP_SYS_RESOURCE) and is lowered to ours, as
// launched members' limits are.
Status read_limits(pid_t pid, CapturedProcess& out) {
  for (int resource = 0; resource < RLIM_NLIMITS; ++resource) {
    KernelRlimit theirs{}, ours{};
    if (::syscall(SYS_prlimit64, pid, resource, nullptr, &theirs) != 0) return last_error("prlimit " + std::to_string(pid));
    if (::syscall(SYS_prlimit64, 0, resource, nullptr, &ours) != 0) return last_error("prlimit self");
    theirs.max = std::min(theirs.max, ours.max);
    theirs.cur = std::min(theirs.cur, theirs.max);
    out.rlimits.emplace_back(resource, theirs);
  }
  return ok_status();
}

std::vector<std::string> split_nul(const std::string& text) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t end = text.find('\0', at);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

}  // namespace

Result<CapturedProcess> capture_process(SeizedProcess& process, int pidfd, std::uint64_t gadget, const ProcStatus& status,
                                        Deadline deadline) {
  const pid_t pid = process.pid();
  const std::string proc = "/proc/" + std::to_string(pid);
  CapturedProcess out;
  for (auto& action : out.actions) action = kernel::KernelSigaction{SIG_DFL, 0, nullptr, 0};
  if (auto s = ask_the_process(process, gadget, status, deadline, out); !s) return s.error();
  out.umask = status.umask;
  auto personality = read_proc_file(proc + "/personality");
  if (!personality) return personality.error();
  out.personality = std::strtoul(personality->c_str(), nullptr, 16);
  if (auto s = read_limits(pid, out); !s) return s.error();
  auto shared = peek_shared_pending(pid);
  if (!shared) return shared.error();
  out.shared_pending = std::move(shared.value());
  out.cwd.reset(::open((proc + "/cwd").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!out.cwd) return last_error("open " + proc + "/cwd");
  auto fds = fetch_fds(pid, pidfd);
  if (!fds) return fds.error();
  out.fds = std::move(fds.value());
  char exe[4096];
  ssize_t n = ::readlink((proc + "/exe").c_str(), exe, sizeof(exe));
  if (n > 0) out.exe.assign(exe, static_cast<std::size_t>(n));
  auto cmdline = read_proc_file(proc + "/cmdline");
  if (cmdline) out.argv = split_nul(cmdline.value());
  out.comm = status.name;
  return out;
}

}  // namespace pat::tracer
