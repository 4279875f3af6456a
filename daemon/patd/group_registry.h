// GroupRegistry: patd's table of live groups. patd is not the source of truth
// for a group — its host is — so the registry holds, per group, only what patd
// verified itself (owner from the directory and SO_PEERCRED, host pid, the
// pidfd) plus the host's latest description, kept fresh by a Watch stream.
// Groups are found again after a restart by their host sockets.
#pragma once

#include "base/unique_fd.h"
#include "daemon/patd/event_bus.h"
#include "daemon/patd/host_launcher.h"
#include "daemon/patd/host_link.h"
#include "daemon/patd/runtime_dir.h"
#include "daemon/rpc/one_shot_event.h"

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>

namespace pat::patd {

struct Group {
  enum class State { Starting, Running, Destroying };

  Group(asio::any_io_executor executor, std::string name, uid_t owner_uid, gid_t owner_gid, std::string socket_path)
      : name(name), owner_uid(owner_uid), owner_gid(owner_gid), link(name, std::move(socket_path), owner_uid),
        exited(executor), watching(executor) {}

  const std::string name;
  const uid_t owner_uid;
  const gid_t owner_gid;
  pid_t host_pid = 0;
  UniqueFd host_pidfd;
  bool host_is_child = false;  // started by this patd: it reaps the host
  bool ephemeral = false;
  State state = State::Starting;
  bool announced = false;  // group.create (or rediscovery) happened: its end is an event
  // Since when patd knows this group: older kernel log lines about its pids
  // are about other processes (oom_kill_log.h).
  std::chrono::steady_clock::time_point known_since = std::chrono::steady_clock::now();
  nlohmann::json snapshot;  // the host's last checked description
  HostLink link;
  rpc::OneShotEvent exited;
  rpc::OneShotEvent watching;  // the host's Watch stream is open: no member event is missed from here on

  // The snapshot with the fields patd vouches for written over the host's.
  nlohmann::json to_json() const;
};

struct CreateOptions {
  bool ephemeral = false;
  bool allow_cross_mapping = false;
};

class GroupRegistry {
 public:
  // Group and member events go to `events`.
  GroupRegistry(asio::io_context& io, RuntimeDir runtime, std::string host_binary, EventBus& events);

  // Finds the groups whose hosts outlived a previous patd.
  asio::awaitable<void> discover();

  asio::awaitable<std::shared_ptr<Group>> create(const std::string& name, const HostCredentials& owner,
                                                 CreateOptions options);
  // Throws GroupBusy when members run and !force.
  asio::awaitable<void> destroy(std::shared_ptr<Group> group, bool force, std::chrono::milliseconds grace);

  std::shared_ptr<Group> find(const std::string& name) const;  // nullptr when absent
  std::vector<std::shared_ptr<Group>> all() const;
  std::size_t size() const { return groups_.size(); }

  // A fresh name for an ephemeral group.
  std::string ephemeral_name();

 private:
  asio::awaitable<void> wait_until_ready(Group& group, UniqueFd ready);
  void start_watching(std::shared_ptr<Group> group);
  asio::awaitable<void> watch_events(std::shared_ptr<Group> group);
  asio::awaitable<void> watch_exit(std::shared_ptr<Group> group);
  asio::awaitable<void> adopt(RuntimeDir::GroupDirEntry entry);
  void forget(const std::shared_ptr<Group>& group, const char* why);
  asio::awaitable<void> report_host_end(std::shared_ptr<Group> group, std::optional<proto::ExitStatus> status);
  proto::DaemonEvent group_event(std::string_view kind, const Group& group) const;

  asio::io_context& io_;
  RuntimeDir runtime_;
  std::string host_binary_;
  EventBus& events_;
  std::map<std::string, std::shared_ptr<Group>> groups_;
  unsigned ephemeral_counter_ = 0;
};

}  // namespace pat::patd
