#include "proto/interface.h"

#include <array>
#include <string>

namespace pat::proto {

namespace {

constexpr std::string_view kVarlinkServiceIdl = R"(# The Varlink Service Interface is provided by every varlink service.
interface org.varlink.service

method GetInfo() -> (vendor: string, product: string, version: string, url: string, interfaces: []string)
method GetInterfaceDescription(interface: string) -> (description: string)

error InterfaceNotFound (interface: string)
error MethodNotFound (method: string)
error MethodNotImplemented (method: string)
error InvalidParameter (parameter: string)
error ExpectedMore ()
)";

constexpr std::string_view kPatIdl = R"(# Types and errors shared by pat's interfaces. Every error also carries
# "message", one human-readable line.
interface io.pat

type Member (
  pid: int,
  argv: []string,
  # The file mapped as the program (after #! resolution), canonical.
  program: string,
  # running; leaving (called execve, not yet confirmed); execed (left the
  # address space by execve; still reported until it exits)
  state: string,
  detached: bool,
  started: string,
  # With usage (Group.Show): its own CPU time and threads, and the memory it
  # owns in the group's ledger.
  cpu_seconds: ?float,
  threads: ?int,
  mapped_bytes: ?int,
  resident_bytes: ?int,
  # With usage: its state as /proc/PID/stat's letter (R, S, D, T stopped,
  # t traced, Z) and its working directory.
  process_state: ?string,
  cwd: ?string,
  # launched (by Member.Run) or attached (by Group.Attach)
  origin: string,
  # Attached members: the process's own PID, which its stub keeps (the
  # same number in both); signals sent to it reach the member.
  original_pid: ?int,
  stub_pid: ?int
)

# A running process moved into a group (Group.Attach, the member.attach
# event): the member's pid, the process's own, how long the program was
# stopped, and how much memory was copied (of it, while stopped).
type Attach (
  pid: int,
  original_pid: int,
  stopped_seconds: float,
  total_seconds: float,
  bytes_copied: int,
  bytes_copied_stopped: int,
  threads: int,
  fds: int
)

# One of a group's recent exits: exactly one of exit_code and signal. With
# a signal, core_dumped (the kernel's WCOREDUMP, under the member's
# RLIMIT_CORE); when true, core_file (the member's own core, absolute;
# core_truncated when cut at RLIMIT_CORE) or core_error (why there is none).
type Exit (
  pid: int,
  argv: []string,
  program: string,
  exit_code: ?int,
  signal: ?int,
  core_dumped: ?bool,
  core_file: ?string,
  core_truncated: ?bool,
  core_error: ?string,
  ended: string,
  duration_seconds: float
)

# The group's data-plane arena (docs/dataplane.md).
type Arena (
  size_bytes: int,
  members: int,
  members_ending: int,
  channels: int,
  buffers: int,
  buffer_bytes: int,
  retained_free_bytes: int,
  discarded_bytes: int,
  owed_frees: int,
  allocator_owner_deaths: int,
  allocator_damaged: bool
)

# Per address space, i.e. the whole group's, with usage (Group.Show);
# empty in Group.List.
type Memory (
  rss_bytes: ?int,
  pss_bytes: ?int,
  size_bytes: ?int,
  pinned_regions: ?int,
  arena: ?Arena
)

# A program's non-PIC build passed over because a package update changed
# what it was linked from: its members run the slower program itself.
# group: in Daemon.Status only, which gathers those of the caller's groups.
type StaleBuild (
  build: string,
  reason: string,
  group: ?string
)

type Group (
  name: string,
  owner_uid: int,
  owner_gid: int,
  host_pid: int,
  created: string,
  # starting, running, destroying
  state: string,
  # Removed when its member ends (Member.Run with new_group).
  ephemeral: bool,
  allow_cross_mapping: bool,
  members: []Member,
  # The last 32, newest first.
  recent_exits: []Exit,
  # Empty unless the group passed over a stale non-PIC build.
  stale_builds: []StaleBuild,
  memory: Memory
)

error InvalidMessage (reason: string)
error PermissionDenied ()
error InvalidGroupName (name: string)
error GroupNotFound (name: string)
error GroupExists (name: string)
error GroupBusy (name: string, members: int)
error GroupUnavailable (name: string)
error MemberNotFound (pid: int)
error ResourceExhausted (what: string)
error ProgramNotFound (program: string)
error ProgramNotExecutable (program: string, reason: string)
error AddressConflict (program: string, start: int, end: int, member_pid: ?int, member_argv: ?[]string)
# Group.Attach: the process cannot be moved; reason is one word
# (wrong_owner, already_traced, init_process, has_children...; docs/attach.md).
error NotAttachable (pid: int, reason: string)
error InternalError (reason: string)
)";

constexpr std::string_view kDaemonIdl = R"(# The daemon itself.
interface io.pat.Daemon

# stale_builds: those of the caller's groups.
method Status() -> (version: string, pid: int, uptime_seconds: float, groups: int, connections: int, runtime_dir: string,
                    stale_builds: []io.pat.StaleBuild)

# How a host that patd started ended: exactly one of exit_code and signal;
# with a signal, core_dumped (the kernel's WCOREDUMP; pat-host's own core).
type HostExit (exit_code: ?int, signal: ?int, core_dumped: ?bool)

# Streams (call with "more": true) what happens from now on to the caller's
# groups (every group, for root), or only to the group named. The first
# reply is events.subscribed; then one reply per event:
#   group.create (host_pid), group.destroy (reason),
#   member.start, member.exec (member), member.exit (member, exit),
#   member.attach (member, attach: the stopped time and bytes copied),
#   member.refused (program, error, reason),
#   host.died (host_pid, host_exit when patd started that host),
#   group.oom: the kernel's OOM killer ended the group, which dies as one
#     (members: how many members died with it, victim_pid: the process the
#     kernel chose, reason: the kernel's log line), reported once instead
#     of a SIGKILL per member;
#   events.missed: this reader fell behind and lost `missed` events here.
# A reader that stops reading never slows patd: its queue is bounded
# (patd --event-queue-length).
method Events(group: ?string)
    -> (event: string, time: string, group: ?string, owner_uid: ?int, host_pid: ?int, member: ?io.pat.Member,
        exit: ?io.pat.Exit, attach: ?io.pat.Attach, host_exit: ?HostExit, reason: ?string, error: ?string, program: ?string,
        members: ?int, victim_pid: ?int, missed: ?int)
)";

constexpr std::string_view kGroupIdl = R"(# Groups: one shared address space each, owned by the uid that created it.
# Only the owner and root may see or act on a group.
interface io.pat.Group

# Starts the group's host process, running as the caller's uid, gid and
# supplementary groups, without capabilities.
method Create(name: string, allow_cross_mapping: ?bool) -> (group: io.pat.Group)
# The caller's groups (every group, for root).
method List() -> (groups: []io.pat.Group)
method Show(name: string) -> (group: io.pat.Group)
# Refuses with GroupBusy while members run, unless force: then SIGTERM,
# grace_ms (default 5000) and SIGKILL.
method Destroy(name: string, force: ?bool, grace_ms: ?int) -> ()
# Moves running processes into the group (docs/attach.md). Each must run
# with the owner's uids and gids, without more capabilities, untraced, and
# not be PID 1 or in a group. All or none: a refusal of one attaches none.
# Either name or new_group (a new group, removed when its last member ends)
# must be given. env: what a launched member's environment gets from the
# group ("PAT_GROUP=...", "PAT_ARENA=..."); an attached process keeps its
# own environment (pat.join() adds these).
method Attach(name: ?string, new_group: ?bool, pids: []int) -> (group: string, attached: []io.pat.Attach, env: []string)
)";

constexpr std::string_view kMemberIdl = R"(# Members: programs running inside a group's address space.
interface io.pat.Member

# Call with "more": true and exactly three file descriptors (stdin, stdout,
# stderr) passed with SCM_RIGHTS. The first reply (continues) carries the
# member's pid; the last carries exit_code or signal. With detach, the first
# reply is the last. Either group or new_group (a group removed when the
# member ends) must be given. program and cwd are absolute paths; cwd
# defaults to /, umask to 022. rlimits maps names such as "NOFILE" to
# [soft, hard]; -1 means unlimited. argv and env too big for a message go
# as {"argv", "env"} JSON in a sealed memfd passed as a fourth descriptor,
# with arguments_in_fd instead of argv and env. With stopped, the member
# stops itself (SIGSTOP) just before its program's first instruction, and
# the first reply comes once it is stopped: attach a debugger or tracer,
# then SIGCONT it. The last reply's core fields are those of io.pat.Exit.
method Run(group: ?string, new_group: ?bool, program: string, argv: ?[]string, env: ?[]string,
           arguments_in_fd: ?bool, cwd: ?string, umask: ?int, rlimits: ?[string][]int, detach: ?bool,
           stopped: ?bool)
    -> (pid: int, group: string, exit_code: ?int, signal: ?int, core_dumped: ?bool, core_file: ?string,
        core_truncated: ?bool, core_error: ?string)
method Signal(group: string, pid: int, signal: int) -> ()
)";

constexpr std::string_view kHostIdl = R"(# Private link between patd and one group's host (pat-host). The host runs
# with the owner's credentials; patd treats everything it says as untrusted.
interface io.pat.Host

# How the host answered one kind of rerouted syscall (seccomp user
# notifications): calls, the sum of their service times, and a histogram
# of them: buckets[i] calls took at most le_seconds[i] (cumulative, as
# Prometheus counts; calls is the +Inf bucket). For patd's metrics.
type SyscallService (syscall: string, calls: int, seconds: float, le_seconds: []float, buckets: []int)

# The group with usage, and the syscalls rerouted so far that were answered
# at least once.
method Describe() -> (group: io.pat.Group, syscalls: []SyscallService)
# Streams: first the group, then one reply per event (member.start,
# member.attach, member.exec, member.exit) with the member, how it ended
# (exit, for member.exit), how it came in (attach, for member.attach) and
# the group.
method Watch() -> (group: ?io.pat.Group, event: ?string, member: ?io.pat.Member, exit: ?io.pat.Exit,
                   attach: ?io.pat.Attach)
# io.pat.Member.Run's request, without where to run.
method Spawn(program: string, argv: ?[]string, env: ?[]string, arguments_in_fd: ?bool, cwd: ?string,
             umask: ?int, rlimits: ?[string][]int, detach: ?bool, stopped: ?bool)
    -> (pid: int, exit_code: ?int, signal: ?int, core_dumped: ?bool, core_file: ?string, core_truncated: ?bool,
        core_error: ?string)
method Signal(pid: int, signal: int) -> ()
method Shutdown(force: ?bool, grace_ms: ?int) -> ()
# io.pat.Group.Attach's work, for a caller patd has authorised.
method Attach(pids: []int) -> (attached: []io.pat.Attach, env: []string)
)";

constexpr std::array kDaemonInterfaces = {
    InterfaceDescription{"org.varlink.service", kVarlinkServiceIdl},
    InterfaceDescription{"io.pat", kPatIdl},
    InterfaceDescription{"io.pat.Daemon", kDaemonIdl},
    InterfaceDescription{"io.pat.Group", kGroupIdl},
    InterfaceDescription{"io.pat.Member", kMemberIdl},
};

constexpr std::array kHostInterfaces = {
    InterfaceDescription{"org.varlink.service", kVarlinkServiceIdl},
    InterfaceDescription{"io.pat", kPatIdl},
    InterfaceDescription{"io.pat.Host", kHostIdl},
};

}  // namespace

std::span<const InterfaceDescription> daemon_interfaces() { return kDaemonInterfaces; }
std::span<const InterfaceDescription> host_interfaces() { return kHostInterfaces; }

std::optional<InterfaceDescription> find_interface(std::span<const InterfaceDescription> interfaces,
                                                   std::string_view name) {
  for (const auto& interface : interfaces) {
    if (interface.name == name) return interface;
  }
  return std::nullopt;
}

bool interface_declares_method(const InterfaceDescription& interface, std::string_view method_name) {
  // IDL lines read "method Name(" at the start of a line.
  std::string needle = "\nmethod ";
  needle += method_name;
  needle += '(';
  return interface.description.find(needle) != std::string_view::npos;
}

}  // namespace pat::proto
