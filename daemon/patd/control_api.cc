#include "daemon/patd/control_api.h"

#include "base/log.h"
#include "proto/group_object.h"
#include "proto/interface.h"
#include "proto/params.h"
#include "proto/defaults.h"
#include "proto/exit_status.h"
#include "proto/rlimits.h"
#include "proto/run_request.h"

#include <spdlog/spdlog.h>

#include <csignal>

namespace pat::patd {

using proto::ErrorCode;
using proto::ErrorReply;
using proto::json;
using proto::ParamReader;

namespace {

constexpr std::chrono::milliseconds kSpawnTimeout{30'000};

// Who a host started for this caller runs as, with which limits. Without the
// caller's limits (the process that connected has exited) patd cannot know
// what it may give: it refuses rather than give its own.
HostCredentials credentials_of(const rpc::PeerCredentials& peer) {
  if (peer.rlimits.empty()) {
    throw ErrorReply(ErrorCode::PermissionDenied,
                     "the process that connected has exited: its resource limits, which bound the group's, are unknown");
  }
  return {peer.uid, peer.gid, peer.groups, peer.rlimits};
}

// The final Run reply: the first one plus how the member ended, which the
// host must say (proto/exit_status.h).
json with_exit_status(json reply, const json& ended, const std::string& group) {
  auto status = proto::ExitStatus::from_json(ended);
  if (!status) throw host_unavailable(group, "final spawn reply without exit_code or signal");
  status->write_json(reply);
  return reply;
}

}  // namespace

void ControlApi::register_methods(rpc::Service& service) {
  service.add_method(proto::method::kDaemonStatus, this, &ControlApi::daemon_status);
  service.add_method(proto::method::kGroupCreate, this, &ControlApi::group_create);
  service.add_method(proto::method::kGroupList, this, &ControlApi::group_list);
  service.add_method(proto::method::kGroupShow, this, &ControlApi::group_show);
  service.add_method(proto::method::kGroupDestroy, this, &ControlApi::group_destroy);
  service.add_method(proto::method::kMemberRun, this, &ControlApi::member_run);
  service.add_method(proto::method::kMemberSignal, this, &ControlApi::member_signal);
}

std::shared_ptr<Group> ControlApi::authorized_group(const rpc::PeerCredentials& peer, const std::string& name) const {
  auto group = registry_.find(name);
  if (!group) throw ErrorReply(ErrorCode::GroupNotFound, "no group named " + name, {{"name", name}});
  if (!peer.is_root() && peer.uid != group->owner_uid) {
    spdlog::warn("event=access.denied group={} peer_uid={} peer_pid={}", name, peer.uid, peer.pid);
    throw ErrorReply(ErrorCode::PermissionDenied, "group " + name + " belongs to another user");
  }
  return group;
}

asio::awaitable<void> ControlApi::daemon_status(rpc::CallContext& call) {
  std::chrono::duration<double> uptime = std::chrono::steady_clock::now() - facts_.started;
  std::size_t visible = 0;
  for (const auto& group : registry_.all()) {
    if (call.peer().is_root() || group->owner_uid == call.peer().uid) ++visible;
  }
  call.reply({{"version", facts_.version},
              {"pid", ::getpid()},
              {"uptime_seconds", uptime.count()},
              {"groups", visible},
              {"connections", facts_.server ? facts_.server->connections() : 0},
              {"runtime_dir", facts_.runtime_dir}});
  co_return;
}

asio::awaitable<void> ControlApi::group_create(rpc::CallContext& call) {
  ParamReader params(call.params());
  auto name = params.string("name");
  CreateOptions options;
  options.allow_cross_mapping = params.boolean("allow_cross_mapping", false);
  auto group = co_await registry_.create(name, credentials_of(call.peer()), options);
  call.reply({{"group", group->to_json()}});
}

asio::awaitable<void> ControlApi::group_list(rpc::CallContext& call) {
  json groups = json::array();
  for (const auto& group : registry_.all()) {
    if (call.peer().is_root() || group->owner_uid == call.peer().uid) groups.push_back(group->to_json());
  }
  call.reply({{"groups", groups}});
  co_return;
}

asio::awaitable<void> ControlApi::group_show(rpc::CallContext& call) {
  auto group = authorized_group(call.peer(), ParamReader(call.params()).string("name"));
  if (group->state == Group::State::Running) group->snapshot = co_await group->link.describe();
  call.reply({{"group", group->to_json()}});
}

asio::awaitable<void> ControlApi::group_destroy(rpc::CallContext& call) {
  ParamReader params(call.params());
  auto group = authorized_group(call.peer(), params.string("name"));
  bool force = params.boolean("force", false);
  auto grace = std::chrono::milliseconds(params.optional_integer("grace_ms", 0, proto::kLongestGrace.count())
                                             .value_or(proto::kDefaultGrace.count()));
  co_await registry_.destroy(group, force, grace);
  spdlog::info("event=group.destroyed group={} by_uid={} force={}", group->name, call.peer().uid, force);
  call.reply();
}

// Run: the caller's stdio travel to the host with the spawn request. Until the
// member ends, this call streams; if the caller disconnects, closing the
// host's spawn connection makes the host send the member SIGHUP.
asio::awaitable<void> ControlApi::member_run(rpc::CallContext& call) {
  ParamReader params(call.params());
  if (!call.call().more && !params.boolean("detach", false)) {
    throw ErrorReply(ErrorCode::ExpectedMore, "io.pat.Member.Run streams replies: call it with \"more\": true");
  }
  // Checked here, so a malformed call never reaches a host.
  auto request = proto::RunRequest::parse(call.params());
  request.check_descriptors(call.fds().size());
  // Whatever the request says, the member gets at most the caller's limits.
  request.rlimits = proto::within_limits(request.rlimits, credentials_of(call.peer()).rlimits);
  std::shared_ptr<Group> group;
  if (request.new_group) {
    group = co_await registry_.create(registry_.ephemeral_name(), credentials_of(call.peer()),
                                      CreateOptions{.ephemeral = true});
  } else {
    group = authorized_group(call.peer(), params.string("group"));
  }
  if (group->state != Group::State::Running) {
    throw ErrorReply(ErrorCode::GroupBusy, "group " + group->name + " is being destroyed",
                     {{"name", group->name}, {"members", 0}});
  }

  auto spawn = co_await group->link.stream(proto::method::kHostSpawn, request.for_host().to_json(),
                                           std::move(call.fds()));
  auto started = co_await spawn.next(kSpawnTimeout);
  auto pid = started.find("pid");
  if (pid == started.end() || !pid->is_number_integer()) {
    spawn.close();
    throw host_unavailable(group->name, "spawn reply without a pid");
  }
  json first = {{"pid", *pid}, {"group", group->name}};
  if (request.detach || spawn.finished()) {
    spawn.close();
    call.reply(first);
    co_return;
  }
  call.stream(first);
  // If our caller goes away, hanging up on the host makes it send the
  // member SIGHUP.
  spawn.close_on(call.disconnect());
  std::optional<ErrorReply> failure;
  json ended;
  try {
    ended = co_await spawn.next(std::nullopt);
  } catch (const ErrorReply& e) {
    failure = e;
  }
  spawn.close();
  if (call.disconnect().fired()) co_return;  // nobody left to tell
  if (failure) throw *failure;
  call.reply(with_exit_status(first, ended, group->name));
}

asio::awaitable<void> ControlApi::member_signal(rpc::CallContext& call) {
  ParamReader params(call.params());
  auto group = authorized_group(call.peer(), params.string("group"));
  auto pid = params.integer("pid", 1, std::numeric_limits<pid_t>::max());
  auto signal = params.integer("signal", 1, SIGRTMAX);
  // Built before the co_await: GCC 12 rejects a braced initializer in the same
  // full-expression as a co_await ("array used as initializer").
  json request = {{"pid", pid}, {"signal", signal}};
  co_await group->link.call(proto::method::kHostSignal, std::move(request));
  call.reply();
}

}  // namespace pat::patd
