#include "daemon/host/host_api.h"

#include "base/unique_fd.h"
#include "daemon/rpc/one_shot_event.h"
#include "proto/interface.h"
#include "proto/params.h"
#include "proto/defaults.h"
#include "proto/run_request.h"

#include <fcntl.h>
#include <sys/stat.h>
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

// If patd goes away (patctl died, or patd itself), the member gets SIGHUP, as
// a terminal's processes do when it hangs up. (Not a lambda in the coroutine:
// see rpc/asio.h.)
void hang_up_on_disconnect(rpc::DisconnectNotice& notice, std::shared_ptr<Member> member) {
  notice.subscribe([member = std::move(member)] {
    if (member->alive()) ::kill(member->pid(), SIGHUP);
  });
}

// The contents of the descriptor that carries argv and env when they did not
// fit in the call (proto/run_request.h).
std::string read_arguments_descriptor(int fd) {
  auto invalid = [](const std::string& why) {
    return ErrorReply(ErrorCode::InvalidParameter, "the arguments descriptor: " + why,
                      {{"parameter", "fds"}, {"expected", "JSON {argv, env} in a file"}});
  };
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) throw invalid("not a regular file");
  if (static_cast<std::size_t>(st.st_size) > proto::kMaxArgumentsBytes) throw invalid("larger than allowed");
  std::string text(static_cast<std::size_t>(st.st_size), '\0');
  for (std::size_t done = 0; done < text.size();) {
    ssize_t n = ::pread(fd, text.data() + done, text.size() - done, static_cast<off_t>(done));
    if (n <= 0) throw invalid("unreadable");
    done += static_cast<std::size_t>(n);
  }
  return text;
}

}  // namespace

void HostApi::register_methods(rpc::Service& service) {
  service.add_method(proto::method::kHostDescribe, this, &HostApi::describe);
  service.add_method(proto::method::kHostWatch, this, &HostApi::watch);
  service.add_method(proto::method::kHostSpawn, this, &HostApi::spawn);
  service.add_method(proto::method::kHostSignal, this, &HostApi::signal);
  service.add_method(proto::method::kHostShutdown, this, &HostApi::shutdown);
  service.add_method(proto::method::kHostAttach, this, &HostApi::attach);
}

asio::awaitable<void> HostApi::describe(rpc::CallContext& call) {
  json syscalls = json::array();
  for (const auto& entry : host_.syscall_service()) syscalls.push_back(entry.to_json());
  json reply = {{"group", host_.describe(GroupHost::Detail::WithUsage).to_json()}, {"syscalls", std::move(syscalls)}};
  call.reply(std::move(reply));
  co_return;
}

asio::awaitable<void> HostApi::watch(rpc::CallContext& call) {
  json first = {{"group", host_.describe(GroupHost::Detail::Summary).to_json()}};
  call.stream(std::move(first));
  auto id = host_.events().add([&call](const json& event) { call.stream(event); });
  co_await until_disconnected(call);
  host_.events().remove(id);
}

asio::awaitable<void> HostApi::spawn(rpc::CallContext& call) {
  ParamReader params(call.params());
  if (!call.call().more && !params.boolean("detach", false)) {
    throw ErrorReply(ErrorCode::ExpectedMore, "io.pat.Host.Spawn streams replies: call it with \"more\": true");
  }
  auto request = proto::RunRequest::parse(call.params());
  const bool detached = request.detach;
  request.check_descriptors(call.fds().size());
  if (request.arguments_in_fd) request.load_arguments(read_arguments_descriptor(call.fds()[3].get()));
  std::array<int, 3> stdio{call.fds()[0].get(), call.fds()[1].get(), call.fds()[2].get()};
  std::shared_ptr<Member> member;
  try {
    member = host_.spawn(std::move(request), stdio);
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
  if (call.disconnect().fired()) co_return;
  const auto& end = member->process->end();
  if (!end.ok()) {
    throw ErrorReply(ErrorCode::InternalError, "member " + std::to_string(member->pid()) +
                                                   " ended, but how is unknown: " + end.error().message(),
                     {{"reason", end.error().message()}});
  }
  json ended = started;
  end.value().write_json(ended);
  call.reply(ended);
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
  auto grace = std::chrono::milliseconds(params.optional_integer("grace_ms", 0, proto::kLongestGrace.count())
                                             .value_or(proto::kDefaultGrace.count()));
  host_.check_shutdown_allowed(force);
  call.reply();
  asio::co_spawn(co_await asio::this_coro::executor, host_.shut_down(grace), asio::detached);
}

asio::awaitable<void> HostApi::attach(rpc::CallContext& call) {
  std::vector<pid_t> pids;
  for (auto pid : ParamReader(call.params()).pid_array("pids", proto::kMaxAttachPids)) pids.push_back(static_cast<pid_t>(pid));
  json attached = json::array();
  try {
    for (const auto& [member, entry] : host_.attach(pids)) attached.push_back(entry.to_json());
  } catch (...) {
    host_.exit_if_ephemeral_and_idle();  // a new group made for this attach (pat.join())
    throw;
  }
  json env = json::array();
  for (const auto& [name, value] : host_.member_environment()) env.push_back(name + "=" + value);
  call.reply({{"attached", std::move(attached)}, {"env", std::move(env)}});
  co_return;
}

}  // namespace pat::host
