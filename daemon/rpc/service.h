// The server side of a varlink-style service: a method table, the
// org.varlink.service interface (GetInfo, GetInterfaceDescription), and the
// exact error for every call that cannot be served. patd and pat-host each
// build one Service and hand it to a UnixServer.
#pragma once

#include "daemon/rpc/asio.h"
#include "daemon/rpc/framed_socket.h"
#include "daemon/rpc/peer_credentials.h"
#include "proto/interface.h"
#include "proto/message.h"

#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>

namespace pat::rpc {

// Shared between a session and the call it is running: tells the call when the
// caller went away (patctl killed while its member runs, for instance).
class DisconnectNotice {
 public:
  bool fired() const { return fired_; }
  void fire();
  // Runs `callback` once when fire() happens (at once if it already did).
  void subscribe(std::function<void()> callback);

 private:
  bool fired_ = false;
  std::vector<std::function<void()>> callbacks_;
};

// One call being served. Handlers reply through it, exactly once finally;
// streaming handlers may send any number of `stream` replies before that.
class CallContext {
 public:
  CallContext(proto::Call call, const PeerCredentials& peer, std::vector<UniqueFd> fds,
              std::shared_ptr<FramedSocket> socket, std::shared_ptr<DisconnectNotice> disconnect);

  const proto::Call& call() const { return call_; }
  const proto::json& params() const { return call_.parameters; }
  const PeerCredentials& peer() const { return peer_; }
  std::vector<UniqueFd>& fds() { return fds_; }

  void reply(proto::json parameters = proto::json::object());
  void stream(proto::json parameters);  // {"continues": true}; throws ExpectedMore unless call().more
  void fail(const proto::Error& error);
  bool finished() const { return finished_; }
  // Waits until at most `bytes` of this connection's replies are unsent (the
  // caller reads slowly), or the connection closed.
  asio::awaitable<void> drained_to(std::size_t bytes) { return socket_->drained_to(bytes); }
  // Ends the connection: a stream whose caller left has nobody to tell.
  void hang_up() { socket_->close(); }

  DisconnectNotice& disconnect() { return *disconnect_; }

 private:
  void send(std::string frame);
  proto::Call call_;
  const PeerCredentials& peer_;
  std::vector<UniqueFd> fds_;
  std::shared_ptr<FramedSocket> socket_;
  std::shared_ptr<DisconnectNotice> disconnect_;
  bool finished_ = false;
};

using MethodHandler = std::function<asio::awaitable<void>(CallContext&)>;

struct ServiceIdentity {
  std::string vendor = "pat";
  std::string product;
  std::string version;
  std::string url = "https://github.com/pat-processes-as-threads/pat";
  std::span<const proto::InterfaceDescription> interfaces;
};

class Service {
 public:
  explicit Service(ServiceIdentity identity) : identity_(std::move(identity)) {}

  void add_method(std::string_view name, MethodHandler handler);
  // A handler that is a member function of `api`, which outlives the service.
  template <class Api>
  void add_method(std::string_view name, Api* api, asio::awaitable<void> (Api::*handler)(CallContext&)) {
    add_method(name, [api, handler](CallContext& call) { return (api->*handler)(call); });
  }

  // Serves one frame: parses it, routes it, and always answers (unless the
  // call is oneway). Never throws.
  asio::awaitable<void> serve(Frame frame, const PeerCredentials& peer, std::shared_ptr<FramedSocket> socket,
                              std::shared_ptr<DisconnectNotice> disconnect) const;

  const ServiceIdentity& identity() const { return identity_; }

  // Calls served so far, by method (one this service knows, or "unknown": a
  // caller must not be able to mint label values) and error name (one of
  // the vocabulary's, or "other"; "" for success). For patd's metrics.
  using RequestCounts = std::map<std::pair<std::string, std::string>, std::uint64_t>;
  const RequestCounts& request_counts() const { return request_counts_; }

 private:
  void count(const std::string& method, const std::optional<proto::Error>& error) const;

  asio::awaitable<void> route(CallContext& context) const;
  void serve_varlink_service(CallContext& context) const;

  ServiceIdentity identity_;
  std::map<std::string, MethodHandler, std::less<>> methods_;
  mutable RequestCounts request_counts_;
};

}  // namespace pat::rpc
