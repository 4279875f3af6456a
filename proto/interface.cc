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
  program: string,
  state: string,
  started: string
)

type Exit (
  pid: int,
  argv: []string,
  exit_code: ?int,
  signal: ?int,
  ended: string
)

type Group (
  name: string,
  owner_uid: int,
  owner_gid: int,
  host_pid: int,
  created: string,
  members: []Member,
  recent_exits: []Exit
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
error InternalError (reason: string)
)";

constexpr std::string_view kDaemonIdl = R"(# The daemon itself.
interface io.pat.Daemon

method Status() -> (version: string, pid: int, uptime_seconds: float, groups: int, connections: int, runtime_dir: string)
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
)";

constexpr std::string_view kMemberIdl = R"(# Members: programs running inside a group's address space.
interface io.pat.Member

# Call with "more": true and exactly three file descriptors (stdin, stdout,
# stderr) passed with SCM_RIGHTS. The first reply (continues) carries the
# member's pid; the last carries exit_code or signal. With detach, the first
# reply is the last. Either group or new_group (a group removed when the
# member ends) must be given. rlimits maps names such as "NOFILE" to
# [soft, hard]; -1 means unlimited. With stopped, the member stops itself
# (SIGSTOP) just before its program's first instruction, and the first reply
# comes once it is stopped: attach a debugger or tracer, then SIGCONT it.
method Run(group: ?string, new_group: ?bool, program: string, argv: []string, env: []string,
           cwd: string, umask: ?int, rlimits: ?object, detach: ?bool, stopped: ?bool)
    -> (pid: int, group: string, exit_code: ?int, signal: ?int)
method Signal(group: string, pid: int, signal: int) -> ()
)";

constexpr std::string_view kHostIdl = R"(# Private link between patd and one group's host (pat-host). The host runs
# with the owner's credentials; patd treats everything it says as untrusted.
interface io.pat.Host

method Describe() -> (group: io.pat.Group)
# Streams: first the group, then one reply per event (member start, exit, exec).
method Watch() -> (group: ?io.pat.Group, event: ?string, member: ?object)
# Same contract as io.pat.Member.Run, for an absolute program path.
method Spawn(program: string, argv: []string, env: []string, cwd: string, umask: ?int, rlimits: ?object,
             detach: ?bool, stopped: ?bool)
    -> (pid: int, exit_code: ?int, signal: ?int)
method Signal(pid: int, signal: int) -> ()
method Shutdown(force: bool, grace_ms: ?int) -> ()
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
