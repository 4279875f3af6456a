#include "tracer/member_syscalls.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cassert>
#include <chrono>
#include <cerrno>
#include <cstring>

#include "tracer/address_space.h"
#include "tracer/core_file.h"
#include "tracer/kernel_abi.h"
#include "tracer/remote_memory.h"

namespace pat::tracer {
namespace {

// SECCOMP_IOCTL_NOTIF_RECV copies the kernel's struct seccomp_notif, which may
// be larger than the one in our headers (seccomp_unotify(2): ask with
// SECCOMP_GET_NOTIF_SIZES). We receive into room to spare and check once.
struct NotifBuffer {
  seccomp_notif notif;
  char spare[256];
};

void check_notif_sizes() {
  static const bool checked = [] {
    seccomp_notif_sizes sizes{};
    [[maybe_unused]] long rc = ::syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes);
    assert(rc == 0 && sizes.seccomp_notif <= sizeof(NotifBuffer) && sizes.seccomp_notif_resp == sizeof(seccomp_notif_resp));
    return true;
  }();
  (void)checked;
}

// A syscall argument that the kernel reads as an int (a dirfd, a size).
int int_arg(std::uint64_t raw) { return static_cast<int>(static_cast<std::uint32_t>(raw)); }

bool names_own_exe(const std::string& path, pid_t member) {
  return path == "/proc/self/exe" || path == "/proc/thread-self/exe" || path == "/proc/" + std::to_string(member) + "/exe";
}

// Where the member's path argument points, as a path the host can open: the
// member's cwd or dirfd seen through /proc (proc(5): /proc/PID/cwd, /proc/PID/fd/N).
std::string path_as_seen_by(pid_t pid, int dirfd, const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  std::string base = "/proc/" + std::to_string(pid) + (dirfd == AT_FDCWD ? "/cwd" : "/fd/" + std::to_string(dirfd));
  return path.empty() ? base : base + "/" + path;
}

}  // namespace

const char* to_string(Outcome outcome) {
  switch (outcome) {
    case Outcome::Handled: return "handled";
    case Outcome::ListenerGone: return "listener_gone";
    case Outcome::ExecStarted: return "exec_started";
  }
  return "?";
}

MemberSyscalls::MemberSyscalls(const LaunchedMember& member, SharedAddressSpace& space, OwnerId owner,
                               std::mutex& group_lock, RerouteStats& stats,
                               std::optional<std::uint32_t> outside_core_filter)
    : pid_(member.pid),
      listener_(member.listener.get()),
      pidfd_(member.pidfd.get()),
      space_(space),
      owner_(owner),
      group_lock_(group_lock),
      stats_(stats),
      exe_path_(member.exe_path),
      host_exe_(executable_of(::getpid())),
      brk_(member.brk.reservation, member.brk.data_limit, member.brk.data_size, member.brk.initial_break),
      cwd_(member.cwd ? ::fcntl(member.cwd.get(), F_DUPFD_CLOEXEC, 0) : -1),
      outside_core_filter_(outside_core_filter) {
  check_notif_sizes();
}

Outcome MemberSyscalls::handle_one() {
  // RECV blocks when nothing is pending, so look first.
  pollfd pfd{listener_, POLLIN, 0};
  if (::poll(&pfd, 1, 0) <= 0) return Outcome::Handled;
  if (!(pfd.revents & POLLIN)) return (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)) ? Outcome::ListenerGone : Outcome::Handled;

  NotifBuffer buffer;
  std::memset(&buffer, 0, sizeof(buffer));  // the kernel refuses a RECV buffer that is not zeroed
  if (::ioctl(listener_, SECCOMP_IOCTL_NOTIF_RECV, &buffer.notif) != 0) {
    // ENOENT: the task was interrupted or died between notifying and now. Normal.
    return Outcome::Handled;
  }
  const auto received = std::chrono::steady_clock::now();
  Outcome outcome = Outcome::Handled;
  {
    std::unique_lock lock(group_lock_, std::defer_lock);
    if (needs_group_lock(buffer.notif.data.nr)) lock.lock();
    Reply reply = decide(buffer.notif, outcome);
    // Undone under the same lock: nobody may have seen or changed what it made.
    if (!send(buffer.notif, reply)) space_.undo(reply);
  }
  stats_.record(buffer.notif.data.nr, std::chrono::steady_clock::now() - received);
  return outcome;
}

bool MemberSyscalls::needs_group_lock(long nr) {
  return SharedAddressSpace::is_mapping_call(nr) || nr == SYS_prctl || nr == SYS_brk;
}

// Tasks that inherited the filter but live in another mm (fork children of a
// member, and what they exec) get their real syscall. The member itself is
// known to be here until it calls execve; anyone else is asked with kcmp.
bool MemberSyscalls::in_my_address_space(pid_t task) {
  if (task == pid_ && !exec_pending_) return true;
  bool shares = shares_my_address_space(task);
  if (task == pid_ && shares) exec_pending_ = false;  // its exec failed: it is still one of us
  return shares;
}

// A fork child of the member that has not exec'd lives in a copy of our mm,
// whose executable the kernel reports as the host's: for it, too, the
// member's program is the right answer to /proc/self/exe.
bool MemberSyscalls::runs_host_image(pid_t task) const { return host_exe_ && executable_of(task) == host_exe_; }

// seccomp_unotify(2): the task may have died and its pid been reused since
// RECV; whatever we read or decided about it is only good if the
// notification is still alive.
bool MemberSyscalls::still_valid(const seccomp_notif& notif) const {
  std::uint64_t id = notif.id;
  return ::ioctl(listener_, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

MemberSyscalls::Reply MemberSyscalls::decide(const seccomp_notif& notif, Outcome& outcome) {
  const pid_t task = static_cast<pid_t>(notif.pid);
  const bool readlink = notif.data.nr == SYS_readlink || notif.data.nr == SYS_readlinkat;
  if (!in_my_address_space(task)) {
    restore_core_filter_once(task);
    return readlink && runs_host_image(task) ? handle_readlink(notif) : Reply{};
  }
  // Calls with effects check first that the task still waits for them.
  if (SharedAddressSpace::is_mapping_call(notif.data.nr)) {
    if (!still_valid(notif)) return Reply{};
    return space_.handle_mapping_call(notif.data, task, owner_, pidfd_);
  }
  switch (notif.data.nr) {
    case SYS_prctl:  // only PAT_HOSTCALL reaches us (seccomp_program.cc)
      if (!still_valid(notif)) return Reply{};
      return space_.handle_hostcall(notif.data, owner_);
    case SYS_brk:
      if (!still_valid(notif)) return Reply{};
      return Reply{Reply::Kind::Value, static_cast<long>(brk_.brk(notif.data.args[0]))};
    case SYS_execve:
    case SYS_execveat: return handle_exec(notif, outcome);
    case SYS_readlink:
    case SYS_readlinkat: return handle_readlink(notif);
    case SYS_chdir:
    case SYS_fchdir: return handle_chdir(notif);
    default: return Reply{};  // not ours: the filter and this switch disagree
  }
}

// The exec itself always runs (CONTINUE). What matters is who leaves: the
// member's own thread group takes the member out of the mm; a vfork or
// posix_spawn child (CLONE_VM, its own thread group) takes nothing with it.
// A member's shell trying execve along PATH fails with ENOENT over and over,
// so the path is checked first: only an exec that can find its file counts.
MemberSyscalls::Reply MemberSyscalls::handle_exec(const seccomp_notif& notif, Outcome& outcome) {
  const pid_t task = static_cast<pid_t>(notif.pid);
  std::optional<pid_t> group = task == pid_ ? std::optional<pid_t>(pid_) : thread_group_of(task);
  if (group != pid_) return Reply{};
  bool at = notif.data.nr == SYS_execveat;
  auto path = read_remote_string(task, RemoteAddress{notif.data.args[at ? 1 : 0]}, kernel::kPathMax);
  if (!path || !still_valid(notif)) return Reply{};
  int dirfd = at ? int_arg(notif.data.args[0]) : AT_FDCWD;
  std::string target = path_as_seen_by(task, dirfd, path.value());
  struct stat st;
  bool runnable = ::stat(target.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
                  ::faccessat(AT_FDCWD, target.c_str(), X_OK, AT_EACCESS) == 0;
  if (!runnable) return Reply{};  // the exec will fail; the member stays
  exec_pending_ = true;
  outcome = Outcome::ExecStarted;
  return Reply{};
}

// /proc/self/exe is per mm, so the kernel would answer with the host's
// program; glibc resolves $ORIGIN and programs find their own files through
// it. We answer for the forms that name the member itself; see the holes in
// tracer/README.md.
MemberSyscalls::Reply MemberSyscalls::handle_readlink(const seccomp_notif& notif) {
  const pid_t task = static_cast<pid_t>(notif.pid);
  bool at = notif.data.nr == SYS_readlinkat;
  if (at && int_arg(notif.data.args[0]) != AT_FDCWD) return Reply{};
  auto path = read_remote_string(task, RemoteAddress{notif.data.args[at ? 1 : 0]}, kernel::kPathMax);
  if (!path || !names_own_exe(path.value(), pid_)) return Reply{};  // unreadable: the kernel reports EFAULT itself
  int bufsiz = int_arg(notif.data.args[at ? 3 : 2]);
  if (bufsiz <= 0) return Reply{Reply::Kind::Error, EINVAL};  // fs/stat.c do_readlinkat()
  if (!still_valid(notif)) return Reply{};
  // readlink(2): no NUL, silently truncated to bufsiz.
  std::string_view answer(exe_path_);
  answer = answer.substr(0, static_cast<std::size_t>(bufsiz));
  if (!write_remote(task, RemoteAddress{notif.data.args[at ? 2 : 1]}, answer)) return Reply{Reply::Kind::Error, EFAULT};
  return Reply{Reply::Kind::Value, static_cast<long>(answer.size())};
}

// The call itself always runs (CONTINUE); the host only follows it. It opens
// the directory the call names the way the member sees it (through
// /proc/TASK/cwd or the member's own fd) and keeps it if the kernel will
// accept it: a directory the caller may search (fs/open.c, chdir(2): X on
// the directory; the member has the host's credentials). Only the member's
// own threads count: a vfork or posix_spawn child has a cwd of its own.
MemberSyscalls::Reply MemberSyscalls::handle_chdir(const seccomp_notif& notif) {
  const pid_t task = static_cast<pid_t>(notif.pid);
  if ((task == pid_ ? std::optional<pid_t>(pid_) : thread_group_of(task)) != pid_) return Reply{};
  std::string where;
  if (notif.data.nr == SYS_chdir) {
    auto path = read_remote_string(task, RemoteAddress{notif.data.args[0]}, kernel::kPathMax);
    if (!path || path.value().empty()) return Reply{};  // the kernel fails it: EFAULT, ENOENT
    where = path_as_seen_by(task, AT_FDCWD, path.value());
  } else {
    where = "/proc/" + std::to_string(task) + "/fd/" + std::to_string(int_arg(notif.data.args[0]));
  }
  UniqueFd directory(::open(where.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (directory && ::faccessat(directory.get(), "", X_OK, AT_EMPTY_PATH | AT_EACCESS) == 0 && still_valid(notif)) {
    cwd_ = std::move(directory);
  }
  return Reply{};
}

// A task outside the group's address space that still uses the member's
// filter (a fork child, or the member after exec) inherited the group's
// coredump_filter of 0 (it is copied by fork and kept by execve): it gets
// the filter back at its first rerouted call, so its own cores hold memory.
void MemberSyscalls::restore_core_filter_once(pid_t task) {
  if (!outside_core_filter_ || !filter_restored_.insert(task).second) return;
  auto group = thread_group_of(task);
  if (group && *group != task) filter_restored_.insert(*group);
  restore_core_filter(group.value_or(task), *outside_core_filter_);
}

bool MemberSyscalls::send(const seccomp_notif& notif, const Reply& reply) const {
  seccomp_notif_resp resp{};
  resp.id = notif.id;
  switch (reply.kind) {
    case Reply::Kind::Value: resp.val = reply.value; break;
    case Reply::Kind::Error: resp.error = static_cast<std::int32_t>(-reply.value); break;
    case Reply::Kind::Continue: resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE; break;
  }
  // ENOENT: the task went away (or was interrupted) before the reply. Normal.
  return ::ioctl(listener_, SECCOMP_IOCTL_NOTIF_SEND, &resp) == 0;
}

}  // namespace pat::tracer
