#include "daemon/patd/control_api.h"

#include "base/log.h"
#include "proto/group_object.h"
#include "proto/interface.h"
#include "proto/params.h"
#include "proto/run_arguments.h"

#include <spdlog/spdlog.h>

#include <csignal>

namespace pat::patd {

using proto::ErrorCode;
using proto::ErrorReply;
using proto::json;
using proto::ParamReader;

namespace {

constexpr std::chrono::milliseconds kDefaultGrace{5'000};
constexpr std::chrono::milliseconds kSpawnTimeout{30'000};

HostCredentials credentials_of(const rpc::PeerCredentials& peer) { return {peer.uid, peer.gid, peer.groups}; }

// The parameters of io.pat.Member.Run that the host needs, checked here so a
// malformed call never reaches a host.
json spawn_parameters(const json& params_object) {
  ParamReader params(params_object);
  auto program = params.c_string("program");
  if (program.empty() || program.front() != '/') {
    throw ErrorReply(ErrorCode::InvalidParameter, "parameter \"program\": expected an absolute path",
                     {{"parameter", "program"}, {"expected", "an absolute path"}});
  }
  auto cwd = params.optional_c_string("cwd").value_or("/");
  if (cwd.empty() || cwd.front() != '/') {
    throw ErrorReply(ErrorCode::InvalidParameter, "parameter \"cwd\": expected an absolute path",
                     {{"parameter", "cwd"}, {"expected", "an absolute path"}});
  }
  json out = {{"program", program}, {"cwd", cwd}};
  // argv and env inline, or in the fourth descriptor, which only the host reads.
  if (proto::arguments_in_descriptor(params_object)) {
    out["arguments_in_fd"] = true;
  } else {
    auto arguments = proto::read_run_arguments(params_object);
    out["argv"] = arguments.argv;
    out["env"] = arguments.env;
  }
  if (auto umask = params.optional_integer("umask", 0, 0777)) out["umask"] = *umask;
  if (const auto* rlimits = params.optional_object("rlimits")) out["rlimits"] = *rlimits;
  out["detach"] = params.boolean("detach", false);
  return out;
}

// Closing the host connection of a Run makes the host send SIGHUP to the
// member. (Set up outside the coroutine: see the note in rpc/asio.h.)
void close_on_disconnect(rpc::DisconnectNotice& notice, std::shared_ptr<rpc::FramedSocket> socket) {
  notice.subscribe([socket = std::move(socket)] { socket->close(); });
}

// The final Run reply: the first one plus how the member ended.
json with_exit_status(json reply, const json& ended) {
  for (const char* key : {"exit_code", "signal"}) {
    if (auto it = ended.find(key); it != ended.end() && it->is_number_integer()) reply[key] = *it;
  }
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
  auto grace = std::chrono::milliseconds(params.optional_integer("grace_ms", 0, 3'600'000).value_or(
      kDefaultGrace.count()));
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
  json spawn = spawn_parameters(call.params());
  proto::check_run_descriptors(call.params(), call.fds().size());
  std::shared_ptr<Group> group;
  if (params.boolean("new_group", false)) {
    group = co_await registry_.create(registry_.ephemeral_name(), credentials_of(call.peer()),
                                      CreateOptions{.ephemeral = true});
  } else {
    group = authorized_group(call.peer(), params.string("group"));
  }
  if (group->state != Group::State::Running) {
    throw ErrorReply(ErrorCode::GroupBusy, "group " + group->name + " is being destroyed",
                     {{"name", group->name}, {"members", 0}});
  }

  proto::Reply started;
  rpc::Connected host;
  try {
    host = co_await group->link.connect();
    rpc::send_call(*host.socket, proto::Call{std::string(proto::method::kHostSpawn), spawn, true},
                   std::move(call.fds()));
    started = co_await rpc::read_reply(host.socket, kSpawnTimeout);
  } catch (const rpc::PeerUnavailable& e) {
    throw host_unavailable(group->name, e.what());
  }
  if (started.error) throw relay_host_error(group->name, *started.error);
  auto pid = started.parameters.find("pid");
  if (pid == started.parameters.end() || !pid->is_number_integer()) {
    throw host_unavailable(group->name, "spawn reply without a pid");
  }
  json first = {{"pid", *pid}, {"group", group->name}};
  if (spawn["detach"].get<bool>() || !started.continues) {
    host.socket->close();
    call.reply(first);
    co_return;
  }
  call.stream(first);
  close_on_disconnect(call.disconnect(), host.socket);

  proto::Reply ended;
  std::optional<std::string> lost;
  try {
    ended = co_await rpc::read_reply(host.socket, std::nullopt);
  } catch (const rpc::PeerUnavailable& e) {
    lost = e.what();
  }
  host.socket->close();
  if (call.disconnect().fired()) co_return;  // nobody left to tell
  if (lost) throw host_unavailable(group->name, "lost while the member ran: " + *lost);
  if (ended.error) throw relay_host_error(group->name, *ended.error);
  call.reply(with_exit_status(first, ended.parameters));
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
