#include "daemon/rpc/service.h"

#include "proto/params.h"

#include <spdlog/spdlog.h>

namespace pat::rpc {

using proto::ErrorCode;
using proto::ErrorReply;
using proto::json;

void DisconnectNotice::fire() {
  if (fired_) return;
  fired_ = true;
  auto callbacks = std::move(callbacks_);
  for (auto& callback : callbacks) callback();
}

void DisconnectNotice::subscribe(std::function<void()> callback) {
  if (fired_) {
    callback();
    return;
  }
  callbacks_.push_back(std::move(callback));
}

CallContext::CallContext(proto::Call call, const PeerCredentials& peer, std::vector<UniqueFd> fds,
                         std::shared_ptr<FramedSocket> socket, std::shared_ptr<DisconnectNotice> disconnect)
    : call_(std::move(call)),
      peer_(peer),
      fds_(std::move(fds)),
      socket_(std::move(socket)),
      disconnect_(std::move(disconnect)) {}

void CallContext::send(std::string frame) {
  if (!call_.oneway) socket_->send(std::move(frame));
}

void CallContext::reply(json parameters) {
  assert(!finished_ && "a call gets one final reply");
  finished_ = true;
  send(proto::encode(proto::Reply{std::move(parameters), false, std::nullopt}));
}

void CallContext::stream(json parameters) {
  assert(!finished_);
  if (!call_.more) {
    throw ErrorReply(ErrorCode::ExpectedMore, "this method streams replies: call it with \"more\": true");
  }
  send(proto::encode(proto::Reply{std::move(parameters), true, std::nullopt}));
}

void CallContext::fail(const proto::Error& error) {
  assert(!finished_);
  finished_ = true;
  send(proto::encode_error(error));
}

void Service::add_method(std::string_view name, MethodHandler handler) {
  methods_.emplace(std::string(name), std::move(handler));
}

asio::awaitable<void> Service::serve(Frame frame, const PeerCredentials& peer, std::shared_ptr<FramedSocket> socket,
                                     std::shared_ptr<DisconnectNotice> disconnect) const {
  auto parsed = proto::parse_call(frame.text);
  if (auto* error = std::get_if<proto::Error>(&parsed)) {
    count("", *error);  // not a call: counted as "unknown"
    socket->send(proto::encode_error(*error));
    co_return;
  }
  CallContext context(std::move(std::get<proto::Call>(parsed)), peer, std::move(frame.fds), socket, disconnect);
  // Exceptions cannot be caught around a co_await in a catch handler's body,
  // so the error is captured first and answered after the try block.
  std::optional<proto::Error> error;
  try {
    co_await route(context);
  } catch (const ErrorReply& e) {
    error = e.error();
  } catch (const std::exception& e) {
    spdlog::error("event=call.failed method={} peer_pid={} error={}", context.call().method, peer.pid, e.what());
    error = proto::Error::make(ErrorCode::InternalError, std::string("internal error: ") + e.what(),
                               {{"reason", e.what()}});
  }
  count(context.call().method, error);
  if (context.finished()) co_return;
  if (!error && disconnect->fired()) co_return;  // a stream whose caller left: nobody to answer
  if (!error) {
    spdlog::error("event=call.unanswered method={}", context.call().method);
    error = proto::Error::make(ErrorCode::InternalError, "the method returned no reply", {{"reason", "no reply"}});
  }
  context.fail(*error);
}

void Service::count(const std::string& method, const std::optional<proto::Error>& error) const {
  bool known = methods_.contains(method) || method == proto::method::kGetInfo ||
               method == proto::method::kGetInterfaceDescription;
  std::string error_name;
  if (error) error_name = proto::error_code_from_name(error->name) ? error->name : "other";
  ++request_counts_[{known ? method : "unknown", std::move(error_name)}];
}

asio::awaitable<void> Service::route(CallContext& context) const {
  const std::string& method = context.call().method;
  if (auto it = methods_.find(method); it != methods_.end()) {
    co_await it->second(context);
    co_return;
  }
  std::string interface_name = context.call().interface_name();
  if (interface_name == "org.varlink.service") {
    serve_varlink_service(context);
    co_return;
  }
  auto interface = proto::find_interface(identity_.interfaces, interface_name);
  if (!interface) {
    throw ErrorReply(ErrorCode::InterfaceNotFound, "unknown interface " + interface_name,
                     {{"interface", interface_name}});
  }
  auto method_name = method.substr(interface_name.size() + 1);
  if (proto::interface_declares_method(*interface, method_name)) {
    throw ErrorReply(ErrorCode::MethodNotImplemented, "method " + method + " is not implemented here",
                     {{"method", method}});
  }
  throw ErrorReply(ErrorCode::MethodNotFound, "unknown method " + method, {{"method", method}});
}

void Service::serve_varlink_service(CallContext& context) const {
  const std::string& method = context.call().method;
  if (method == proto::method::kGetInfo) {
    json interfaces = json::array();
    for (const auto& interface : identity_.interfaces) interfaces.push_back(interface.name);
    context.reply({{"vendor", identity_.vendor},
                   {"product", identity_.product},
                   {"version", identity_.version},
                   {"url", identity_.url},
                   {"interfaces", interfaces}});
    return;
  }
  if (method == proto::method::kGetInterfaceDescription) {
    auto name = proto::ParamReader(context.params()).string("interface");
    auto interface = proto::find_interface(identity_.interfaces, name);
    if (!interface) throw ErrorReply(ErrorCode::InterfaceNotFound, "unknown interface " + name, {{"interface", name}});
    context.reply({{"description", std::string(interface->description)}});
    return;
  }
  throw ErrorReply(ErrorCode::MethodNotFound, "unknown method " + method, {{"method", method}});
}

}  // namespace pat::rpc
