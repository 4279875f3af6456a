#include "tracer/attach/member_builder.h"

#include <fcntl.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <thread>
#include <utility>

#include "base/pidfd.h"
#include "tracer/attach/glibc_threads.h"
#include "tracer/attach/tracee_wait.h"

namespace pat::tracer {

// Each thread's restorer code runs on a scratch stack of its own, in a
// mapping unmapped once the member runs the program.
constexpr std::size_t kScratchStackBytes = 64 * 1024;

struct BuiltMember::Plan {
  RestorePlan restore;
  std::vector<ThreadRestorePlan> threads;
  std::vector<RestoredFd> fds;
  std::vector<UniqueFd> copies;  // our fds the restorer installs, numbered above the process's
  std::vector<siginfo_t> shared_pending;
  std::vector<std::vector<siginfo_t>> pending;
  UniqueFd host_end, child_end;
  void* stacks = MAP_FAILED;
  std::size_t stacks_size = 0;
  ~Plan() {
    if (stacks != MAP_FAILED) ::munmap(stacks, stacks_size);
  }
};

BuiltMember::BuiltMember() = default;
// A moved-from member owns nothing: it must not kill or wait for anyone.
BuiltMember::BuiltMember(BuiltMember&& o) noexcept
    : pid_(std::exchange(o.pid_, 0)),
      pidfd_(std::move(o.pidfd_)),
      listener_(std::move(o.listener_)),
      tids_(std::move(o.tids_)),
      plan_(std::move(o.plan_)),
      seized_(std::move(o.seized_)),
      released_(std::exchange(o.released_, true)) {
  o.seized_.reset();
}
BuiltMember::~BuiltMember() { discard(); }

namespace {

// Raises our soft RLIMIT_NOFILE (to at most the hard limit) when the copies
// must be numbered higher than it allows.
void make_room_for_fds(int highest) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur > static_cast<rlim_t>(highest)) return;
  limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, static_cast<rlim_t>(highest) + 64);
  ::setrlimit(RLIMIT_NOFILE, &limit);
}

}  // namespace

std::variant<BuiltMember, std::string> build_member(const std::vector<CapturedThread>& threads, const CapturedProcess& process,
                                                    const SeccompProgram& seccomp, Deadline deadline) {
  BuiltMember member;
  member.plan_ = std::make_unique<BuiltMember::Plan>();
  BuiltMember::Plan& plan = *member.plan_;
  RestorePlan& r = plan.restore;
  r.host_pid = ::getpid();

  // fds: our copies numbered above every fd of the process, so the
  // restorer's dup3 onto the process's numbers never hits a copy.
  int highest = -1;
  for (const auto& fd : process.fds) highest = std::max(highest, fd.number);
  make_room_for_fds(2 * (highest + 1) + 8);
  const int above = highest + 1;
  for (const auto& fd : process.fds) {
    UniqueFd copy(::fcntl(fd.copy.get(), F_DUPFD_CLOEXEC, above));
    if (!copy) return std::string("numbering fd copies: ") + std::strerror(errno);
    plan.fds.push_back(RestoredFd{copy.get(), fd.number, fd.cloexec});
    plan.copies.push_back(std::move(copy));
  }
  UniqueFd cwd(::fcntl(process.cwd.get(), F_DUPFD_CLOEXEC, above));
  int pair[2];
  if (!cwd || ::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) return std::string("hand-over socket: ") + std::strerror(errno);
  plan.host_end.reset(pair[0]);
  UniqueFd child_low(pair[1]);
  // The hand-over socket above everything the restorer installs or closes.
  int top = above;
  for (const auto& c : plan.copies) top = std::max(top, c.get() + 1);
  top = std::max(top, cwd.get() + 1);
  plan.child_end.reset(::fcntl(child_low.get(), F_DUPFD_CLOEXEC, top));
  if (!plan.child_end) return std::string("hand-over socket: ") + std::strerror(errno);
  r.fds = plan.fds.data();
  r.fd_count = static_cast<int>(plan.fds.size());
  r.cwd_fd = cwd.get();
  plan.copies.push_back(std::move(cwd));
  r.handover_fd = plan.child_end.get();

  r.umask = process.umask;
  r.rlimit_count = static_cast<int>(process.rlimits.size());
  for (std::size_t i = 0; i < process.rlimits.size(); ++i) r.rlimits[i] = {process.rlimits[i].first, process.rlimits[i].second};
  r.personality = process.personality;
  std::copy(process.actions.begin(), process.actions.end(), r.actions);
  r.timer_count = static_cast<int>(process.timers.size());
  for (std::size_t i = 0; i < process.timers.size(); ++i) r.timers[i] = {process.timers[i].first, process.timers[i].second};
  plan.shared_pending = process.shared_pending;
  r.shared_pending = plan.shared_pending.data();
  r.shared_pending_count = static_cast<int>(plan.shared_pending.size());
  r.filter = seccomp.fprog();
  // As launched members: WAIT_KILLABLE_RECV keeps a rerouted brk from
  // returning -EINTR (tracer/member_launcher.cc).
  r.seccomp_flags = SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;

  plan.stacks_size = kScratchStackBytes * threads.size();
  plan.stacks = ::mmap(nullptr, plan.stacks_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (plan.stacks == MAP_FAILED) return std::string("scratch stacks: ") + std::strerror(errno);
  plan.threads.resize(threads.size());
  plan.pending.resize(threads.size());
  for (std::size_t i = 0; i < threads.size(); ++i) {
    const CapturedThread& c = threads[i];
    ThreadRestorePlan& t = plan.threads[i];
    std::snprintf(t.comm, sizeof(t.comm), "%s", c.comm.c_str());
    t.has_altstack = c.has_altstack;
    t.altstack = c.altstack;
    t.robust_head = c.robust_head;
    t.robust_len = c.robust_len;
    t.rseq_address = c.rseq_address;
    t.rseq_length = c.rseq_length;
    t.rseq_signature = c.rseq_signature;
    t.clear_child_tid = c.clear_child_tid;
    plan.pending[i] = c.pending;
    t.pending = plan.pending[i].data();
    t.pending_count = static_cast<int>(plan.pending[i].size());
    t.stack_top = (reinterpret_cast<std::uintptr_t>(plan.stacks) + (i + 1) * kScratchStackBytes) & ~std::uintptr_t{15};
  }
  r.threads = plan.threads.data();
  r.thread_count = static_cast<int>(plan.threads.size());
  r.handover.prepare();

  auto started = start_member_restorer(r);
  if (!started) return started.error().message();
  member.pid_ = started->pid;
  member.pidfd_ = std::move(started->pidfd);
  plan.child_end.reset();  // ours must go, or the restorer's death would not reach us as EOF
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  auto handover = await_restorer(plan.host_end.get(), r, std::max(left, std::chrono::milliseconds(1)));
  if (auto* reason = std::get_if<std::string>(&handover)) return *reason;  // the destructor kills and reaps
  member.listener_ = std::move(std::get<UniqueFd>(handover));
  // The leader reports, then closes its copies of the listener and the
  // socket, then parks: wait for that, so that the registers it is given
  // next do not cut those closes short.
  while (__atomic_load_n(&plan.threads[0].state, __ATOMIC_ACQUIRE) != 1) {
    if (std::chrono::steady_clock::now() >= deadline) return std::string("the new member did not park");
    std::this_thread::yield();
  }
  for (const auto& t : plan.threads) member.tids_.push_back(t.tid);
  return member;
}

Status BuiltMember::load_registers(const std::vector<CapturedThread>& threads, std::optional<std::uint32_t> tid_offset, Deadline deadline) {
  auto seized = SeizedProcess::seize(pid_, deadline);
  if (!seized) return seized.error();
  seized_.emplace(std::move(seized.value()));
  for (std::size_t i = 0; i < threads.size(); ++i) {
    const CapturedThread& old = threads[i];
    const pid_t now = tids_[i];
    if (auto s = load_thread(now, old); !s) return s;
    if (tid_offset && old.regs.fs_base != 0) {
      if (auto s = update_cached_tid(pid_, old.regs.fs_base, *tid_offset, old.tid, now); !s) return s;
    }
    if (auto owners = update_robust_owners(pid_, old.robust_head, old.tid, now); !owners) return owners.error();
    // Best effort: a higher priority than ours needs CAP_SYS_NICE.
    cpu_set_t cpus;
    if (::sched_getaffinity(old.tid, sizeof(cpus), &cpus) == 0) ::sched_setaffinity(now, sizeof(cpus), &cpus);
    errno = 0;
    int nice = ::getpriority(PRIO_PROCESS, static_cast<id_t>(old.tid));
    if (errno == 0) ::setpriority(PRIO_PROCESS, static_cast<id_t>(now), nice);
  }
  return ok_status();
}

void BuiltMember::release() {
  if (released_) return;
  released_ = true;
  if (seized_) seized_->detach_all();
  seized_.reset();
  plan_.reset();  // the scratch stacks: no thread runs on them any more
}

void BuiltMember::discard() {
  if (released_ || pid_ == 0) return;
  released_ = true;
  if (pidfd_) (void)pidfd_signal(pidfd_.get(), SIGKILL);
  // Traced threads are reaped by detach_all's waits; the leader, our child,
  // by the parent's wait (ECHILD if the tracer's wait took it already).
  seized_.reset();
  reap_killed_child(pid_);
  plan_.reset();
}

}  // namespace pat::tracer
