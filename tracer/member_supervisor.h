// MemberSupervisor: every member process of one group, from its launch to
// its reaping. As rr's WaitManager is for rr's tasks, all waits for member
// processes go through this class; nothing else calls waitid on them. It
// owns:
//  - the launch (MemberLauncher) and the member's entry in the ledger;
//  - the threads that answer its rerouted syscalls (SyscallServers);
//  - the pidfd waits and the reaping, which give an ExitStatus;
//  - exec confirmation: a member whose execve started has left the address
//    space once kcmp(KCMP_VM) says so;
//  - reclaim: what a member owned goes back to the group before its exit or
//    exec is reported;
//  - with member cores on, a crashed member's own core (tracer/core_file.h),
//    completed between the peek at its end (WNOWAIT) and its reaping, while
//    its pid, RLIMIT_CORE and memory still stand.
//
// One thread drives it, the supervising thread: the thread that launches
// (PR_SET_PDEATHSIG fires when the thread that cloned a member exits, not
// the process) and that calls dispatch() whenever event_fd() is readable.
// pat-host does this from its event loop (daemon/host), the tracer tests
// from a poll loop (tests/tracer/test_host.h). dispatch() never blocks, and
// the observer's callbacks run inside it, on that thread.
//
// Attached members (attach(), docs/attach.md) add waits for stopped tasks:
// the stub (the original process, our tracee), the keeper of its old
// address space, and the member's job-control stops and continues, which
// the stub mirrors. They are issued from the supervising thread, which is
// the tracer thread (ptrace(2): only the thread that attached may wait for
// a tracee's stops), each naming its task (never P_ALL). A stop does not
// make a pidfd readable, so a signalfd for SIGCHLD (blocked in the
// constructing thread, before any server thread inherits its mask) is in
// the same epoll set, and dispatch() hands each status to the member's
// StubSupervisor.
#pragma once

#include "base/result.h"
#include "base/unique_fd.h"
#include "proto/exit_status.h"
#include "tracer/attach/attacher.h"
#include "tracer/core_file.h"
#include "tracer/member_launcher.h"
#include "tracer/member_syscalls.h"
#include "tracer/shared_address_space.h"
#include "tracer/syscall_servers.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <variant>

namespace pat::tracer {

class MemberSupervisor;

// One member process as the supervisor knows it. Read it on the supervising
// thread only.
class SupervisedMember {
 public:
  enum class State {
    Running,  // in the group's address space
    Leaving,  // called execve; not yet seen in its new address space
    Execed,   // left the address space by execve; still our child
    Exited,   // reaped
  };

  explicit SupervisedMember(LaunchedMember launched) : launched_(std::move(launched)) {}
  // An attached process: the member is the new task; the process's own PID
  // is its stub's.
  explicit SupervisedMember(AttachedMember attached);

  pid_t pid() const { return launched_.pid; }
  State state() const { return state_; }
  bool alive() const { return state_ != State::Exited; }
  // argv, the program's path, the ranges the launch mapped.
  const LaunchedMember& launched() const { return launched_; }
  // How it ended; only once state() is Exited. An error when waitid failed
  // (the member is gone either way).
  const Result<proto::ExitStatus>& end() const { return *end_; }
  // Its listener is closed: no task uses its seccomp filter any more.
  bool listener_closed() const { return listener_closed_; }

  // Attached members only (nullopt / nullptr for launched ones): the
  // process's original PID, which its stub keeps, and how the attach went.
  std::optional<pid_t> original_pid() const;
  const AttachStats* attach_stats() const { return stub_ ? &attach_stats_ : nullptr; }

 private:
  friend class MemberSupervisor;
  using Clock = std::chrono::steady_clock;

  LaunchedMember launched_;
  std::unique_ptr<MemberSyscalls> syscalls_;
  SyscallServers::ServerId server_ = 0;
  State state_ = State::Running;
  bool reclaimed_ = false;
  bool listener_closed_ = false;
  std::optional<proto::CoreDump> core_;  // its own core, once completed
  std::optional<Result<proto::ExitStatus>> end_;
  // Attached: the stub standing in for the original process, until it and
  // the keeper of the old address space are gone.
  std::unique_ptr<StubSupervisor> stub_;
  AttachStats attach_stats_;
  // Exec confirmation (State::Leaving): when to look again, how long to wait
  // next, when to decide the execve failed.
  Clock::time_point next_look_{};
  std::chrono::microseconds backoff_{};
  Clock::time_point give_up_{};
};

// What the owner of a supervisor hears, on the supervising thread, from
// inside dispatch().
class MemberObserver {
 public:
  virtual ~MemberObserver() = default;
  // Under the group lock, right before the member's memory goes back to the
  // group (once, at its exec or exit): release what else it held there.
  virtual void releasing(const SupervisedMember& member) { (void)member; }
  // Its execve took it out of the address space; its memory went back.
  virtual void member_execed(const SupervisedMember& member) { (void)member; }
  // It dumped core and its own core was written (or not: the error), in
  // `seconds`; before it is reaped. member.end() is not set yet.
  virtual void core_completed(const SupervisedMember& member, const Result<MemberCore>& core, double seconds) {
    (void)member, (void)core, (void)seconds;
  }
  // It was reaped (member.end()); its memory went back.
  virtual void member_exited(const SupervisedMember& member) { (void)member; }
};

// Whose core a crashing member leaves.
enum class MemberCores {
  Kernel,     // the kernel's, of the whole address space (tests that run several supervisors)
  PerMember,  // the member's own: the group's coredump_filter is 0 and the supervisor writes each (pat-host)
};

class MemberSupervisor {
 public:
  // allow_cross_mapping: see SharedAddressSpace. MemberCores::PerMember
  // changes this process's coredump_filter (per address space): one such
  // supervisor per process.
  MemberSupervisor(bool allow_cross_mapping, MemberObserver& observer, MemberCores cores = MemberCores::Kernel);
  // end_members(), then ends every syscall server.
  ~MemberSupervisor();
  MemberSupervisor(const MemberSupervisor&) = delete;
  MemberSupervisor& operator=(const MemberSupervisor&) = delete;

  // Launches `spec` as a member. `before_serving` runs once the member is in
  // the ledger and before any of its rerouted syscalls is answered.
  using LaunchResult = std::variant<std::shared_ptr<SupervisedMember>, LaunchError>;
  LaunchResult launch(const LaunchSpec& spec,
                      const std::function<void(const SupervisedMember&)>& before_serving = {});

  // Attaches the running process `pid` as a member (Attacher::attach(),
  // on this thread: it becomes the process's tracer) and supervises it and
  // its stub like a launched member: reaped here, its exit mirrored by the
  // stub, its memory reclaimed. `before_serving` as for launch().
  using AttachResult = std::variant<std::shared_ptr<SupervisedMember>, AttachError>;
  AttachResult attach(Attacher& attacher, pid_t pid,
                      const std::function<void(const SupervisedMember&)>& before_serving = {});

  // Readable whenever dispatch() has something to do.
  int event_fd() const { return epoll_.get(); }
  // Reaps who exited, confirms execs, retires the servers of closed
  // listeners; calls the observer for each. Never blocks.
  void dispatch();

  // Kills the members still alive and reaps them, and the children of
  // failed launches; without telling the observer. Waits for cores being
  // written. For an owner about to go
  // (members die with their host anyway: PR_SET_PDEATHSIG).
  void end_members();

  // A member that has not been reaped yet; nullptr otherwise.
  std::shared_ptr<SupervisedMember> find(pid_t pid) const;
  // Nothing left to wait for: every member reaped, every listener closed.
  bool idle() const;
  // Every attached member's stub has ended (its status given to its parent)
  // and every keeper is gone: exiting now would not kill one halfway.
  bool stubs_ended() const { return stubs_.empty(); }
  // The member standing in for the attached process `original_pid`
  // (its stub's PID); nullptr when there is none.
  std::shared_ptr<SupervisedMember> find_attached(pid_t original_pid) const;

  // The pidfd pins the exact process: no signal reaches a recycled pid.
  // ESRCH once it has exited.
  Status signal(const SupervisedMember& member, int signal) const;
  // Every member ran setsid(), so its pid is also the id of the process
  // group its fork children share: this reaches them too.
  void signal_process_group(const SupervisedMember& member, int signal) const;

  // What the member owns and how much of it is resident.
  MemberFootprint footprint(const SupervisedMember& member) const;
  // The group's rerouted syscalls so far, as its servers answered them.
  const RerouteStats& reroute_stats() const { return reroute_stats_; }
  // Its program break: [start, current).
  Range brk_in_use(const SupervisedMember& member) const;

  // The group's address space. The group lock guards it and every member's
  // brk: with_space() runs `use` under the lock. Code that already runs
  // under it (MemberObserver::releasing, or a callback from inside
  // with_space) uses space() directly.
  template <class Use>
  decltype(auto) with_space(Use&& use) {
    std::lock_guard lock(group_lock_);
    return use(space_);
  }
  template <class Use>
  decltype(auto) with_space(Use&& use) const {
    std::lock_guard lock(group_lock_);
    return use(std::as_const(space_));
  }
  SharedAddressSpace& space() { return space_; }

 private:
  void start_supervising(const std::shared_ptr<SupervisedMember>& member,
                         const std::function<void(const SupervisedMember&)>& before_serving);
  void follow_stubs();
  void end_stubs();
  void watch(int fd, std::uint64_t token);
  void unwatch(int fd);
  void reap(pid_t pid);
  bool begin_core(SupervisedMember& member, int signal);
  MemberCoreSource core_source(const SupervisedMember& member, int signal) const;
  void finish_core(SupervisedMember& member, const Result<MemberCore>& core, double seconds);
  void take_written_cores();
  void join_core_writers();
  void reap_unborn(pid_t pid);
  void take_server_events();
  void exec_started(SupervisedMember& member);
  void look_for_exec(SupervisedMember& member);
  void look_for_execs();
  void arm_exec_timer();
  void reclaim(SupervisedMember& member);
  void listener_gone(SyscallServers::ServerId server);

  MemberObserver& observer_;
  mutable std::mutex group_lock_;
  SharedAddressSpace space_;
  MemberLauncher launcher_;
  UniqueFd epoll_;
  UniqueFd exec_timer_;  // a timerfd: the next look at a Leaving member
  std::map<pid_t, std::shared_ptr<SupervisedMember>> members_;  // not reaped yet
  std::map<SyscallServers::ServerId, std::shared_ptr<SupervisedMember>> serving_;  // listener not closed yet
  std::map<pid_t, UniqueFd> unborn_;  // killed children that never became members, by pidfd
  // Attached members whose stub or keeper is not gone yet, by original PID.
  std::map<pid_t, std::shared_ptr<SupervisedMember>> stubs_;
  UniqueFd child_signals_;  // a signalfd for SIGCHLD: stops and exits of the stubs
  // The coredump_filter members' cores follow (MemberCores::PerMember; the
  // group's own is 0); nullopt: the kernel's cores.
  std::optional<std::uint32_t> member_core_filter_;
  // A big member's core is written on a thread of its own, so that the
  // group is served meanwhile; it writes to cores_written_ (an eventfd) when done.
  struct CoreWriter {
    std::thread thread;
    std::optional<Result<MemberCore>> core;  // set by the thread before `done`
    double seconds = 0;
    std::atomic<bool> done{false};
  };
  std::map<pid_t, std::unique_ptr<CoreWriter>> core_writers_;
  UniqueFd cores_written_;
  RerouteStats reroute_stats_;  // recorded into by the server threads
  // Last: destroyed first, so no server thread outlives what it uses.
  SyscallServers servers_;
};

}  // namespace pat::tracer
