// The methods pat speaks, and their varlink interface descriptions (served by
// org.varlink.service.GetInterfaceDescription). Two audiences:
//  - the public API of patd (io.pat.Daemon, io.pat.Group, io.pat.Member),
//    used by patctl, the Python package and dashboards;
//  - the private link between patd and a group's host (io.pat.Host), spoken on
//    <runtime-dir>/groups/<name>/host.sock.
#pragma once

#include <optional>
#include <span>
#include <string_view>

namespace pat::proto {

namespace method {
// org.varlink.service
inline constexpr std::string_view kGetInfo = "org.varlink.service.GetInfo";
inline constexpr std::string_view kGetInterfaceDescription = "org.varlink.service.GetInterfaceDescription";
// io.pat.Daemon
inline constexpr std::string_view kDaemonStatus = "io.pat.Daemon.Status";
inline constexpr std::string_view kDaemonEvents = "io.pat.Daemon.Events";
// io.pat.Group
inline constexpr std::string_view kGroupCreate = "io.pat.Group.Create";
inline constexpr std::string_view kGroupList = "io.pat.Group.List";
inline constexpr std::string_view kGroupShow = "io.pat.Group.Show";
inline constexpr std::string_view kGroupDestroy = "io.pat.Group.Destroy";
inline constexpr std::string_view kGroupAttach = "io.pat.Group.Attach";
// io.pat.Member
inline constexpr std::string_view kMemberRun = "io.pat.Member.Run";
inline constexpr std::string_view kMemberSignal = "io.pat.Member.Signal";
// io.pat.Host (patd <-> pat-host only)
inline constexpr std::string_view kHostDescribe = "io.pat.Host.Describe";
inline constexpr std::string_view kHostWatch = "io.pat.Host.Watch";
inline constexpr std::string_view kHostSpawn = "io.pat.Host.Spawn";
inline constexpr std::string_view kHostSignal = "io.pat.Host.Signal";
inline constexpr std::string_view kHostShutdown = "io.pat.Host.Shutdown";
inline constexpr std::string_view kHostAttach = "io.pat.Host.Attach";
}  // namespace method

struct InterfaceDescription {
  std::string_view name;         // e.g. "io.pat.Group"
  std::string_view description;  // varlink IDL text
};

// Interfaces patd serves (GetInfo lists these).
std::span<const InterfaceDescription> daemon_interfaces();
// Interfaces a group host serves.
std::span<const InterfaceDescription> host_interfaces();

std::optional<InterfaceDescription> find_interface(std::span<const InterfaceDescription> interfaces,
                                                   std::string_view name);

// Whether the IDL of `interface` declares `method_name` (the part after the
// last dot). Used to tell MethodNotFound from MethodNotImplemented.
bool interface_declares_method(const InterfaceDescription& interface, std::string_view method_name);

}  // namespace pat::proto
