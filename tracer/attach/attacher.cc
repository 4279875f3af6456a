#include "tracer/attach/attacher.h"

#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "base/log.h"
#include "base/pidfd.h"
#include "tracer/attach/glibc_threads.h"
#include "tracer/attach/injected_syscalls.h"
#include "tracer/attach/member_builder.h"
#include "tracer/attach/mm_keeper.h"
#include "tracer/attach/proc_status.h"
#include "tracer/attach/process_capture.h"
#include "tracer/attach/process_maps.h"
#include "tracer/attach/seized_process.h"
#include "tracer/attach/thread_capture.h"
#include "tracer/attach/write_tracker.h"
#include "tracer/elf_mapper.h"
#include "tracer/kernel_abi.h"
#include "tracer/remote_memory.h"

namespace pat::tracer {
namespace {

using Clock = std::chrono::steady_clock;

std::chrono::microseconds since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t);
}

// argv, then envp: pointer arrays followed by their strings, as one block
// to write at `base` in the process.
std::string exec_block(std::uint64_t base, const std::vector<std::string>& argv, const std::vector<std::string>& envp,
                       const std::string& path, std::uint64_t& argv_at, std::uint64_t& envp_at, std::uint64_t& path_at) {
  const std::size_t pointers = (argv.size() + 1 + envp.size() + 1) * sizeof(std::uint64_t);
  std::string strings;
  std::vector<std::uint64_t> table;
  auto add = [&](const std::string& s) {
    std::uint64_t at = base + pointers + strings.size();
    strings.append(s);
    strings.push_back('\0');
    return at;
  };
  path_at = add(path);
  for (const auto& a : argv) table.push_back(add(a));
  table.push_back(0);
  for (const auto& e : envp) table.push_back(add(e));
  table.push_back(0);
  argv_at = base;
  envp_at = base + (argv.size() + 1) * sizeof(std::uint64_t);
  std::string block(reinterpret_cast<const char*>(table.data()), table.size() * sizeof(std::uint64_t));
  return block + strings;
}

// The switch: the process's main thread calls execve(stub) with the old
// command line as argv (ps shows the same command) and the old name in
// PAT_STUB_NAME. The strings go into a page the process maps for the
// purpose; if the exec fails, the page is unmapped again and nothing is
// left of the attempt. On success the old address space is gone, the other
// threads with it, and the process is ours to supervise.
Status exec_stub(SeizedProcess& process, std::uint64_t gadget, const std::string& stub, const CapturedProcess& state, pid_t member,
                 Deadline deadline) {
  std::vector<std::string> argv = state.argv.empty() ? std::vector<std::string>{state.comm} : state.argv;
  std::size_t total = 0;
  for (const auto& a : argv) total += a.size() + 1;
  if (total > 128 * 1024) argv.resize(1);  // keep it small; argv[0] says enough
  std::vector<std::string> envp{"PAT_STUB_NAME=" + state.comm, "PAT_STUB_MEMBER=" + std::to_string(member)};

  auto session = InjectedSyscalls::begin(process, process.pid(), gadget, deadline);
  if (!session) return session.error();
  std::uint64_t argv_at = 0, envp_at = 0, path_at = 0;
  std::string block = exec_block(0, argv, envp, stub, argv_at, envp_at, path_at);
  const std::uint64_t size = kernel::page_up(block.size());
  auto mapped = session->call(SYS_mmap, {0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, ~0ULL, 0});
  if (!mapped) return mapped.error();
  if (mapped.value() < 0) return SysError{static_cast<int>(-mapped.value()), "mmap in the process"};
  const std::uint64_t base = static_cast<std::uint64_t>(mapped.value());
  block = exec_block(base, argv, envp, stub, argv_at, envp_at, path_at);
  auto undo = [&](SysError error) -> Status {
    (void)session->call(SYS_munmap, {base, size});
    (void)session->end();
    return error;
  };
  if (auto s = session->write(RemoteAddress{base}, block); !s) return undo(s.error());
  // From the exec on, the stub must die with the host (its parent would
  // otherwise see it outlive the member it stands for).
  auto rc = session->call_execve(path_at, argv_at, envp_at);
  if (!rc) return undo(rc.error());
  if (rc.value() < 0) return undo(SysError{static_cast<int>(-rc.value()), "execve " + stub});
  if (auto s = session->end(); !s) return s;
  return process.set_exit_kill(process.pid(), true);
}

// Signals that were pending when the process was captured now wait in the
// member too; take them out of the stub (execve kept them), or it would
// forward them a second time. rt_sigtimedwait(2) with a zero timeout
// dequeues one of the given signal, the thread's own queue first.
Status drain_moved_signals(SeizedProcess& stub, const CapturedThread& leader, const CapturedProcess& state, Deadline deadline) {
  if (leader.pending.empty() && state.shared_pending.empty()) return ok_status();
  auto gadget = find_syscall_gadget(stub.pid());
  if (!gadget) return gadget.error();
  auto session = InjectedSyscalls::begin(stub, stub.pid(), gadget.value(), deadline);
  if (!session) return session.error();
  const RemoteAddress set = session->scratch();
  const RemoteAddress zero = set + 16;
  const timespec no_wait{0, 0};
  if (auto s = session->write(zero, std::string_view(reinterpret_cast<const char*>(&no_wait), sizeof(no_wait))); !s) return s;
  auto drain = [&](const siginfo_t& info) -> Status {
    std::uint64_t mask = std::uint64_t{1} << (info.si_signo - 1);
    if (auto s = session->write(set, std::string_view(reinterpret_cast<const char*>(&mask), sizeof(mask))); !s) return s;
    auto rc = session->call(SYS_rt_sigtimedwait, {set.value, 0, zero.value, kernel::kSigsetSize});
    return rc ? ok_status() : Status(rc.error());
  };
  for (const auto& info : leader.pending) {
    if (auto s = drain(info); !s) return s;
  }
  for (const auto& info : state.shared_pending) {
    if (auto s = drain(info); !s) return s;
  }
  return session->end();
}

BrkArea brk_area_of(const AddressSpaceCopy& copy, const ProcStatLayout& stat, const CapturedProcess& state) {
  BrkArea brk;
  brk.reservation = copy.brk_reservation();
  for (const auto& [resource, limit] : state.rlimits) {
    if (resource == RLIMIT_DATA) brk.data_limit = limit.cur;
  }
  brk.data_size = stat.end_data > stat.start_data ? stat.end_data - stat.start_data : 0;
  brk.initial_break = brk.reservation.contains(state.brk) || state.brk == brk.reservation.end ? state.brk : 0;
  return brk;
}

}  // namespace

const char* to_string(AttachStep step) {
  switch (step) {
    case AttachStep::Inspect: return "inspect";
    case AttachStep::OpenProcess: return "open_process";
    case AttachStep::MapLayout: return "map_layout";
    case AttachStep::PreCopy: return "precopy";
    case AttachStep::Seize: return "seize";
    case AttachStep::FinalCopy: return "final_copy";
    case AttachStep::CaptureThreads: return "capture_threads";
    case AttachStep::CaptureProcess: return "capture_process";
    case AttachStep::BuildMember: return "build_member";
    case AttachStep::LoadRegisters: return "load_registers";
    case AttachStep::Switch: return "switch";
    case AttachStep::Release: return "release";
  }
  return "?";
}

Attacher::Attacher(AttachOptions options) : options_(std::move(options)) {
  auto program = SeccompProgram::build();
  if (!program) {
    spdlog::critical("event=tracer.seccomp_build_failed error={}", log_quote(program.error().message()));
    std::abort();
  }
  seccomp_ = std::move(program.value());
}

// The attach, top to bottom. Each step says why it is where it is. Every
// object made along the way undoes itself when destroyed, in the reverse
// order: the member is killed, the process's threads are let go as they
// were, the copied memory is unmapped. After step 11 nothing is undone.
std::variant<AttachedMember, AttachError> Attacher::attach(pid_t pid) {
  const auto started = Clock::now();
  const auto deadline = [&] { return Clock::now() + options_.stop_timeout; };
  auto failed = [](AttachStep step, const std::string& what) { return AttachError::failed(step, what); };
  AttachStats stats;
  auto step_started = started;
  auto fault = [&](AttachStep step) -> std::optional<AttachError> {
    stats.step_time[static_cast<int>(step)] = since(step_started);
    step_started = Clock::now();
    if (options_.on_step) options_.on_step(step);
    if (options_.fail_at != step) return std::nullopt;
    return AttachError::failed(step, std::string("injected fault at step ") + to_string(step));
  };

  // 1. Inspect: every refusal /proc can tell, before anything is touched.
  std::vector<ProcessMapping> known;  // smaps, read once: later reads take /proc/PID/maps and these flags
  if (auto refusal = check_attachable(pid, options_.owner, ::getpid(), &known)) return AttachError::refused(AttachStep::Inspect, *refusal);
  if (auto e = fault(AttachStep::Inspect)) return *e;

  // 2. Open the process: a pidfd (fds are fetched through it; it also
  //    pins the pid), its layout, a syscall instruction for injections, and
  //    glibc's TID field, without which its threads could not move.
  auto pidfd = pidfd_open(pid);
  if (!pidfd) return failed(AttachStep::OpenProcess, pidfd.error().message());
  auto status = read_proc_status(pid);
  auto mappings = refresh_process_mappings(pid, known);
  auto stat = read_proc_stat_layout(pid);
  auto gadget = mappings ? find_syscall_gadget(pid, mappings.value()) : Result<std::uint64_t>(mappings.error());
  if (!status || !mappings || !stat || !gadget)
    return failed(AttachStep::OpenProcess, "process " + std::to_string(pid) + " cannot be read: " +
                                               (!status ? status.error() : !mappings ? mappings.error() : !stat ? stat.error() : gadget.error()).message());
  auto tid_offset = glibc_tid_offset(pid, mappings.value());
  if (!tid_offset || (!tid_offset.value() && status->threads > 1))
    return AttachError::refused(AttachStep::OpenProcess,
                                Refusal{AttachRefusal::UnsupportedLibc, "process " + std::to_string(pid) + " has " + std::to_string(status->threads) +
                                                                            " threads and no glibc whose cached thread ids can be updated" +
                                                                            (tid_offset ? "" : " (" + tid_offset.error().message() + ")")});
  KernelRlimit stack_limit{};
  ::syscall(SYS_prlimit64, pid, RLIMIT_STACK, nullptr, &stack_limit);
  if (auto e = fault(AttachStep::OpenProcess)) return *e;

  // 3. Map the layout: every mapping at its own address here, nothing
  //    copied yet. Address conflicts with the group show up now, while the
  //    process has not even been stopped.
  MappedObjects objects(pid, pidfd->get(), options_.privileged_opener);
  AddressSpaceCopy copy(pid, objects, options_.owner_of);
  if (auto e = copy.map_layout(mappings.value(), stat.value(), member_stack_size(stack_limit.cur), kBrkReservationBytes)) return *e;
  if (auto e = fault(AttachStep::MapLayout)) return *e;

  // 4. Pre-copy, while the process runs: the bulk of its memory moves
  //    without stopping it, in passes, with a WriteTracker (set up in a
  //    stop of a few hundred microseconds) telling each pass and step 6
  //    what was written meanwhile. Small processes skip it: one copy while
  //    stopped costs less than setting up the tracking.
  std::optional<WriteTracker> tracker;
  const bool precopy = options_.precopy == AttachOptions::PreCopy::Always ||
                       (options_.precopy == AttachOptions::PreCopy::Auto && status->rss_anon_bytes > options_.precopy_threshold);
  if (precopy) {
    auto briefly = SeizedProcess::seize(pid, deadline());
    if (!briefly) return failed(AttachStep::PreCopy, "stopping process " + std::to_string(pid) + ": " + briefly.error().message());
    auto started_tracking = WriteTracker::start(briefly.value(), gadget.value(), deadline());
    briefly->detach_all();
    if (started_tracking) tracker.emplace(std::move(started_tracking.value()));
    else spdlog::info("event=attach.no_write_tracking pid={} error={}", pid, log_quote(started_tracking.error().message()));
  }
  if (tracker) {
    if (auto e = copy.precopy(*tracker, known, options_.precopy_passes, options_.precopy_enough)) return *e;
  }
  if (auto e = fault(AttachStep::PreCopy)) return *e;

  // 5. Seize: every thread stopped where it is (no signal sent). From here
  //    to step 12 the program does not run.
  const auto stop_started = Clock::now();
  auto seized = SeizedProcess::seize(pid, deadline());
  if (!seized && seized.error().code == SeizedProcess::kStoppedByJobControl)
    return AttachError::refused(AttachStep::Seize, Refusal{AttachRefusal::NotRunning, "process " + std::to_string(pid) + " is stopped (job control); continue it first"});
  if (!seized) return failed(AttachStep::Seize, "stopping process " + std::to_string(pid) + ": " + seized.error().message());
  if (auto e = fault(AttachStep::Seize)) return *e;

  // 6. Final copy: the pages written since the last pass (all pages,
  //    without a pre-copy), the layout as it is now, protections and
  //    madvise flags. The tracker stays registered (removing its
  //    protections walks every page table: 182 ms per GiB here); it goes
  //    with the old address space, after the switch.
  if (tracker) {
    if (auto e = copy.collect_written(*tracker)) return *e;
  }
  auto mappings_now = refresh_process_mappings(pid, known, tracker ? std::uint32_t{kVmUffdWp} : 0u);
  if (!mappings_now) return failed(AttachStep::FinalCopy, mappings_now.error().message());
  if (auto e = copy.finish(mappings_now.value())) return *e;
  if (auto e = fault(AttachStep::FinalCopy)) return *e;

  // 7. Threads: registers, FPU state, masks, rseq, robust lists from
  //    ptrace; clear_child_tid and sigaltstack asked from each thread.
  std::vector<CapturedThread> threads;
  for (pid_t tid : seized->threads()) {
    auto thread = capture_thread(seized.value(), tid, gadget.value(), deadline());
    if (!thread) return failed(AttachStep::CaptureThreads, thread.error().message());
    threads.push_back(std::move(thread.value()));
  }
  if (auto e = fault(AttachStep::CaptureThreads)) return *e;

  // 8. The process: dispositions, timers and break asked from its main
  //    thread; fds (pidfd_getfd), cwd, umask, limits, personality and
  //    pending signals read. After the threads: nothing else is injected.
  auto status_now = read_proc_status(pid);
  if (!status_now) return failed(AttachStep::CaptureProcess, status_now.error().message());
  auto state = capture_process(seized.value(), pidfd->get(), gadget.value(), status_now.value(), deadline());
  if (!state) {
    if (state.error().code == EPERM)
      return AttachError::refused(AttachStep::CaptureProcess, Refusal{AttachRefusal::UnsupportedFd, "process " + std::to_string(pid) + ": " + state.error().context});
    return failed(AttachStep::CaptureProcess, state.error().message());
  }
  if (auto e = fault(AttachStep::CaptureProcess)) return *e;

  // 9. Build the member: a task cloned here takes on the process's state,
  //    with the group's seccomp filter, one thread per thread, all parked.
  auto built = build_member(threads, state.value(), seccomp_, deadline());
  if (auto* reason = std::get_if<std::string>(&built)) return failed(AttachStep::BuildMember, *reason);
  BuiltMember& member = std::get<BuiltMember>(built);
  if (auto e = fault(AttachStep::BuildMember)) return *e;

  // 10. Registers: each member thread gets its thread's, and the TIDs
  //     glibc keeps in memory become the new ones.
  if (auto s = member.load_registers(threads, tid_offset.value(), deadline()); !s)
    return failed(AttachStep::LoadRegisters, s.error().message());
  if (auto e = fault(AttachStep::LoadRegisters)) return *e;

  // 11. The switch: the process execs the stub. Its other threads are
  //     gone after this, its old address space is unreachable (a keeper
  //     task holds it, so the execve does not spend the stop tearing it
  //     down); there is no way back.
  if (auto e = fault(AttachStep::Switch)) return *e;
  auto keeper = MmKeeper::start(seized.value(), gadget.value(), deadline());
  if (!keeper) spdlog::info("event=attach.no_mm_keeper pid={} error={}", pid, log_quote(keeper.error().message()));
  if (auto s = exec_stub(seized.value(), gadget.value(), options_.stub_path, state.value(), member.pid(), deadline()); !s) {
    if (keeper) (void)keeper->discard(seized.value(), gadget.value(), deadline());
    return failed(AttachStep::Switch, "the process could not become the stub: " + s.error().message());
  }
  copy.commit();

  // 12. Release: signals that moved are taken out of the stub, the member
  //     runs, then the stub (which drops the old fds and waits).
  if (auto s = drain_moved_signals(seized.value(), threads.front(), state.value(), deadline()); !s)
    spdlog::warn("event=attach.drain_failed pid={} error={}", pid, log_quote(s.error().message()));
  member.release();
  stats.stopped = since(stop_started);
  const pid_t keeper_pid = keeper ? keeper->let_go() : 0;
  ::ptrace(PTRACE_CONT, pid, 0, 0);
  seized->release();  // the stub stays traced, by the supervisor from now on

  AttachedMember attached;
  attached.original_pid = pid;
  attached.member.pid = member.pid();
  attached.member.pidfd = member.take_pidfd();
  attached.member.listener = member.take_listener();
  attached.member.exe_path = state->exe;
  attached.member.argv = state->argv;
  attached.member.layout = std::make_unique<MemberLayout>();
  for (const auto& entry : copy.entries()) attached.member.layout->add(entry.kind, entry.range);
  attached.member.brk = brk_area_of(copy, stat.value(), state.value());
  attached.stub = std::make_unique<StubSupervisor>(pid, attached.member.pid, attached.member.pidfd.get());
  attached.stub->watch_keeper(keeper_pid, tracker ? std::make_unique<WriteTracker>(std::move(*tracker)) : nullptr);
  if (seized->stop_held_back()) (void)pidfd_signal(attached.member.pidfd.get(), SIGSTOP);
  // Return once the stub has let go of the old fds: from then on the
  // member's are the only ones (a reader sees EOF when the member closes).
  const Deadline ready_by = deadline();
  while (!attached.stub->ready() && !attached.stub->stub_gone()) {
    auto got = wait_for_tracee(pid, ready_by);
    if (!got || !got.value()) {
      spdlog::warn("event=attach.stub_not_ready pid={}", pid);
      break;
    }
    attached.stub->on_stub_status(*got.value());
  }
  stats.step_time[static_cast<int>(AttachStep::Release)] = since(step_started);
  stats.total = since(started);
  stats.precopy = copy.precopy_stats().time;
  stats.final_copy = copy.final_stats().time;
  stats.bytes_precopied = copy.precopy_stats().bytes_copied;
  stats.bytes_copied_stopped = copy.final_stats().bytes_copied;
  stats.private_bytes = copy.private_bytes();
  stats.threads = static_cast<int>(threads.size());
  stats.fds = static_cast<int>(state->fds.size());
  attached.stats = stats;
  return attached;
}

}  // namespace pat::tracer
