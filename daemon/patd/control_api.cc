#include "daemon/patd/control_api.h"

#include "base/log.h"
#include "proto/daemon_event.h"
#include "proto/group_object.h"
#include "proto/interface.h"
#include "proto/params.h"
#include "proto/defaults.h"
#include "proto/exit_status.h"
#include "proto/rlimits.h"
#include "proto/run_request.h"

#include <algorithm>
#include <spdlog/spdlog.h>

#include <csignal>

namespace pat::patd {

using proto::ErrorCode;
using proto::ErrorReply;
using proto::json;
using proto::ParamReader;

namespace {

constexpr std::chrono::milliseconds kSpawnTimeout{30'000};
// An event stream stops taking events from its queue while this much of
// its replies waits to be read: the queue, bounded, absorbs the rest
// (event_bus.h), never patd's memory.
constexpr std::size_t kEventBacklogBytes = 64 << 10;
// An attach copies the processes' memory (about 1.5 s per GiB here,
// docs/attach.md) while the host answers nothing else.
constexpr std::chrono::milliseconds kAttachTimeout{120'000};

// Who a host started for this caller runs as, with which limits. Without the
// caller's limits (the process that connected has exited) patd cannot know
// what it may give: it refuses rather than give its own.
HostCredentials credentials_of(const rpc::PeerCredentials& peer) {
  if (peer.rlimits.empty()) {
    throw ErrorReply(ErrorCode::PermissionDenied,
                     "the process that connected has exited: its resource limits, which bound the group's, are unknown");
  }
  // Also within patd's own hard limits: raising one above them would need
  // CAP_SYS_RESOURCE, which patd may not have (a confined root).
  return {peer.uid, peer.gid, peer.groups, proto::within_limits(peer.rlimits, proto::current_rlimits())};
}

// An ordinary function, not a lambda in the coroutine: see rpc/asio.h.
void close_on_disconnect(rpc::DisconnectNotice& notice, std::shared_ptr<EventSubscription> subscription) {
  notice.subscribe([subscription = std::move(subscription)] { subscription->close(); });
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
  service.add_method(proto::method::kDaemonEvents, this, &ControlApi::daemon_events);
  service.add_method(proto::method::kGroupCreate, this, &ControlApi::group_create);
  service.add_method(proto::method::kGroupList, this, &ControlApi::group_list);
  service.add_method(proto::method::kGroupShow, this, &ControlApi::group_show);
  service.add_method(proto::method::kGroupDestroy, this, &ControlApi::group_destroy);
  service.add_method(proto::method::kGroupAttach, this, &ControlApi::group_attach);
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
  json stale_builds = json::array();
  for (const auto& group : registry_.all()) {
    if (!call.peer().is_root() && group->owner_uid != call.peer().uid) continue;
    ++visible;
    // From the host's last description (kept fresh by its Watch stream),
    // checked by proto::check_group_object when it arrived.
    if (!group->snapshot.is_object()) continue;
    for (const auto& stale : group->snapshot.value("stale_builds", json::array())) {
      stale_builds.push_back(proto::StaleBuildEntry{stale["build"], stale["reason"], group->name}.to_json());
    }
  }
  call.reply({{"version", facts_.version},
              {"pid", ::getpid()},
              {"uptime_seconds", uptime.count()},
              {"groups", visible},
              {"connections", facts_.server ? facts_.server->connections() : 0},
              {"runtime_dir", facts_.runtime_dir},
              {"stale_builds", stale_builds}});
  co_return;
}

// Events: what happens from now on to the caller's groups, or to the one
// named. Naming another user's group is refused; naming one that does not
// exist yet follows it once the caller creates it.
asio::awaitable<void> ControlApi::daemon_events(rpc::CallContext& call) {
  if (!call.call().more) {
    throw ErrorReply(ErrorCode::ExpectedMore, "io.pat.Daemon.Events streams replies: call it with \"more\": true");
  }
  EventFilter filter{call.peer().uid, call.peer().is_root(), ParamReader(call.params()).optional_string("group")};
  if (filter.group) {
    if (registry_.find(*filter.group)) {
      authorized_group(call.peer(), *filter.group);
    } else if (!proto::is_valid_group_name(*filter.group)) {
      throw ErrorReply(ErrorCode::InvalidGroupName, "invalid group name \"" + *filter.group + "\"",
                       {{"name", *filter.group}});
    }
  }
  auto subscription = events_.subscribe(std::move(filter));
  close_on_disconnect(call.disconnect(), subscription);
  call.stream(proto::DaemonEvent(proto::event::kSubscribed).to_json());
  while (auto event = co_await subscription->next()) {
    call.stream(**event);
    co_await call.drained_to(kEventBacklogBytes);
  }
  call.hang_up();  // closed: the caller left
}

void ControlApi::publish_refusal(const Group& group, const proto::RunRequest& request, const proto::Error& error) {
  proto::DaemonEvent refused(proto::event::kMemberRefused, group.name, group.owner_uid);
  refused.reason = error.message();
  refused.error = error.name;
  refused.program = request.program;
  events_.publish(std::move(refused));
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
  if (group->state == Group::State::Running) {
    auto described = co_await group->link.describe();
    group->snapshot = std::move(described.group);
  }
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

// Attach: patd authorises the caller (the group's owner, or root); the
// host, which runs as the owner, decides about each process and does the
// work. The kernel's own ptrace check, made for the host, is the last word:
// a process of another user or with more privilege cannot be attached
// whoever asks (docs/attach.md "Who does what"). With new_group, the
// processes move into a new ephemeral group of the caller's (pat.join()
// without a group), removed when its last member ends or when the attach
// fails. The reply's env is what a launched member's environment gets from
// the group (PAT_GROUP, PAT_ARENA): an attached process keeps its own, and
// pat.join() adds these to it.
asio::awaitable<void> ControlApi::group_attach(rpc::CallContext& call) {
  ParamReader params(call.params());
  auto pids = params.pid_array("pids", proto::kMaxAttachPids);
  std::shared_ptr<Group> group;
  if (params.boolean("new_group", false)) {
    group = co_await registry_.create(registry_.ephemeral_name(), credentials_of(call.peer()),
                                      CreateOptions{.ephemeral = true});
  } else {
    group = authorized_group(call.peer(), params.string("name"));
  }
  if (group->state != Group::State::Running) {
    throw ErrorReply(ErrorCode::GroupBusy, "group " + group->name + " is not running",
                     {{"name", group->name}, {"members", 0}});
  }
  json request = {{"pids", pids}};  // not inline: see member_signal
  auto reply = co_await group->link.call(proto::method::kHostAttach, std::move(request), kAttachTimeout);
  auto attached = reply.find("attached");
  if (attached == reply.end() || !attached->is_array() || attached->size() != pids.size()) {
    throw host_unavailable(group->name, "attach reply without one entry per pid");
  }
  spdlog::info("event=group.attach group={} by_uid={} pids={}", group->name, call.peer().uid, pids.size());
  auto env = reply.find("env");
  if (env == reply.end() || !env->is_array() ||
      !std::all_of(env->begin(), env->end(), [](const json& entry) { return entry.is_string(); })) {
    throw host_unavailable(group->name, "attach reply without the group's environment");
  }
  call.reply({{"group", group->name}, {"attached", *attached}, {"env", *env}});
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
  json started;
  std::optional<ErrorReply> refusal;
  try {
    started = co_await spawn.next(kSpawnTimeout);
  } catch (const ErrorReply& e) {
    refusal = e;
  }
  if (refusal) {
    publish_refusal(*group, request, refusal->error());
    throw *refusal;
  }
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
