// The public API of patd (io.pat.Daemon, io.pat.Group, io.pat.Member): reads
// and checks parameters, decides who may do what, and relays member work to
// the group's host. Authorisation rule: a group belongs to the uid that
// created it; only that uid and root may see or act on it.
#pragma once

#include "daemon/patd/group_registry.h"
#include "daemon/rpc/service.h"
#include "daemon/rpc/unix_server.h"
#include "proto/run_request.h"

#include <chrono>

namespace pat::patd {

struct DaemonFacts {
  std::string version;
  std::chrono::steady_clock::time_point started;
  std::string runtime_dir;
  const rpc::UnixServer* server = nullptr;  // for the connection count
};

class ControlApi {
 public:
  ControlApi(GroupRegistry& registry, EventBus& events, const DaemonFacts& facts)
      : registry_(registry), events_(events), facts_(facts) {}
  void register_methods(rpc::Service& service);

 private:
  asio::awaitable<void> daemon_status(rpc::CallContext& call);
  asio::awaitable<void> daemon_events(rpc::CallContext& call);
  asio::awaitable<void> group_create(rpc::CallContext& call);
  asio::awaitable<void> group_list(rpc::CallContext& call);
  asio::awaitable<void> group_show(rpc::CallContext& call);
  asio::awaitable<void> group_destroy(rpc::CallContext& call);
  asio::awaitable<void> group_attach(rpc::CallContext& call);
  asio::awaitable<void> member_run(rpc::CallContext& call);
  asio::awaitable<void> member_signal(rpc::CallContext& call);

  // The named group if the caller may act on it; GroupNotFound or
  // PermissionDenied otherwise.
  std::shared_ptr<Group> authorized_group(const rpc::PeerCredentials& peer, const std::string& name) const;

  // A launch the host refused, as an event of the group.
  void publish_refusal(const Group& group, const proto::RunRequest& request, const proto::Error& error);

  GroupRegistry& registry_;
  EventBus& events_;
  const DaemonFacts& facts_;
};

}  // namespace pat::patd
