// The JSON shape of a group as patd returns it (README "JSON shapes"),
// written only by the types here (the host fills them; io.pat's IDL
// declares them, and tests/unit/interface_test.cc holds the two together),
// and the checks patd applies to what a host reports: a host runs with its
// owner's privileges and may have been tampered with by its members, so its
// description is validated before patd relays or relies on it.
#pragma once

#include "proto/exit_status.h"

#include <nlohmann/json.hpp>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pat::proto {

// io.pat.Member: one member in a group's description.
struct MemberEntry {
  pid_t pid = 0;
  std::vector<std::string> argv;
  std::string program;  // the file mapped (after #!), canonical
  std::string state;    // running, leaving, execed
  bool detached = false;
  double started = 0;  // unix time the spawn (or the attach) was asked for
  // launched (by Run), or attached (a running process moved in by
  // Group.Attach, docs/attach.md): then also the process's own PID, which
  // its stub keeps (so original_pid and stub_pid are the same number).
  std::string origin = "launched";
  std::optional<pid_t> original_pid, stub_pid;
  // With usage only (Group.Show): its own CPU time and threads, and the
  // memory it owns in the ledger.
  std::optional<double> cpu_seconds;
  std::optional<int> threads;
  std::optional<std::uint64_t> mapped_bytes, resident_bytes;
  // With usage: its scheduling state (/proc/PID/stat's letter: R, S, T...)
  // and working directory, which are its own (ps cannot show the latter).
  std::optional<std::string> process_state, cwd;
  nlohmann::json to_json() const;
};

// io.pat.Attach: one process moved into the group (Group.Attach's reply and
// the member.attach event).
struct AttachEntry {
  pid_t pid = 0;           // the member's
  pid_t original_pid = 0;  // the process's, kept by its stub
  double stopped_seconds = 0;  // how long the program did not run
  double total_seconds = 0;
  std::uint64_t bytes_copied = 0;          // in all
  std::uint64_t bytes_copied_stopped = 0;  // of which while stopped
  int threads = 0, fds = 0;
  nlohmann::json to_json() const;
};

// io.pat.Exit: one of recent_exits.
struct ExitEntry {
  pid_t pid = 0;
  std::vector<std::string> argv;
  std::string program;
  ExitStatus status;
  double ended = 0;  // unix time
  double duration_seconds = 0;
  nlohmann::json to_json() const;
};

// io.pat.Arena: the data plane's figures (libpat's ArenaStats).
struct ArenaEntry {
  std::uint64_t size_bytes = 0, members = 0, members_ending = 0, channels = 0, buffers = 0, buffer_bytes = 0,
                retained_free_bytes = 0, discarded_bytes = 0, owed_frees = 0, allocator_owner_deaths = 0;
  bool allocator_damaged = false;
  nlohmann::json to_json() const;
};

// io.pat.Memory: per address space, i.e. the whole group's; empty without
// usage (Group.List).
struct MemoryEntry {
  std::optional<std::uint64_t> rss_bytes, pss_bytes, size_bytes, pinned_regions;
  std::optional<ArenaEntry> arena;
  nlohmann::json to_json() const;
};

// io.pat.StaleBuild: a program's non-PIC build the host passed over because
// an update changed what it was linked from (tracer/nonpic_build.h); its
// members run the program itself. `group` is set in Daemon.Status only.
struct StaleBuildEntry {
  std::string build;
  std::string reason;
  std::optional<std::string> group;
  nlohmann::json to_json() const;
};

// io.pat.Group.
struct GroupObject {
  std::string name;
  uid_t owner_uid = 0;
  gid_t owner_gid = 0;
  pid_t host_pid = 0;
  double created = 0;  // unix time
  std::string state;   // starting, running, destroying
  bool ephemeral = false;
  bool allow_cross_mapping = false;
  std::vector<MemberEntry> members;
  std::vector<ExitEntry> recent_exits;  // newest first
  std::vector<StaleBuildEntry> stale_builds;
  MemoryEntry memory;
  nlohmann::json to_json() const;
};

// One reply of io.pat.Host.Watch after the first: what happened to which
// member (with how it ended, for member.exit), and the group as it is now.
struct MemberEvent {
  std::string event;  // member.start, member.attach, member.exec, member.exit
  MemberEntry member;
  std::optional<ExitEntry> exit;
  GroupObject group;
  std::optional<AttachEntry> attach;  // member.attach
  nlohmann::json to_json() const;
};

// [A-Za-z0-9_.-]{1,64}, and not "." or ".." (names become directory names).
bool is_valid_group_name(std::string_view name);

// nullopt when `group` has the required fields with the right types:
// name, owner_uid, owner_gid, host_pid, created, members[] (pid, argv, state),
// recent_exits[], and stale_builds[] (build, reason) if present. Otherwise
// what is wrong, for the log.
std::optional<std::string> check_group_object(const nlohmann::json& group);

// nullopt when `entry` (a members or recent_exits entry, named by `list`
// in the message) has a numeric pid and argv.
std::optional<std::string> check_process_entry(const nlohmann::json& entry, const char* list);

// Member count of a checked group object.
std::size_t member_count(const nlohmann::json& group);

// The current time as the group object keeps times: unix seconds.
double unix_now();

// UTC timestamp in RFC 3339 form, e.g. "2026-11-27T10:00:00.123Z".
std::string rfc3339_utc(double unix_seconds);

}  // namespace pat::proto
