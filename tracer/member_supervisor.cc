#include "tracer/member_supervisor.h"

#include "base/log.h"
#include "base/pidfd.h"
#include "tracer/address_space.h"
#include "tracer/proc_stats.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>

namespace pat::tracer {

namespace {

using Clock = std::chrono::steady_clock;

// epoll tokens: a pidfd is known by its process's pid (unique among children
// not yet reaped); these two are not pids.
constexpr std::uint64_t kExecTimerToken = ~std::uint64_t{0};
constexpr std::uint64_t kServerEventsToken = ~std::uint64_t{0} - 1;
constexpr std::uint64_t kChildSignalToken = ~std::uint64_t{0} - 3;

// How long end_members() waits for a stub or keeper sent SIGKILL.
constexpr std::chrono::seconds kStubEndTimeout{2};
constexpr std::uint64_t kCoresWrittenToken = ~std::uint64_t{0} - 2;

// Members with at most this much resident memory get their core written on
// the supervising thread: a few milliseconds, less than two thread hand-offs
// cost on a loaded machine. Bigger ones get a writer thread.
constexpr std::size_t kInlineCoreBytes = std::size_t{32} << 20;

// A successful exec completes in well under a millisecond; a failed one
// returns to the member, which carries on in the address space.
constexpr std::chrono::microseconds kFirstExecBackoff{200};
constexpr std::chrono::microseconds kLongestExecBackoff{100'000};
constexpr std::chrono::seconds kExecGiveUp{5};

[[noreturn]] void fail_loudly(const char* what) {
  spdlog::critical("event=supervisor.{}_failed error={}", what, log_quote(std::strerror(errno)));
  std::abort();
}

// The one waitid of a member process. WNOHANG: called when its pidfd is
// readable, i.e. it has exited, so this never waits. nullopt: not ended yet.
std::optional<Result<proto::ExitStatus>> wait_for_end(int pidfd, int flags) {
  siginfo_t info{};
  int rc;
  do rc = ::waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED | flags);
  while (rc != 0 && errno == EINTR);
  if (rc != 0) return Result<proto::ExitStatus>(last_error("waitid"));
  auto status = proto::ExitStatus::from_siginfo(info);
  if (!status) return std::nullopt;
  return Result<proto::ExitStatus>(*status);
}

// The member's job-control stop or continue, which its stub mirrors; never
// its exit (reap() takes that through the pidfd). nullopt: nothing new.
std::optional<WaitStatus> job_control_change(int pidfd) {
  siginfo_t info{};
  if (::waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WSTOPPED | WCONTINUED | WNOHANG) != 0 || info.si_pid == 0)
    return std::nullopt;
  if (info.si_code == CLD_STOPPED) return JobStop{info.si_status};
  if (info.si_code == CLD_CONTINUED) return Continued{};
  return std::nullopt;
}

WaitStatus as_wait_status(const Result<proto::ExitStatus>& end) {
  if (!end.ok()) return Killed{SIGKILL};  // gone, how unknown: the stub ends as killed
  if (end.value().is_exit()) return Exited{end.value().exit_code()};
  return Killed{end.value().signal()};
}

// Waits until a member launched with LaunchSpec::stopped has stopped itself
// before its first instruction, or has died, so that a tracer can attach as
// soon as its pid is known. WNOWAIT: the report stays for the reaping.
void wait_until_stopped(int pidfd) {
  siginfo_t info;
  while (::waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WSTOPPED | WEXITED | WNOWAIT) != 0 && errno == EINTR) {
  }
}

// Whether the process behind `pidfd` has exited (and waits to be reaped).
bool has_exited(int pidfd) {
  pollfd pfd{pidfd, POLLIN, 0};
  return ::poll(&pfd, 1, 0) == 1;
}

}  // namespace

MemberSupervisor::MemberSupervisor(bool allow_cross_mapping, MemberObserver& observer, MemberCores cores)
    : observer_(observer),
      space_(allow_cross_mapping),
      epoll_(::epoll_create1(EPOLL_CLOEXEC)),
      exec_timer_(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)),
      cores_written_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      servers_() {
  if (!epoll_) fail_loudly("epoll_create");
  if (!exec_timer_) fail_loudly("timerfd_create");
  if (!cores_written_) fail_loudly("eventfd");
  watch(exec_timer_.get(), kExecTimerToken);
  watch(servers_.event_fd(), kServerEventsToken);
  // SIGCHLD blocked here, in the supervising thread, before the server
  // threads exist (they inherit the mask): while any thread left it
  // unblocked with the default action, the kernel could discard it there
  // and the signalfd would miss a stub's stop.
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  ::pthread_sigmask(SIG_BLOCK, &chld, nullptr);
  child_signals_.reset(::signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!child_signals_) fail_loudly("signalfd");
  watch(child_signals_.get(), kChildSignalToken);
  watch(cores_written_.get(), kCoresWrittenToken);
  // The group's address space dumps no memory: each member's core is
  // completed from the kernel's (tracer/core_file.h).
  if (cores == MemberCores::PerMember)
    member_core_filter_ = exclude_memory_from_kernel_cores().value_or(dump_filter::kDefault);
}

std::optional<pid_t> SupervisedMember::original_pid() const {
  if (!stub_) return std::nullopt;
  return stub_->stub();
}

SupervisedMember::SupervisedMember(AttachedMember attached)
    : launched_(std::move(attached.member)), stub_(std::move(attached.stub)), attach_stats_(attached.stats) {}

MemberSupervisor::~MemberSupervisor() { end_members(); }

// Ending them here also keeps a test process that drops its supervisor free
// of zombies.
void MemberSupervisor::end_members() {
  join_core_writers();
  for (auto& [pid, member] : members_) (void)pidfd_signal(member->launched_.pidfd.get(), SIGKILL);
  for (auto& [pid, member] : members_) {
    auto end = wait_for_end(member->launched_.pidfd.get(), 0);
    member->end_ = end ? std::move(*end) : Result<proto::ExitStatus>(SysError{ECHILD, "waitid"});
    member->state_ = SupervisedMember::State::Exited;
    unwatch(member->launched_.pidfd.get());
  }
  members_.clear();
  for (auto& [pid, pidfd] : unborn_) {
    (void)wait_for_end(pidfd.get(), 0);
    unwatch(pidfd.get());
  }
  unborn_.clear();
  end_stubs();
}

// The stubs go with their members (their parents see SIGKILL, as when the
// host dies), and the keepers of old address spaces; both are our tracees.
void MemberSupervisor::end_stubs() {
  auto end = [](pid_t tid) {
    ::kill(tid, SIGKILL);
    const Deadline deadline = Clock::now() + kStubEndTimeout;
    for (;;) {
      auto got = wait_for_tracee(tid, deadline);
      if (!got || !got.value() || is_gone(*got.value())) return;
    }
  };
  for (auto& [pid, member] : stubs_) {
    if (!member->stub_->stub_gone()) end(member->stub_->stub());
    if (member->stub_->keeper() != 0) end(member->stub_->keeper());
  }
  stubs_.clear();
}

void MemberSupervisor::watch(int fd, std::uint64_t token) {
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = token;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &event) != 0) fail_loudly("epoll_ctl");
}

void MemberSupervisor::unwatch(int fd) { ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr); }

MemberSupervisor::LaunchResult MemberSupervisor::launch(
    const LaunchSpec& spec, const std::function<void(const SupervisedMember&)>& before_serving) {
  std::optional<UnbornChild> unborn;
  auto launched = launcher_.launch(spec, unborn);
  if (unborn) {
    watch(unborn->pidfd.get(), static_cast<std::uint64_t>(unborn->pid));
    unborn_.emplace(unborn->pid, std::move(unborn->pidfd));
  }
  if (auto* error = std::get_if<LaunchError>(&launched)) return *error;
  if (spec.stopped) wait_until_stopped(std::get<LaunchedMember>(launched).pidfd.get());

  auto member = std::make_shared<SupervisedMember>(std::move(std::get<LaunchedMember>(launched)));
  start_supervising(member, before_serving);
  return member;
}

MemberSupervisor::AttachResult MemberSupervisor::attach(
    Attacher& attacher, pid_t pid, const std::function<void(const SupervisedMember&)>& before_serving) {
  // An AddressConflict names the member holding the range.
  attacher.options().owner_of = [this](Range range) -> std::optional<pid_t> {
    std::lock_guard lock(group_lock_);
    for (const auto& segment : space_.ledger().segments_in(range)) {
      for (const auto& [member_pid, member] : members_) {
        if (member->syscalls_->owner() == segment.owner) return member_pid;
      }
      return 0;  // the host's, or a member gone meanwhile
    }
    return std::nullopt;
  };
  auto attached = attacher.attach(pid);
  attacher.options().owner_of = nullptr;
  if (auto* error = std::get_if<AttachError>(&attached)) return *error;
  auto member = std::make_shared<SupervisedMember>(std::move(std::get<AttachedMember>(attached)));
  start_supervising(member, before_serving);
  stubs_.emplace(pid, member);
  follow_stubs();  // what the stub and keeper did during the attach
  return member;
}

void MemberSupervisor::start_supervising(const std::shared_ptr<SupervisedMember>& member,
                                         const std::function<void(const SupervisedMember&)>& before_serving) {
  OwnerId owner = with_space([&](SharedAddressSpace& space) {
    return space.add_member(member->pid(), *member->launched_.layout);
  });
  member->syscalls_ =
      std::make_unique<MemberSyscalls>(member->launched_, space_, owner, group_lock_, reroute_stats_,
                                       member_core_filter_);
  // Its first rerouted syscall waits for its server, which starts only below.
  if (before_serving) before_serving(*member);
  members_.emplace(member->pid(), member);
  watch(member->launched_.pidfd.get(), static_cast<std::uint64_t>(member->pid()));
  member->server_ = servers_.serve(*member->syscalls_);
  serving_.emplace(member->server_, member);
}

void MemberSupervisor::dispatch() {
  epoll_event events[64];
  int ready = ::epoll_wait(epoll_.get(), events, 64, 0);
  for (int i = 0; i < ready; ++i) {
    const std::uint64_t token = events[i].data.u64;
    if (token == kExecTimerToken) {
      std::uint64_t expirations;
      (void)!::read(exec_timer_.get(), &expirations, sizeof(expirations));
      look_for_execs();
    } else if (token == kServerEventsToken) {
      take_server_events();
    } else if (token == kChildSignalToken) {
      signalfd_siginfo info;
      while (::read(child_signals_.get(), &info, sizeof(info)) > 0) {
      }
    } else if (token == kCoresWrittenToken) {
      take_written_cores();
    } else if (unborn_.contains(static_cast<pid_t>(token))) {
      reap_unborn(static_cast<pid_t>(token));
    } else {
      reap(static_cast<pid_t>(token));
    }
  }
  // Cheap (a few WNOHANG waits), and it also covers a SIGCHLD merged with
  // another into one.
  if (!stubs_.empty()) follow_stubs();
}

// Every status of every stub, keeper, and attached member's job control,
// handed to its StubSupervisor. Never blocks.
void MemberSupervisor::follow_stubs() {
  for (auto it = stubs_.begin(); it != stubs_.end();) {
    SupervisedMember& member = *it->second;
    StubSupervisor& stub = *member.stub_;
    if (member.alive()) {
      while (auto change = job_control_change(member.launched_.pidfd.get())) stub.on_member_status(*change);
    }
    while (stub.keeper() != 0) {
      auto got = poll_tracee(stub.keeper());
      if (got && !got.value()) break;
      stub.on_keeper_status(got ? *got.value() : WaitStatus{Killed{SIGKILL}});  // not ours any more: gone
    }
    while (!stub.stub_gone()) {
      auto got = poll_tracee(stub.stub());
      if (got && !got.value()) break;
      if (!got) spdlog::warn("event=attach.stub_lost pid={} error={}", stub.stub(), log_quote(got.error().message()));
      stub.on_stub_status(got ? *got.value() : WaitStatus{Killed{SIGKILL}});
    }
    if (stub.stub_gone() && stub.keeper() == 0 && !member.alive()) it = stubs_.erase(it);
    else ++it;
  }
}

std::shared_ptr<SupervisedMember> MemberSupervisor::find_attached(pid_t original_pid) const {
  auto it = stubs_.find(original_pid);
  return it == stubs_.end() || !it->second->alive() ? nullptr : it->second;
}

std::shared_ptr<SupervisedMember> MemberSupervisor::find(pid_t pid) const {
  auto it = members_.find(pid);
  return it == members_.end() ? nullptr : it->second;
}

bool MemberSupervisor::idle() const {
  return members_.empty() && serving_.empty() && unborn_.empty() && stubs_.empty();
}

Status MemberSupervisor::signal(const SupervisedMember& member, int signal) const {
  return pidfd_signal(member.launched_.pidfd.get(), signal);
}

void MemberSupervisor::signal_process_group(const SupervisedMember& member, int signal) const {
  (void)pidfd_signal(member.launched_.pidfd.get(), signal);
  ::kill(-member.pid(), signal);
}

// Every rerouted mapping call and brk of every member waits for the group
// lock, so the slow part, mincore over all the member's pages, runs outside
// it on a copy of the ranges (issue 9: bench/group_lock.py measures it).
MemberFootprint MemberSupervisor::footprint(const SupervisedMember& member) const {
  std::vector<Range> ranges;
  {
    std::lock_guard lock(group_lock_);
    const auto& brk = member.syscalls_->brk();
    ranges = space_.owned_ranges(member.syscalls_->owner(), Range{brk.start(), brk.current()});
  }
  return measure_footprint(ranges);
}

Range MemberSupervisor::brk_in_use(const SupervisedMember& member) const {
  std::lock_guard lock(group_lock_);
  const auto& brk = member.syscalls_->brk();
  return Range{brk.start(), brk.current()};
}

void MemberSupervisor::reap(pid_t pid) {
  auto it = members_.find(pid);
  if (it == members_.end()) return;
  auto member = it->second;
  const int pidfd = member->launched_.pidfd.get();
  // The peek: a member that dumped core gets its own core first, while it
  // is a zombie whose pid, RLIMIT_CORE and memory still stand.
  if (member_core_filter_ && !member->core_) {
    auto peek = wait_for_end(pidfd, WNOHANG | WNOWAIT);
    if (!peek) return;  // readable but not reapable yet: epoll says so again
    if (peek->ok() && peek->value().core() && begin_core(*member, peek->value().signal())) return;
  }
  auto end = wait_for_end(pidfd, WNOHANG);
  if (!end) return;
  if (!end->ok()) {
    spdlog::error("event=member.wait_failed pid={} error={}", pid, log_quote(end->error().message()));
  } else if (member->core_ && end->value().core()) {
    end->value().complete_core(*member->core_);
  }
  member->end_ = std::move(*end);
  member->state_ = SupervisedMember::State::Exited;
  unwatch(member->launched_.pidfd.get());
  members_.erase(it);
  reclaim(*member);
  // The stub ends the same way, for the original process's parent.
  if (member->stub_) member->stub_->on_member_status(as_wait_status(member->end_.value()));
  observer_.member_exited(*member);
  arm_exec_timer();  // it may have been the one the timer was set for
}

// The member's core is written here (small) or on a writer thread (false:
// reaping waits for it, and the pidfd is not watched meanwhile).
bool MemberSupervisor::begin_core(SupervisedMember& member, int signal) {
  MemberCoreSource source = core_source(member, signal);
  const auto started = Clock::now();
  if (footprint(member).resident_bytes <= kInlineCoreBytes) {
    auto core = complete_member_core(source);
    finish_core(member, core, std::chrono::duration<double>(Clock::now() - started).count());
    return false;
  }
  unwatch(member.launched_.pidfd.get());
  auto writer = std::make_unique<CoreWriter>();
  CoreWriter* job = writer.get();
  const int written = cores_written_.get();
  writer->thread = std::thread([job, written, started, source = std::move(source)] {
    job->core = complete_member_core(source);
    job->seconds = std::chrono::duration<double>(Clock::now() - started).count();
    job->done.store(true, std::memory_order_release);
    const std::uint64_t one = 1;
    (void)!::write(written, &one, sizeof(one));
  });
  core_writers_.emplace(member.pid(), std::move(writer));
  return true;
}

// What the core writer needs of a zombie member; the ledger and its cwd
// (which its syscall server follows) under the group lock.
MemberCoreSource MemberSupervisor::core_source(const SupervisedMember& member, int signal) const {
  MemberCoreSource source;
  source.pid = member.pid();
  source.program = member.launched_.exe_path;
  source.argv = member.launched_.argv;
  source.auxv = member.launched_.auxv;
  source.filter = *member_core_filter_;
  source.signal = signal;
  source.comm = read_comm(member.pid());
  struct rlimit limit {};
  if (::prlimit(member.pid(), RLIMIT_CORE, nullptr, &limit) == 0) source.limit = limit.rlim_cur;
  std::lock_guard lock(group_lock_);
  source.cwd.reset(::fcntl(member.syscalls_->cwd(), F_DUPFD_CLOEXEC, 0));
  for (const auto& segment : space_.ledger().segments_of(member.syscalls_->owner())) source.owned.push_back(segment.range);
  return source;
}

void MemberSupervisor::finish_core(SupervisedMember& member, const Result<MemberCore>& core, double seconds) {
  proto::CoreDump dump;
  if (core.ok()) {
    dump.file = core.value().path;
    dump.truncated = core.value().truncated;
  } else {
    dump.error = core.error().message();
  }
  member.core_ = std::move(dump);
  observer_.core_completed(member, core, seconds);
}

void MemberSupervisor::take_written_cores() {
  std::uint64_t count;
  (void)!::read(cores_written_.get(), &count, sizeof(count));
  for (auto it = core_writers_.begin(); it != core_writers_.end();) {
    if (!it->second->done.load(std::memory_order_acquire)) {
      ++it;
      continue;
    }
    it->second->thread.join();
    const pid_t pid = it->first;
    auto writer = std::move(it->second);
    it = core_writers_.erase(it);
    if (auto member = find(pid)) {
      finish_core(*member, *writer->core, writer->seconds);
      watch(member->launched_.pidfd.get(), static_cast<std::uint64_t>(pid));  // reaped at the next dispatch
    }
  }
}

void MemberSupervisor::join_core_writers() {
  for (auto& [pid, writer] : core_writers_) writer->thread.join();
  core_writers_.clear();
}

// A child that never became a member: nobody else knows of it; its status
// tells nothing new (it reported its failure before it was killed).
void MemberSupervisor::reap_unborn(pid_t pid) {
  auto it = unborn_.find(pid);
  if (!wait_for_end(it->second.get(), WNOHANG)) return;
  unwatch(it->second.get());
  unborn_.erase(it);
}

void MemberSupervisor::take_server_events() {
  for (const auto& event : servers_.take_events()) {
    if (event.kind == SyscallServers::Event::Kind::ListenerGone) {
      listener_gone(event.server);
    } else if (auto it = serving_.find(event.server); it != serving_.end()) {
      exec_started(*it->second);
    }
  }
}

// The listener may outlive the member (fork children keep the filter): it
// is closed once nobody uses it and its server thread has ended.
void MemberSupervisor::listener_gone(SyscallServers::ServerId server) {
  servers_.retire(server);
  auto it = serving_.find(server);
  if (it == serving_.end()) return;
  it->second->launched_.listener.reset();
  it->second->listener_closed_ = true;
  serving_.erase(it);
}

// execve only reports that it started; whether the process really left our
// address space shows in kcmp(KCMP_VM). Looked at now, then with a growing
// backoff on the exec timer.
void MemberSupervisor::exec_started(SupervisedMember& member) {
  if (member.state_ != SupervisedMember::State::Running) return;
  member.state_ = SupervisedMember::State::Leaving;
  const auto now = Clock::now();
  member.backoff_ = kFirstExecBackoff;
  member.give_up_ = now + kExecGiveUp;
  member.next_look_ = now;
  look_for_exec(member);
  arm_exec_timer();
}

void MemberSupervisor::look_for_exec(SupervisedMember& member) {
  if (member.state_ != SupervisedMember::State::Leaving) return;
  const int pidfd = member.launched_.pidfd.get();
  // A process that has exited has no mm, and kcmp calls it different: the
  // reaping reports it, not an exec.
  if (has_exited(pidfd)) return;
  const auto now = Clock::now();
  if (!shares_my_address_space(member.pid())) {
    member.state_ = SupervisedMember::State::Execed;
    reclaim(member);
    observer_.member_execed(member);
  } else if (now > member.give_up_) {
    member.state_ = SupervisedMember::State::Running;  // the execve failed and it carried on
  } else {
    member.next_look_ = now + member.backoff_;
    member.backoff_ = std::min(member.backoff_ * 2, kLongestExecBackoff);
  }
}

void MemberSupervisor::look_for_execs() {
  const auto now = Clock::now();
  for (auto& [pid, member] : members_) {
    if (member->state_ == SupervisedMember::State::Leaving && member->next_look_ <= now) look_for_exec(*member);
  }
  arm_exec_timer();
}

void MemberSupervisor::arm_exec_timer() {
  std::optional<Clock::time_point> next;
  for (const auto& [pid, member] : members_) {
    if (member->state_ != SupervisedMember::State::Leaving) continue;
    if (!next || member->next_look_ < *next) next = member->next_look_;
  }
  itimerspec when{};  // all zero: disarmed
  if (next) {
    // steady_clock is CLOCK_MONOTONIC on Linux (libstdc++), as the timerfd.
    auto ns = std::max<std::int64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(next->time_since_epoch()).count(), 1);
    when.it_value.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
    when.it_value.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  }
  if (::timerfd_settime(exec_timer_.get(), TFD_TIMER_ABSTIME, &when, nullptr) != 0) fail_loudly("timerfd_settime");
}

// Everything the member owned goes back, before its exit or exec is
// reported (only pinned memory stays, for the members reading it).
void MemberSupervisor::reclaim(SupervisedMember& member) {
  if (member.reclaimed_) return;
  member.reclaimed_ = true;
  std::lock_guard lock(group_lock_);
  // The owner first: releasing what else the member held may unpin memory
  // of its, which then goes back with the rest just below.
  observer_.releasing(member);
  auto bytes = space_.reclaim(member.syscalls_->owner());
  spdlog::debug("event=member.reclaimed pid={} bytes={}", member.pid(), bytes);
}

}  // namespace pat::tracer
