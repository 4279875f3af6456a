// GroupHost: the state and the work of one group's host process (pat-host).
// Its address space IS the group's shared address space. It launches members
// into it, answers their rerouted syscalls, reaps them, and tells patd what
// happened. Runs with the owner's credentials and no capabilities.
#pragma once

#include "daemon/host/member.h"
#include "daemon/host/syscall_servers.h"
#include "daemon/rpc/asio.h"
#include "libpat/src/arena_host.h"
#include "tracer/debugger_interface.h"
#include "tracer/shared_address_space.h"

#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

namespace pat::host {

// A member's core, as the core writer's thread reports it (empty path: error).
struct WrittenCore {
  std::string path;
  std::uint64_t bytes = 0;
  std::size_t threads = 0;
  bool truncated = false;
  std::string error;
};

struct HostConfig {
  std::string group;
  std::string group_dir;
  bool ephemeral = false;            // exit once the member(s) have ended
  bool allow_cross_mapping = false;  // members may map over each other's memory
};

class GroupHost {
 public:
  GroupHost(asio::io_context& io, HostConfig config, std::function<void()> request_exit);

  enum class Detail { Summary, WithUsage };
  nlohmann::json describe(Detail detail) const;
  nlohmann::json address_space_json() const;

  // Launches a member; throws ErrorReply (ProgramNotFound, ProgramNotExecutable,
  // AddressConflict, InternalError). `spec.stdio` are borrowed.
  std::shared_ptr<Member> spawn(tracer::LaunchSpec spec, bool detached);

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
  asio::awaitable<void> await_exit(std::shared_ptr<Member> member);
  asio::awaitable<void> confirm_exec(std::shared_ptr<Member> member);
  asio::awaitable<void> complete_core(Member& member, int signal, ExitStatus& status);
  void reclaim(Member& member);
  // The data plane (libpat/src/arena_host.h): maps the group's arena; and
  // what a member held there is released when it ends, retried on a timer
  // while a live member holds a lock the cleanup needs.
  void create_arena();
  void release_in_arena(const Member& member);
  void retry_arena_cleanup_later();
  void publish(const char* event, const Member& member, nlohmann::json extra = nlohmann::json::object());
  void signal_process_group(const Member& member, int signal) const;
  [[noreturn]] void throw_launch_error(const tracer::LaunchError& error, const tracer::LaunchSpec& spec) const;

  asio::io_context& io_;
  HostConfig config_;
  std::function<void()> request_exit_;
  double created_;
  tracer::MemberLauncher launcher_;
  tracer::SharedAddressSpace space_;
  tracer::DebuggerInterface debugger_table_;  // what gdb reads to find each member's program
  std::uint32_t member_core_filter_;          // the coredump_filter members' cores follow (the group's is 0)
  asio::thread_pool core_writer_{1};          // writes crashed members' cores off the event loop
  std::unique_ptr<dataplane::ArenaHost> arena_;  // null when it could not be mapped
  asio::steady_timer arena_retry_;
  std::map<pid_t, std::shared_ptr<Member>> members_;  // not yet reaped
  std::deque<nlohmann::json> recent_exits_;           // oldest first
  std::map<std::uint64_t, Watcher> watchers_;
  std::uint64_t next_watcher_ = 1;
  bool spawned_any_ = false;
  bool shutting_down_ = false;
  // The group lock (syscall_servers.h): held by a syscall server while it
  // answers, and here wherever the ledger, pins or a member's brk are read
  // or changed. Everything else is the event loop's alone.
  mutable std::mutex group_lock_;
  // Last: destroyed first, so no server thread outlives what it uses.
  SyscallServers servers_;
};

}  // namespace pat::host
