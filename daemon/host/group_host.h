// GroupHost: the work of one group's host process (pat-host), whose address
// space IS the group's shared address space. It launches members into it
// through the supervisor (tracer/member_supervisor.h), hears from it when
// they exec and exit, signals them, shuts the group down, and ends an
// ephemeral group's host once its member is gone. What it says about the
// group is GroupDescription's, who hears about it EventFeed's, and the data
// plane GroupArena's. Runs with the owner's credentials and no capabilities.
#pragma once

#include "daemon/host/event_feed.h"
#include "daemon/host/group_arena.h"
#include "daemon/host/group_description.h"
#include "daemon/host/host_config.h"
#include "daemon/host/attach_refusal.h"
#include "daemon/host/launch_refusal.h"
#include "daemon/host/member.h"
#include "daemon/rpc/asio.h"
#include "proto/run_request.h"
#include "tracer/debugger_interface.h"
#include "tracer/member_supervisor.h"

#include <array>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>

namespace pat::host {

class GroupHost : private tracer::MemberObserver {
 public:
  GroupHost(asio::io_context& io, HostConfig config, std::function<void()> request_exit);
  // Ends the members still running before the arena they may be using goes.
  ~GroupHost() { supervisor_.end_members(); }

  using Detail = GroupDescription::Detail;
  proto::GroupObject describe(Detail detail) const { return description_.describe(detail, shutting_down_); }
  EventFeed& events() { return events_; }
  // Its rerouted syscalls so far (io.pat.Host.Describe's syscalls).
  std::vector<proto::SyscallService> syscall_service() const { return supervisor_.reroute_stats().snapshot(); }

  // Launches a member; throws ErrorReply (launch_refusal.h). `stdio` are
  // borrowed. Call on the event loop's thread, which is the supervising
  // thread.
  std::shared_ptr<Member> spawn(proto::RunRequest request, const std::array<int, 3>& stdio);

  // Moves the running processes `pids` into the group (docs/attach.md), in
  // order, and returns their members with how each attach went. Every pid
  // is checked first, so a refusal /proc can tell attaches none; a later
  // failure stops there (the error names the ones already attached). Throws
  // ErrorReply (attach_refusal.h). On the supervising thread.
  std::vector<std::pair<std::shared_ptr<Member>, proto::AttachEntry>> attach(const std::vector<pid_t>& pids);
  // What every launched member's environment gets from the group (PAT_GROUP,
  // PAT_ARENA when the group has a data plane). An attached process keeps
  // its own environment; the Attach reply carries these so that pat.join()
  // can add them (docs/attach.md "pat.join()").
  std::map<std::string, std::string> member_environment() const;

  // A member that has not been reaped yet (running, leaving or execed), by
  // its pid or, for an attached one, by the original PID its stub keeps.
  std::shared_ptr<Member> find(pid_t pid) const;
  // Throws MemberNotFound for anything that is not our member.
  void signal(pid_t pid, int signal) const;

  // Throws GroupBusy when members are alive and !force.
  void check_shutdown_allowed(bool force) const;
  // SIGTERM to every member's process group, `grace`, SIGKILL, then exit.
  asio::awaitable<void> shut_down(std::chrono::milliseconds grace);

  // An ephemeral group's host exits once nothing runs in it any more: after a
  // refused spawn, and after its last member is reaped (attached or detached).
  void exit_if_ephemeral_and_idle();

 private:
  // tracer::MemberObserver: called by supervisor_.dispatch().
  void releasing(const tracer::SupervisedMember& member) override;
  void member_execed(const tracer::SupervisedMember& member) override;
  void core_completed(const tracer::SupervisedMember& member, const Result<tracer::MemberCore>& core,
                      double seconds) override;
  void member_exited(const tracer::SupervisedMember& member) override;

  // Runs the supervisor whenever it has something to do.
  void watch_supervisor();
  void publish(const char* event, const Member& member, std::optional<proto::ExitEntry> exit = std::nullopt,
               std::optional<proto::AttachEntry> attach = std::nullopt);
  std::shared_ptr<Member> add_member(std::shared_ptr<tracer::SupervisedMember> process, double requested);
  std::optional<ConflictHolder> attach_conflict_holder(const tracer::AttachError& error) const;
  std::optional<ConflictHolder> conflict_holder(const tracer::LaunchError& error) const;
  void note_stale_build(const Member& member);

  asio::io_context& io_;
  HostConfig config_;
  std::function<void()> request_exit_;
  MemberTable members_;
  bool spawned_any_ = false;
  bool shutting_down_ = false;
  bool ephemeral_exit_waits_for_stubs_ = false;  // see exit_if_ephemeral_and_idle()
  tracer::DebuggerInterface debugger_table_;  // what gdb reads to find each member's program
  tracer::MemberSupervisor supervisor_;
  tracer::Attacher attacher_;
  GroupArena arena_;
  GroupDescription description_;
  EventFeed events_;
  asio::posix::stream_descriptor supervisor_events_;  // a dup of supervisor_.event_fd()
};

}  // namespace pat::host
