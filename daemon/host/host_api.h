// io.pat.Host: what patd may ask of a group's host. The only client is patd
// (the socket is the owner's and mode 0600), but parameters are still checked:
// nothing received is trusted to be well formed.
#pragma once

#include "daemon/host/group_host.h"
#include "daemon/rpc/service.h"

namespace pat::host {

class HostApi {
 public:
  explicit HostApi(GroupHost& host) : host_(host) {}
  void register_methods(rpc::Service& service);

 private:
  asio::awaitable<void> describe(rpc::CallContext& call);
  asio::awaitable<void> watch(rpc::CallContext& call);
  asio::awaitable<void> spawn(rpc::CallContext& call);
  asio::awaitable<void> signal(rpc::CallContext& call);
  asio::awaitable<void> shutdown(rpc::CallContext& call);
  asio::awaitable<void> attach(rpc::CallContext& call);

  GroupHost& host_;
};

}  // namespace pat::host
