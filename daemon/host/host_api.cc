#include "daemon/host/host_api.h"

#include "base/unique_fd.h"
#include "daemon/rpc/one_shot_event.h"
#include "proto/interface.h"
#include "proto/params.h"
#include "proto/rlimits.h"
#include "proto/run_arguments.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstring>

namespace pat::host {

using proto::ErrorCode;
using proto::ErrorReply;
using proto::json;
using proto::ParamReader;

namespace {

// Resolves once the caller's connection is gone.
asio::awaitable<void> until_disconnected(rpc::CallContext& call) {
  rpc::OneShotEvent gone(co_await asio::this_coro::executor);
  call.disconnect().subscribe([&gone] { gone.set(); });
  co_await gone.wait(std::nullopt);
}

// The working directory is opened here, as the owner: a directory the owner
// may not enter is refused before anything is launched.
UniqueFd open_working_directory(const std::string& cwd) {
  UniqueFd fd(::open(cwd.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!fd) {
    std::string why = std::strerror(errno);
    throw ErrorReply(ErrorCode::InvalidParameter, "working directory " + cwd + ": " + why,
                     {{"parameter", "cwd"}, {"expected", "a directory the group owner can enter"}});
  }
  return fd;
}

// If patd goes away (patctl died, or patd itself), the member gets SIGHUP, as
// a terminal's processes do when it hangs up. (Not a lambda in the coroutine:
// see rpc/asio.h.)
void hang_up_on_disconnect(rpc::DisconnectNotice& notice, std::shared_ptr<Member> member) {
  notice.subscribe([member = std::move(member)] {
    if (member->alive()) ::kill(member->pid(), SIGHUP);
  });
}

}  // namespace

void HostApi::register_methods(rpc::Service& service) {
  service.add_method(proto::method::kHostDescribe, this, &HostApi::describe);
  service.add_method(proto::method::kHostWatch, this, &HostApi::watch);
  service.add_method(proto::method::kHostSpawn, this, &HostApi::spawn);
  service.add_method(proto::method::kHostSignal, this, &HostApi::signal);
  service.add_method(proto::method::kHostShutdown, this, &HostApi::shutdown);
}

asio::awaitable<void> HostApi::describe(rpc::CallContext& call) {
  call.reply({{"group", host_.describe(GroupHost::Detail::WithUsage)}});
  co_return;
}

asio::awaitable<void> HostApi::watch(rpc::CallContext& call) {
  call.stream({{"group", host_.describe(GroupHost::Detail::Summary)}});
  auto id = host_.add_watcher([&call](const json& event) { call.stream(event); });
  co_await until_disconnected(call);
  host_.remove_watcher(id);
}

asio::awaitable<void> HostApi::spawn(rpc::CallContext& call) {
  ParamReader params(call.params());
  bool detached = params.boolean("detach", false);
  if (!call.call().more && !detached) {
    throw ErrorReply(ErrorCode::ExpectedMore, "io.pat.Host.Spawn streams replies: call it with \"more\": true");
  }
  proto::check_run_descriptors(call.params(), call.fds().size());
  auto arguments = proto::arguments_in_descriptor(call.params()) ? proto::read_run_arguments_descriptor(call.fds()[3].get())
                                                                 : proto::read_run_arguments(call.params());
  tracer::LaunchSpec spec;
  spec.path = params.c_string("program");
  spec.argv = std::move(arguments.argv);
  spec.env = std::move(arguments.env);
  UniqueFd cwd = open_working_directory(params.optional_c_string("cwd").value_or("/"));
  spec.cwd_fd = cwd.get();
  spec.umask = static_cast<mode_t>(params.optional_integer("umask", 0, 0777).value_or(022));
  if (const auto* rlimits = params.optional_object("rlimits")) spec.rlimits = proto::parse_rlimits(*rlimits);
  for (int i = 0; i < 3; ++i) spec.stdio[i] = call.fds()[i].get();

  std::shared_ptr<Member> member;
  try {
    member = host_.spawn(std::move(spec), detached);
  } catch (...) {
    host_.exit_if_ephemeral_and_idle();
    throw;
  }
  call.fds().clear();  // the member holds its own copies now
  json started = {{"pid", member->pid()}};
  if (detached) {
    call.reply(started);
    co_return;
  }
  call.stream(started);
  hang_up_on_disconnect(call.disconnect(), member);
  co_await member->exited.wait(std::nullopt);
  json ended = started;
  if (member->exit->exit_code) ended["exit_code"] = *member->exit->exit_code;
  if (member->exit->signal) ended["signal"] = *member->exit->signal;
  if (!call.disconnect().fired()) call.reply(ended);
}

asio::awaitable<void> HostApi::signal(rpc::CallContext& call) {
  ParamReader params(call.params());
  auto pid = static_cast<pid_t>(params.integer("pid", 1, std::numeric_limits<pid_t>::max()));
  auto signal = static_cast<int>(params.integer("signal", 1, SIGRTMAX));
  host_.signal(pid, signal);
  call.reply();
  co_return;
}

asio::awaitable<void> HostApi::shutdown(rpc::CallContext& call) {
  ParamReader params(call.params());
  bool force = params.boolean("force", false);
  auto grace = std::chrono::milliseconds(params.optional_integer("grace_ms", 0, 3'600'000).value_or(5'000));
  host_.check_shutdown_allowed(force);
  call.reply();
  asio::co_spawn(co_await asio::this_coro::executor, host_.shut_down(grace), asio::detached);
}

}  // namespace pat::host
