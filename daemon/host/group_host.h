// GroupHost: the state and the work of one group's host process (pat-host).
// Its address space IS the group's shared address space. It launches members
// into it, answers their rerouted syscalls, reaps them, and tells patd what
// happened. Runs with the owner's credentials and no capabilities.
#pragma once

#include "daemon/host/launch_refusal.h"
#include "daemon/host/member.h"
#include "proto/run_request.h"
#include "daemon/rpc/asio.h"
#include "libpat/src/arena_host.h"
#include "tracer/member_supervisor.h"

#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

namespace pat::host {

struct HostConfig {
  std::string group;
  std::string group_dir;
  bool ephemeral = false;            // exit once the member(s) have ended
  bool allow_cross_mapping = false;  // members may map over each other's memory
};

class GroupHost : private tracer::MemberObserver {
 public:
  GroupHost(asio::io_context& io, HostConfig config, std::function<void()> request_exit);

  enum class Detail { Summary, WithUsage };
  proto::GroupObject describe(Detail detail) const;

  // Launches a member; throws ErrorReply (launch_refusal.h). `stdio` are
  // borrowed. Call on the event loop's thread, which is the supervising
  // thread.
  std::shared_ptr<Member> spawn(proto::RunRequest request, const std::array<int, 3>& stdio);

  // A member that has not been reaped yet (running, leaving or execed).
  std::shared_ptr<Member> find(pid_t pid) const;
  // Throws MemberNotFound for anything that is not our member.
  void signal(pid_t pid, int signal) const;

  // Throws GroupBusy when members are alive and !force.
  void check_shutdown_allowed(bool force) const;
  // SIGTERM to every member's process group, `grace`, SIGKILL, then exit.
  asio::awaitable<void> shut_down(std::chrono::milliseconds grace);

  using Watcher = std::function<void(const nlohmann::json& event)>;
  std::uint64_t add_watcher(Watcher watcher);
  void remove_watcher(std::uint64_t id);

  // An ephemeral group's host exits once nothing runs in it any more: after a
  // refused spawn, and after its last member is reaped (attached or detached).
  void exit_if_ephemeral_and_idle();

 private:
  // tracer::MemberObserver: called by supervisor_.dispatch().
  void releasing(const tracer::SupervisedMember& member) override;
  void member_execed(const tracer::SupervisedMember& member) override;
  void member_exited(const tracer::SupervisedMember& member) override;

  // Runs the supervisor whenever it has something to do.
  void watch_supervisor();
  // The data plane (libpat/src/arena_host.h): maps the group's arena; and
  // what a member held there is released when it ends, retried on a timer
  // while a live member holds a lock the cleanup needs.
  void create_arena();
  void retry_arena_cleanup_later();
  proto::MemoryEntry address_space() const;
  void publish(const char* event, const Member& member, std::optional<proto::ExitEntry> exit = std::nullopt);
  std::optional<ConflictHolder> conflict_holder(const tracer::LaunchError& error) const;

  asio::io_context& io_;
  HostConfig config_;
  std::function<void()> request_exit_;
  double created_;
  std::unique_ptr<dataplane::ArenaHost> arena_;  // null when it could not be mapped
  asio::steady_timer arena_retry_;
  std::map<pid_t, std::shared_ptr<Member>> members_;  // not yet reaped
  std::deque<proto::ExitEntry> recent_exits_;         // oldest first
  std::map<std::uint64_t, Watcher> watchers_;
  std::uint64_t next_watcher_ = 1;
  bool spawned_any_ = false;
  bool shutting_down_ = false;
  // After the arena: destroyed before it, so no member outlives the memory
  // it may be using.
  tracer::MemberSupervisor supervisor_;
  asio::posix::stream_descriptor supervisor_events_;  // a dup of supervisor_.event_fd()
};

}  // namespace pat::host
