#include "daemon/patd/host_link.h"

#include "proto/group_object.h"
#include "proto/interface.h"

namespace pat::patd {

using proto::ErrorCode;
using proto::ErrorReply;

proto::ErrorReply host_unavailable(const std::string& group, const std::string& why) {
  return ErrorReply(ErrorCode::GroupUnavailable, "group " + group + ": host not answering (" + why + ")",
                    {{"name", group}});
}

proto::ErrorReply relay_host_error(const std::string& group, const proto::Error& error) {
  // Only names from our own vocabulary pass through; anything else a host
  // invents is reported as the host being broken.
  if (proto::error_code_from_name(error.name)) return ErrorReply(error);
  return host_unavailable(group, "unexpected error " + error.name);
}

asio::awaitable<proto::json> HostStream::next(std::optional<std::chrono::milliseconds> timeout) {
  if (finished_) throw host_unavailable(group_, "read past the last reply");
  proto::Reply reply;
  try {
    reply = co_await rpc::read_reply(socket_, timeout);
  } catch (const rpc::PeerUnavailable& e) {
    socket_->close();
    throw host_unavailable(group_, e.what());
  }
  finished_ = !reply.continues;
  if (reply.error) {
    finished_ = true;
    throw relay_host_error(group_, *reply.error);
  }
  co_return std::move(reply.parameters);
}

void HostStream::close_on(rpc::DisconnectNotice& notice) {
  notice.subscribe([socket = socket_] { socket->close(); });
}

asio::awaitable<rpc::Connected> HostLink::connect() const {
  auto connected = co_await rpc::connect_unix(socket_path_, kHostCallTimeout);
  if (connected.peer.uid != owner_uid_) {
    connected.socket->close();
    throw rpc::PeerUnavailable("host socket " + socket_path_ + " is served by uid " +
                               std::to_string(connected.peer.uid) + ", not the owner");
  }
  if (host_pid_ != 0 && connected.peer.pid != host_pid_) {
    connected.socket->close();
    throw rpc::PeerUnavailable("host socket " + socket_path_ + " is served by pid " +
                               std::to_string(connected.peer.pid) + ", not the host");
  }
  co_return connected;
}

asio::awaitable<HostStream> HostLink::send(std::string_view method, proto::json parameters,
                                           std::vector<UniqueFd> fds, bool more) const {
  rpc::Connected connected;
  try {
    connected = co_await connect();
  } catch (const rpc::PeerUnavailable& e) {
    throw host_unavailable(group_, e.what());
  }
  rpc::send_call(*connected.socket, proto::Call{std::string(method), std::move(parameters), more},
                 std::move(fds));
  co_return HostStream(group_, connected.socket);
}

asio::awaitable<HostStream> HostLink::stream(std::string_view method, proto::json parameters,
                                             std::vector<UniqueFd> fds) const {
  co_return co_await send(method, std::move(parameters), std::move(fds), true);
}

asio::awaitable<proto::json> HostLink::call(std::string_view method, proto::json parameters,
                                            std::chrono::milliseconds timeout) const {
  std::vector<UniqueFd> no_fds;  // not inline: see rpc/asio.h on braces beside co_await
  auto reply = co_await send(method, std::move(parameters), std::move(no_fds), false);
  auto parameters_back = co_await reply.next(timeout);
  reply.close();
  co_return parameters_back;
}

asio::awaitable<HostDescription> HostLink::describe() const {
  auto reply = co_await call(proto::method::kHostDescribe, proto::json::object());
  auto group = reply.find("group");
  if (group == reply.end()) throw host_unavailable(group_, "reply without a group");
  if (auto problem = proto::check_group_object(*group)) throw host_unavailable(group_, *problem);
  HostDescription description{std::move(*group), {}};
  auto syscalls = reply.find("syscalls");
  if (syscalls != reply.end() && syscalls->is_array()) {
    for (const auto& entry : *syscalls) {
      if (auto service = proto::SyscallService::from_json(entry)) description.syscalls.push_back(std::move(*service));
    }
  }
  co_return description;
}

}  // namespace pat::patd
