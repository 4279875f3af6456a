#include "tracer/member_launcher.h"

#include <fcntl.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "base/log.h"
#include "base/pidfd.h"
#include "tracer/elf_mapper.h"
#include "tracer/nonpic_build.h"
#include "tracer/kernel_abi.h"
#include "tracer/member_child.h"
#include "tracer/program_resolver.h"

namespace pat::tracer {
namespace {

// The bottom of each member's stack mapping, above the guard gap, serves as
// the cloned child's stack until it jumps to the program. It lies inside the
// member's own stack mapping, so it is reclaimed with it; the program's stack
// grows down from the top and only reaches it long after the child code is done.
constexpr std::size_t kChildScratchStack = 64 * 1024;

// Unmaps what a launch mapped unless the launch succeeded.
class ReleaseOnFailure {
 public:
  explicit ReleaseOnFailure(MemberLayout& layout) : layout_(&layout) {}
  ~ReleaseOnFailure() {
    if (layout_ != nullptr) layout_->release();
  }
  ReleaseOnFailure(const ReleaseOnFailure&) = delete;
  ReleaseOnFailure& operator=(const ReleaseOnFailure&) = delete;
  void dismiss() { layout_ = nullptr; }

 private:
  MemberLayout* layout_;
};

std::string env_key(const std::string& entry) { return entry.substr(0, entry.find('=')); }

// spec.env with spec.extra_env applied: a key in extra_env replaces the
// entry of env, new keys are appended.
std::vector<std::string> merged_env(const LaunchSpec& spec) {
  std::vector<std::string> env;
  env.reserve(spec.env.size() + spec.extra_env.size());
  for (const std::string& entry : spec.env) {
    auto extra = spec.extra_env.find(env_key(entry));
    env.push_back(extra == spec.extra_env.end() ? entry : extra->first + "=" + extra->second);
  }
  for (const auto& [key, value] : spec.extra_env) {
    bool present = false;
    for (const std::string& entry : spec.env) present = present || env_key(entry) == key;
    if (!present) env.push_back(key + "=" + value);
  }
  return env;
}

std::string search_path_of(const std::vector<std::string>& env) {
  for (const std::string& entry : env)
    if (entry.rfind("PATH=", 0) == 0) return entry.substr(5);
  return proto::kDefaultSearchPath;
}

struct MemberLimits {
  std::vector<std::pair<int, KernelRlimit>> to_apply;
  rlim_t stack = RLIM_INFINITY;  // soft limits the member will have
  rlim_t data = RLIM_INFINITY;
};

// Each requested limit, lowered to what the host's hard limit allows: the
// member cannot have more than the host could give itself.
std::variant<MemberLimits, LaunchError> member_limits(const LaunchSpec& spec) {
  MemberLimits limits;
  struct rlimit own;
  ::getrlimit(RLIMIT_STACK, &own);
  limits.stack = own.rlim_cur;
  ::getrlimit(RLIMIT_DATA, &own);
  limits.data = own.rlim_cur;
  for (const auto& [resource, wanted] : spec.rlimits) {
    if (resource < 0 || resource >= RLIM_NLIMITS || limits.to_apply.size() == RLIM_NLIMITS)
      return LaunchError::internal("invalid resource limit " + std::to_string(resource));
    if (::getrlimit(static_cast<__rlimit_resource>(resource), &own) != 0)
      return LaunchError::internal("getrlimit " + std::to_string(resource) + ": " + std::strerror(errno));
    KernelRlimit limit{wanted.rlim_cur, std::min(wanted.rlim_max, own.rlim_max)};
    limit.cur = std::min(limit.cur, limit.max);
    limits.to_apply.emplace_back(resource, limit);
    if (resource == RLIMIT_STACK) limits.stack = limit.cur;
    if (resource == RLIMIT_DATA) limits.data = limit.cur;
  }
  return limits;
}

// The member's stack mapping: kStackGuardGap of PROT_NONE, then `size`
// bytes. Returns the usable part.
std::variant<Range, LaunchError> map_stack(std::size_t size, bool executable, MemberLayout& layout) {
  std::size_t total = kernel::kStackGuardGap + size;
  int prot = PROT_READ | PROT_WRITE | (executable ? PROT_EXEC : 0);
  void* p = ::mmap(nullptr, total, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (p == MAP_FAILED) return LaunchError::internal(std::string("mapping the member's stack: ") + std::strerror(errno));
  auto start = reinterpret_cast<std::uintptr_t>(p);
  layout.add(MemberLayout::Kind::Stack, Range{start, start + total});
  if (::mprotect(p, kernel::kStackGuardGap, PROT_NONE) != 0)
    return LaunchError::internal(std::string("protecting the stack guard: ") + std::strerror(errno));
  return Range{start + kernel::kStackGuardGap, start + total};
}

// A copy of `fd` numbered >= 3, so the child's dup3() onto 0..2 cannot
// overwrite it; /dev/null for -1.
std::variant<UniqueFd, LaunchError> fd_above_stdio(int fd, const char* what) {
  UniqueFd null_fd;
  if (fd < 0) {
    null_fd.reset(::open("/dev/null", O_RDWR | O_CLOEXEC));
    if (!null_fd) return LaunchError::internal(std::string("open /dev/null: ") + std::strerror(errno));
    fd = null_fd.get();
  }
  UniqueFd copy(::fcntl(fd, F_DUPFD_CLOEXEC, 3));
  if (!copy) return LaunchError::internal(std::string("duplicating the ") + what + " fd: " + std::strerror(errno));
  return copy;
}

// The fds the child needs, all owned here until the launch is over.
struct LaunchFds {
  UniqueFd stdio[3];
  UniqueFd cwd;
  UniqueFd host_end, child_end;  // the hand-over socket
};

std::variant<LaunchFds, LaunchError> prepare_fds(const LaunchSpec& spec) {
  LaunchFds fds;
  static const char* const kNames[3] = {"stdin", "stdout", "stderr"};
  for (int i = 0; i < 3; ++i) {
    auto copy = fd_above_stdio(spec.stdio[i], kNames[i]);
    if (auto* error = std::get_if<LaunchError>(&copy)) return *error;
    fds.stdio[i] = std::move(std::get<UniqueFd>(copy));
  }
  if (spec.cwd_fd >= 0) {
    auto copy = fd_above_stdio(spec.cwd_fd, "cwd");
    if (auto* error = std::get_if<LaunchError>(&copy)) return *error;
    fds.cwd = std::move(std::get<UniqueFd>(copy));
  }
  // SEQPACKET: one report per message, and EOF if the child dies first.
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0)
    return LaunchError::internal(std::string("socketpair: ") + std::strerror(errno));
  fds.host_end.reset(pair[0]);
  UniqueFd child_end(pair[1]);
  auto copy = fd_above_stdio(child_end.get(), "hand-over");
  if (auto* error = std::get_if<LaunchError>(&copy)) return *error;
  fds.child_end = std::move(std::get<UniqueFd>(copy));
  return fds;
}

// Where the program will start and with what stack.
struct LoadedProgram {
  std::uintptr_t stack_pointer = 0;
  std::uintptr_t entry = 0;
  Range stack;
  BrkArea brk;
  std::optional<StaleBuild> stale_build;
  std::uintptr_t program_bias = 0;
  std::uintptr_t interpreter_base = 0;
  std::vector<std::uint64_t> auxv;
};

// Maps the program (or its non-PIC build, which then replaces
// resolved.program), its interpreter and its stack.
std::variant<LoadedProgram, LaunchError> load_program(const LaunchSpec& spec, ResolvedProgram& resolved,
                                                      const std::vector<std::string>& env, const MemberLimits& limits,
                                                      const MachineAuxv& machine, ProgramMapper& programs,
                                                      MemberLayout& layout) {
  auto program = programs.map(resolved.program, kBrkReservationBytes, layout);
  if (auto* error = std::get_if<LaunchError>(&program)) return *error;
  MappedProgram& chosen = std::get<MappedProgram>(program);
  if (chosen.build) resolved.program = std::move(*chosen.build);
  const MappedElf& image = chosen.mapped;
  std::optional<MappedElf> interp;
  if (resolved.interpreter) {
    auto mapped = map_elf(*resolved.interpreter, MemberLayout::Kind::InterpreterImage, 0, layout);
    if (auto* error = std::get_if<LaunchError>(&mapped)) return *error;
    interp = std::get<MappedElf>(mapped);
  }
  auto stack = map_stack(member_stack_size(limits.stack), resolved.program.image.executable_stack, layout);
  if (auto* error = std::get_if<LaunchError>(&stack)) return *error;

  InitialStackSpec s;
  s.argv = resolved.argv;
  s.envp = env;
  s.execfn = spec.path;
  s.machine = machine;
  if (::getrandom(s.random.data(), s.random.size(), 0) != static_cast<ssize_t>(s.random.size()))
    return LaunchError::internal(std::string("getrandom: ") + std::strerror(errno));
  s.phdr = image.phdr;
  s.phnum = resolved.program.image.phnum;
  s.base = interp ? interp->bias : 0;
  s.entry = image.entry;
  s.uid = ::getuid();
  s.euid = ::geteuid();
  s.gid = ::getgid();
  s.egid = ::getegid();
  const Range& usable = std::get<Range>(stack);
  auto rsp = build_initial_stack(usable.start, usable.end, s);
  if (!rsp) return LaunchError::internal(spec.path + ": argument list too long");

  LoadedProgram loaded;
  loaded.stack_pointer = *rsp;
  loaded.entry = interp ? interp->entry : image.entry;
  loaded.stack = usable;
  loaded.brk = BrkArea{image.brk, limits.data, image.data_size};
  loaded.stale_build = std::move(chosen.stale);
  loaded.program_bias = image.bias;
  loaded.interpreter_base = s.base;
  loaded.auxv = aux_vector_at(*rsp);
  return loaded;
}

void fill_plan(ChildPlan& plan, const LaunchSpec& spec, const LaunchFds& fds, const MemberLimits& limits,
               const SeccompProgram& seccomp, const LoadedProgram& loaded) {
  plan.host_pid = ::getpid();
  for (int i = 0; i < 3; ++i) plan.stdio[i] = fds.stdio[i].get();
  plan.cwd_fd = fds.cwd ? fds.cwd.get() : -1;
  plan.handover_fd = fds.child_end.get();
  plan.umask = spec.umask & 0777;
  plan.rlimit_count = static_cast<int>(limits.to_apply.size());
  for (std::size_t i = 0; i < limits.to_apply.size(); ++i)
    plan.rlimits[i] = {limits.to_apply[i].first, limits.to_apply[i].second};
  // comm: the basename of the path that was run, as the kernel's
  // __set_task_comm(kbasename(bprm->filename)) does (the script, for a script).
  std::string base = spec.path.substr(spec.path.rfind('/') + 1);
  std::snprintf(plan.comm, sizeof(plan.comm), "%s", base.c_str());
  plan.filter = seccomp.fprog();
  // WAIT_KILLABLE_RECV (Linux 6.0): once the host has received a
  // notification, only a fatal signal interrupts the member's wait. Otherwise
  // a signal handler without SA_RESTART would turn a rerouted brk into
  // -EINTR, which glibc's brk wrapper takes for success.
  plan.seccomp_flags = SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
  plan.default_action = kernel::KernelSigaction{SIG_DFL, 0, nullptr, 0};
  plan.stack_pointer = loaded.stack_pointer;
  plan.entry = loaded.entry;
  plan.stop_before_entry = spec.stopped;
  plan.prepare_messages();
}

// Best effort: kernels before 6.6 refuse the flag with EINVAL, and the
// notifications still work, only slower.
void request_sync_wakeups(int listener) {
  std::uint64_t flags = kernel::kSeccompUserNotifFdSyncWakeUp;
  ::ioctl(listener, kernel::kSeccompIoctlNotifSetFlags, flags);
}

}  // namespace

std::size_t member_stack_size(rlim_t stack_limit) {
  constexpr std::size_t kDefault = 8 << 20, kMin = 256 << 10, kMax = std::size_t{1} << 30;
  if (stack_limit == RLIM_INFINITY) return kDefault;
  std::size_t size = kernel::page_up(stack_limit);
  return std::min(std::max(size, kMin), kMax);
}

MemberLauncher::MemberLauncher() : machine_(MachineAuxv::of_this_process()) {
  auto program = SeccompProgram::build();
  if (!program) {
    spdlog::critical("event=tracer.seccomp_build_failed error={}", log_quote(program.error().message()));
    std::abort();
  }
  seccomp_ = std::move(program.value());
}

std::variant<LaunchedMember, LaunchError> MemberLauncher::launch(const LaunchSpec& spec,
                                                                 std::optional<UnbornChild>& unborn) {
  // The child's fchdir needs search permission, which O_PATH did not: a
  // directory the owner may not enter is refused before anything is mapped.
  if (spec.cwd_fd >= 0 && ::faccessat(spec.cwd_fd, "", X_OK, AT_EACCESS | AT_EMPTY_PATH) != 0)
    return LaunchError::setup_failed(spec.path, ChildStep::WorkingDirectory, errno);
  std::vector<std::string> env = merged_env(spec);
  int cwd = spec.cwd_fd >= 0 ? spec.cwd_fd : AT_FDCWD;
  // fs/exec.c (Linux 5.18+): an empty argv gets "" as argv[0], so programs
  // that assume argc >= 1 do not walk into envp.
  std::vector<std::string> argv = spec.argv.empty() ? std::vector<std::string>{""} : spec.argv;
  auto resolved_or = resolve_program(cwd, spec.path, argv, search_path_of(env));
  if (auto* error = std::get_if<LaunchError>(&resolved_or)) return *error;
  ResolvedProgram& resolved = std::get<ResolvedProgram>(resolved_or);
  auto limits = member_limits(spec);
  if (auto* error = std::get_if<LaunchError>(&limits)) return *error;

  auto layout = std::make_unique<MemberLayout>();
  ReleaseOnFailure cleanup(*layout);
  auto loaded = load_program(spec, resolved, env, std::get<MemberLimits>(limits), machine_, programs_, *layout);
  if (auto* error = std::get_if<LaunchError>(&loaded)) return *error;
  auto fds = prepare_fds(spec);
  if (auto* error = std::get_if<LaunchError>(&fds)) return *error;
  LaunchFds& launch_fds = std::get<LaunchFds>(fds);

  ChildPlan plan;
  fill_plan(plan, spec, launch_fds, std::get<MemberLimits>(limits), seccomp_, std::get<LoadedProgram>(loaded));
  auto child = start_member_child(plan, std::get<LoadedProgram>(loaded).stack.start + kChildScratchStack);
  if (!child) return LaunchError::internal(spec.path + ": " + child.error().message());
  launch_fds.child_end.reset();  // ours must go, or the child's death would not reach us as EOF
  auto handover = await_handover(launch_fds.host_end.get(), std::chrono::milliseconds(kHandoverTimeoutMs));
  if (auto* failure = std::get_if<HandoverFailure>(&handover)) {
    (void)pidfd_signal(child->pidfd.get(), SIGKILL);
    unborn = UnbornChild{child->pid, std::move(child->pidfd)};
    if (failure->step) return LaunchError::setup_failed(spec.path, *failure->step, failure->error);
    return LaunchError::internal(spec.path + ": " + failure->reason);
  }

  cleanup.dismiss();
  request_sync_wakeups(std::get<UniqueFd>(handover).get());
  LaunchedMember member;
  member.pid = child->pid;
  member.pidfd = std::move(child->pidfd);
  member.listener = std::move(std::get<UniqueFd>(handover));
  member.exe_path = resolved.program.path;
  member.argv = std::move(resolved.argv);
  member.layout = std::move(layout);
  member.brk = std::get<LoadedProgram>(loaded).brk;
  member.stale_build = std::move(std::get<LoadedProgram>(loaded).stale_build);
  member.program_bias = std::get<LoadedProgram>(loaded).program_bias;
  member.interpreter_base = std::get<LoadedProgram>(loaded).interpreter_base;
  member.auxv = std::move(std::get<LoadedProgram>(loaded).auxv);
  member.cwd = launch_fds.cwd ? std::move(launch_fds.cwd) : UniqueFd(::open(".", O_PATH | O_DIRECTORY | O_CLOEXEC));
  return member;
}

}  // namespace pat::tracer
