#include "tracer/attach/eligibility.h"

#include <linux/kcmp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "tracer/attach/fd_transfer.h"
#include "tracer/attach/process_maps.h"

namespace pat::tracer {
namespace {

std::string proc(pid_t pid, const char* what) { return "/proc/" + std::to_string(pid) + "/" + what; }

bool same_object(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

std::optional<Refusal> refuse(AttachRefusal r, pid_t pid, const std::string& what) {
  return Refusal{r, "process " + std::to_string(pid) + " " + what};
}

std::optional<Refusal> check_credentials(pid_t pid, const ProcStatus& s, const OwnerCredentials& owner) {
  for (uid_t u : s.uids) {
    if (u != owner.uid) return refuse(AttachRefusal::WrongOwner, pid, "runs as uid " + std::to_string(u) + ", not the group owner's " + std::to_string(owner.uid));
  }
  for (gid_t g : s.gids) {
    if (g != owner.gid) return refuse(AttachRefusal::WrongOwner, pid, "runs as gid " + std::to_string(g) + ", not the group owner's " + std::to_string(owner.gid));
  }
  if (s.groups != owner.groups) return refuse(AttachRefusal::WrongOwner, pid, "has other supplementary groups than the group owner");
  std::uint64_t caps = s.cap_permitted | s.cap_effective | s.cap_inheritable | s.cap_ambient;
  if (caps & ~owner.permitted_caps) {
    char hex[32];
    std::snprintf(hex, sizeof(hex), "%llx", static_cast<unsigned long long>(caps & ~owner.permitted_caps));
    return refuse(AttachRefusal::Privileged, pid, std::string("holds capabilities the group owner does not (0x") + hex + ")");
  }
  return std::nullopt;
}

// The member lives in the host's namespaces and under its root: anything
// else would change what the program sees (and changing it needs privilege).
std::optional<Refusal> check_namespaces(pid_t pid, pid_t host_pid) {
  static const char* const kNamespaces[] = {"mnt", "pid", "net", "ipc", "uts", "user", "cgroup", "time"};
  for (const char* ns : kNamespaces) {
    std::string a = proc(pid, "ns/") + ns, b = proc(host_pid, "ns/") + ns;
    if (!same_object(a, b)) return refuse(AttachRefusal::OtherNamespace, pid, std::string("is in another ") + ns + " namespace than the group");
  }
  if (!same_object(proc(pid, "root/"), proc(host_pid, "root/")))
    return refuse(AttachRefusal::OtherNamespace, pid, "has another root directory (chroot) than the group");
  return std::nullopt;
}

std::optional<Refusal> check_family(pid_t pid, const ProcStatus& s) {
  // /proc/PID/task/TID/children (proc(5)): every thread's children.
  auto threads = list_threads(pid);
  int children = 0;
  if (threads) {
    for (pid_t tid : threads.value()) {
      auto text = read_proc_file(proc(pid, "task/") + std::to_string(tid) + "/children");
      if (!text) continue;
      children += static_cast<int>(std::count(text->begin(), text->end(), ' '));
    }
  }
  if (children > 0)
    return refuse(AttachRefusal::HasChildren, pid, "has " + std::to_string(children) + " child process(es), which the member could not wait for");
  // A vfork child shares its parent's mm until it execs; a group member
  // shares its host's. kcmp(2) KCMP_VM compares the two mms.
  if (s.ppid > 0 && ::syscall(SYS_kcmp, pid, s.ppid, KCMP_VM, 0, 0) == 0)
    return refuse(AttachRefusal::AlreadyMember, pid, "shares its address space with its parent " + std::to_string(s.ppid));
  if (::syscall(SYS_kcmp, pid, ::getpid(), KCMP_VM, 0, 0) == 0)
    return refuse(AttachRefusal::AlreadyMember, pid, "is already a member of this group");
  return std::nullopt;
}

std::optional<Refusal> check_resources(pid_t pid, std::vector<ProcessMapping>* read) {
  auto fds = list_fds(pid);
  if (fds) {
    for (const auto& fd : fds.value()) {
      if (auto why = fd_refusal(fd.target)) return refuse(AttachRefusal::UnsupportedFd, pid, "has fd " + std::to_string(fd.number) + ": " + *why);
    }
  }
  auto mappings = read_process_mappings(pid);
  if (!mappings) return refuse(AttachRefusal::NotDumpable, pid, "cannot be inspected: " + mappings.error().message());
  for (const auto& m : mappings.value()) {
    if (m.cls == MappingClass::Refused) {
      char range[64];
      std::snprintf(range, sizeof(range), "%lx-%lx", static_cast<unsigned long>(m.range.start), static_cast<unsigned long>(m.range.end));
      return refuse(AttachRefusal::UnsupportedMapping, pid, std::string("maps ") + range + ": " + m.refusal_reason);
    }
  }
  if (read != nullptr) *read = std::move(mappings.value());
  if (auto timers = has_posix_timers(pid); timers && timers.value())
    return refuse(AttachRefusal::UnsupportedState, pid, "has POSIX timers (timer_create), which belong to the process");
  if (auto locks = holds_posix_locks(pid); locks && locks.value())
    return refuse(AttachRefusal::UnsupportedState, pid, "holds POSIX record locks (fcntl), which belong to the process");
  return std::nullopt;
}

}  // namespace

const char* to_string(AttachRefusal r) {
  switch (r) {
    case AttachRefusal::NotFound: return "not_found";
    case AttachRefusal::WrongOwner: return "wrong_owner";
    case AttachRefusal::Privileged: return "privileged";
    case AttachRefusal::NotDumpable: return "not_dumpable";
    case AttachRefusal::AlreadyTraced: return "already_traced";
    case AttachRefusal::InitProcess: return "init_process";
    case AttachRefusal::KernelThread: return "kernel_thread";
    case AttachRefusal::NotRunning: return "not_running";
    case AttachRefusal::AlreadyMember: return "already_member";
    case AttachRefusal::HasChildren: return "has_children";
    case AttachRefusal::OwnSeccomp: return "own_seccomp";
    case AttachRefusal::OtherNamespace: return "other_namespace";
    case AttachRefusal::UnsupportedFd: return "unsupported_fd";
    case AttachRefusal::UnsupportedMapping: return "unsupported_mapping";
    case AttachRefusal::UnsupportedState: return "unsupported_state";
    case AttachRefusal::UnsupportedLibc: return "unsupported_libc";
    case AttachRefusal::AddressConflict: return "address_conflict";
  }
  return "?";
}

OwnerCredentials OwnerCredentials::of_this_process() {
  OwnerCredentials c;
  c.uid = ::geteuid();
  c.gid = ::getegid();
  auto status = read_proc_status(::getpid());
  if (status) {
    c.groups = status->groups;
    c.permitted_caps = status->cap_permitted;
  }
  return c;
}

std::optional<Refusal> check_attachable(pid_t pid, const OwnerCredentials& owner, pid_t host_pid,
                                        std::vector<ProcessMapping>* mappings) {
  auto status = read_proc_status(pid);
  if (!status) return refuse(AttachRefusal::NotFound, pid, "does not exist");
  const ProcStatus& s = status.value();
  if (s.tgid != pid) return refuse(AttachRefusal::NotFound, pid, "is a thread of process " + std::to_string(s.tgid) + ", not a process");
  if (s.kernel_thread) return refuse(AttachRefusal::KernelThread, pid, "is a kernel thread");
  if (pid == 1 || s.ppid == 0) return refuse(AttachRefusal::InitProcess, pid, "is the init process of its namespace");
  if (s.state == 'Z' || s.state == 'X') return refuse(AttachRefusal::NotRunning, pid, "has exited (zombie)");
  if (s.state == 'T') return refuse(AttachRefusal::NotRunning, pid, "is stopped (job control); continue it first");
  if (s.tracer_pid != 0) return refuse(AttachRefusal::AlreadyTraced, pid, "is traced by process " + std::to_string(s.tracer_pid));
  if (auto r = check_credentials(pid, s, owner)) return r;
  // With the right credentials, the kernel still refuses to let us trace a
  // process that is not dumpable (kernel/ptrace.c __ptrace_may_access());
  // /proc/PID/mem asks the same question.
  if (::access(proc(pid, "mem").c_str(), R_OK) != 0)
    return refuse(AttachRefusal::NotDumpable, pid, "is not dumpable (prctl PR_SET_DUMPABLE 0, or it changed credentials)");
  if (auto r = check_family(pid, s)) return r;
  if (s.seccomp_mode != 0)
    return refuse(AttachRefusal::OwnSeccomp, pid, "runs under seccomp filters of its own; reading them (PTRACE_SECCOMP_GET_FILTER) needs CAP_SYS_ADMIN");
  auto leader = read_proc_status(pid, pid);
  if (leader && (leader->state == 'Z' || leader->state == 'X'))
    return refuse(AttachRefusal::NotRunning, pid, "has a main thread that has exited");
  if (auto r = check_namespaces(pid, host_pid)) return r;
  return check_resources(pid, mappings);
}

}  // namespace pat::tracer
