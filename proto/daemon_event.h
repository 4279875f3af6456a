// DaemonEvent: one reply of io.pat.Daemon.Events, what happened to a group or
// one of its members as patd saw it. Written only here; the IDL declares the
// shape and tests/unit/interface_test.cc holds the two together.
#pragma once

#include "proto/exit_status.h"

#include <nlohmann/json.hpp>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pat::proto {

// The kinds of event (README "Events" and patctl(1) say what each carries).
namespace event {
inline constexpr std::string_view kSubscribed = "events.subscribed";  // first reply: the stream is live
inline constexpr std::string_view kMissed = "events.missed";          // this reader fell behind by `missed`
inline constexpr std::string_view kGroupCreate = "group.create";
inline constexpr std::string_view kGroupDestroy = "group.destroy";
inline constexpr std::string_view kMemberStart = "member.start";
inline constexpr std::string_view kMemberAttach = "member.attach";
inline constexpr std::string_view kMemberExec = "member.exec";
inline constexpr std::string_view kMemberExit = "member.exit";
inline constexpr std::string_view kMemberRefused = "member.refused";
inline constexpr std::string_view kHostDied = "host.died";
inline constexpr std::string_view kGroupOom = "group.oom";
}  // namespace event

struct DaemonEvent {
  // `kind` is one of event::; the time is now.
  explicit DaemonEvent(std::string_view kind, std::string group = {}, std::optional<uid_t> owner_uid = std::nullopt);

  std::string event;
  double time = 0;                       // unix time patd saw it
  std::string group;                     // empty for events.*
  std::optional<uid_t> owner_uid;        // group events
  std::optional<pid_t> host_pid;         // group.create, host.died, group.oom
  std::optional<nlohmann::json> member;  // member.*: an io.pat.Member (checked, see check_member_event)
  std::optional<nlohmann::json> exit;    // member.exit: an io.pat.Exit
  std::optional<nlohmann::json> attach;  // member.attach: an io.pat.Attach
  std::optional<ExitStatus> host_exit;   // host.died, when patd could reap the host
  std::optional<std::string> reason;     // group.destroy, member.refused, group.oom (the kernel's words)
  std::optional<std::string> error;      // member.refused: the error name
  std::optional<std::string> program;    // member.refused: what was asked for
  std::optional<std::uint64_t> members;  // group.oom: members killed with the host
  std::optional<pid_t> victim_pid;       // group.oom: the process the kernel named
  std::optional<std::uint64_t> missed;   // events.missed
  nlohmann::json to_json() const;
};

// A host's io.pat.Host.Watch event reduced to what patd relays: nullopt when
// `reply` is not a well-formed member event (the host is untrusted).
std::optional<DaemonEvent> member_event_from_host(const std::string& group, uid_t owner, const nlohmann::json& reply);

}  // namespace pat::proto
