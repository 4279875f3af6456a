#include "daemon/patd/host_launcher.h"

#include "base/pidfd.h"
#include "proto/defaults.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/securebits.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>

namespace pat::patd {

namespace {

// Everything the child needs, prepared before fork so the child only makes
// async-signal-safe calls.
struct ChildPlan {
  std::vector<std::string> argv_storage;
  std::vector<char*> argv;
  std::vector<char*> envp;
  const HostSpec* spec;
  int ready_write;
  int dev_null;
  int log_write;    // the write end of the host's stderr pipe (host_log_relay.h)
  int host_binary;  // pat-host, opened by patd while still root (see start_host)
};

[[noreturn]] void child_fail(int ready_fd, const char* step) {
  char message[160];
  int len = std::snprintf(message, sizeof(message), "ERROR %s: %s\n", step, std::strerror(errno));
  if (len > 0) (void)!::write(ready_fd, message, static_cast<std::size_t>(len));
  ::_exit(127);
}

// Capabilities go in two steps around setresuid (capabilities(7), "Effect of
// user ID changes on capabilities" and "The securebits flags"):
//  1. while still privileged: lock the securebits so that uid 0 never regains
//     capabilities on execve, empty the bounding and ambient sets (needs
//     CAP_SETPCAP);
//  2. after setresuid (which needs CAP_SETUID): empty the permitted,
//     effective and inheritable sets. With SECBIT_NO_SETUID_FIXUP the kernel
//     does not do this for us, and for a root owner it never would.
bool lock_capabilities_out() {
  if (::prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                                      SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED) != 0) {
    return false;
  }
  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return false;
  }
  return ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == 0;
}

bool clear_capability_sets() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  return ::syscall(SYS_capset, &header, data) == 0;
}

// The child's sequence, in order. Resource limits first, while patd's
// CAP_SYS_RESOURCE (if it has it) still lets them be raised. Credentials change last but one: dropping
// the bounding set needs CAP_SETPCAP, setgroups/setresgid need CAP_SETGID and
// setresuid CAP_SETUID, so those happen while still privileged; the
// capability sets are emptied right after; exec comes after everything.
[[noreturn]] void run_child(const ChildPlan& plan) {
  const HostSpec& spec = *plan.spec;
  if (::setsid() < 0) child_fail(plan.ready_write, "setsid");
  // fds: 0,1 -> /dev/null; 2 -> the log pipe patd reads (never patd's own
  // stderr: the owner can reach every fd of its host); 3 -> the ready pipe;
  // nothing else crosses into the owner's process. Lift them out of the way
  // first: any may sit on 0-3 already, and dup2(fd, fd) would keep its
  // close-on-exec flag.
  int ready_high = ::fcntl(plan.ready_write, F_DUPFD, 100);
  int null_high = ::fcntl(plan.dev_null, F_DUPFD, 100);
  int log_high = ::fcntl(plan.log_write, F_DUPFD, 100);
  int binary = ::fcntl(plan.host_binary, F_DUPFD_CLOEXEC, 100);
  if (ready_high < 0 || null_high < 0 || log_high < 0 || binary < 0) child_fail(plan.ready_write, "fcntl F_DUPFD");
  if (::dup2(null_high, 0) < 0 || ::dup2(null_high, 1) < 0 || ::dup2(log_high, 2) < 0) child_fail(ready_high, "dup2");
  if (::dup2(ready_high, 3) < 0) child_fail(ready_high, "dup2");
  int ready = 3;
  // Close-on-exec rather than closed: the binary's fd must live until
  // execveat, and is gone the moment it succeeds.
  if (::close_range(4, ~0U, CLOSE_RANGE_CLOEXEC) != 0) child_fail(ready, "close_range");
  if (::chdir("/") != 0) child_fail(ready, "chdir /");
  const auto& cred = spec.credentials;
  // The owner's limits (already within patd's own hard limits, see
  // ControlApi), set while still privileged.
  for (const auto& [resource, limit] : cred.rlimits) {
    if (::setrlimit(static_cast<__rlimit_resource>(resource), &limit) != 0) child_fail(ready, "setrlimit");
  }
  if (::setgroups(cred.groups.size(), cred.groups.data()) != 0) child_fail(ready, "setgroups");
  if (::setresgid(cred.gid, cred.gid, cred.gid) != 0) child_fail(ready, "setresgid");
  if (!lock_capabilities_out()) child_fail(ready, "drop capabilities");
  if (::setresuid(cred.uid, cred.uid, cred.uid) != 0) child_fail(ready, "setresuid");
  if (!clear_capability_sets()) child_fail(ready, "capset");
  // Members set no_new_privs for their seccomp filter anyway; setting it here
  // means nothing the host runs can regain privilege through a setuid file.
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) child_fail(ready, "PR_SET_NO_NEW_PRIVS");
  ::syscall(SYS_execveat, binary, "", plan.argv.data(), plan.envp.data(), AT_EMPTY_PATH);
  child_fail(ready, "execveat pat-host");
}

}  // namespace

Result<StartedHost> start_host(const HostSpec& spec) {
  ChildPlan plan;
  plan.spec = &spec;
  plan.argv_storage = {spec.host_binary, "--group", spec.group_name, "--group-dir", spec.group_dir, "--ready-fd", "3"};
  if (spec.ephemeral) plan.argv_storage.push_back("--ephemeral");
  if (spec.allow_cross_mapping) plan.argv_storage.push_back("--allow-cross-mapping");
  for (auto& arg : plan.argv_storage) plan.argv.push_back(arg.data());
  plan.argv.push_back(nullptr);
  // A fixed, minimal environment: the host needs none of patd's, and members
  // get their caller's environment with each spawn.
  static std::string path_env = std::string("PATH=") + proto::kDefaultSearchPath;
  plan.envp = {path_env.data(), nullptr};

  UniqueFd dev_null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!dev_null) return last_error("open /dev/null");
  // Opened here, as root, and executed from this fd after the child has
  // become the owner: the owner may not be able to reach the file by its
  // path (a build tree under /root, mode 0700), and needs only the execute
  // permission on the file itself (issue 13, 4). pat-host opens nothing of
  // pat's by path afterwards; /proc/PID/exe still shows that path.
  UniqueFd host_binary(::open(spec.host_binary.c_str(), O_PATH | O_CLOEXEC));
  if (!host_binary) return last_error("open " + spec.host_binary);
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return last_error("pipe2");
  UniqueFd ready_read(pipe_fds[0]), ready_write(pipe_fds[1]);
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return last_error("pipe2");
  UniqueFd log_read(pipe_fds[0]), log_write(pipe_fds[1]);
  plan.ready_write = ready_write.get();
  plan.log_write = log_write.get();
  plan.dev_null = dev_null.get();
  plan.host_binary = host_binary.get();

  pid_t pid = ::fork();
  if (pid < 0) return last_error("fork");
  if (pid == 0) run_child(plan);

  // Without its pidfd patd could neither watch nor reap the host: it would
  // run on unknown to patd, then stay a zombie (issue 13, 1.2: EMFILE here
  // under load). The pid is our unreaped child, so it cannot have been
  // reused: kill it and reap it at once.
  auto pidfd = pidfd_open(pid);
  if (!pidfd) {
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    return pidfd.error();
  }
  return StartedHost{pid, std::move(pidfd.value()), std::move(ready_read), std::move(log_read)};
}

}  // namespace pat::patd
