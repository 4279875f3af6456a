// Fuzz target: patd's method dispatch and parameter validation. Every frame
// goes through the real rpc::Service with the real ControlApi registered
// (io.pat.Daemon.Status, io.pat.Group.Create/List/Show/Destroy,
// io.pat.Member.Run/Signal) and org.varlink.service, over a real
// GroupRegistry on a private runtime directory, as root or as another uid,
// with 0, 1, 3 or 4 descriptors.
//
// What is not reached: the registry's host binary does not exist, so
// Group.Create (and Run --new-group) validates the name, makes and removes
// the group directory, and fails at start_host's open; no group ever runs,
// so Show/Destroy/Run/Signal of a named group end at GroupNotFound or
// PermissionDenied, and nothing is relayed to a host.
#include "daemon/patd/control_api.h"
#include "proto/interface.h"
#include "tests/fuzz/service_harness.h"

#include <cstdlib>
#include <memory>

namespace {

using namespace pat;

struct Daemon {
  asio::io_context io;
  std::string runtime_dir;
  patd::RuntimeDir runtime{"/nonexistent"};
  patd::EventBus events{io.get_executor(), patd::EventBus::kDefaultQueueLength};
  std::unique_ptr<patd::GroupRegistry> registry;
  patd::DaemonFacts facts{"fuzz", std::chrono::steady_clock::now(), "", nullptr};
  std::unique_ptr<patd::ControlApi> api;
  std::unique_ptr<rpc::Service> service;
  std::unique_ptr<fuzz::ServiceHarness> harness;

  Daemon() {
    fuzz::log_to_nowhere();
    char dir[] = "/tmp/pat-fuzz-patd-XXXXXX";
    if (::mkdtemp(dir) == nullptr) std::abort();
    runtime_dir = dir;
    runtime = patd::RuntimeDir(runtime_dir);
    if (!runtime.prepare()) std::abort();
    facts.runtime_dir = runtime_dir;
    registry = std::make_unique<patd::GroupRegistry>(io, runtime, runtime_dir + "/no-such-pat-host", events);
    api = std::make_unique<patd::ControlApi>(*registry, events, facts);
    service = std::make_unique<rpc::Service>(
        rpc::ServiceIdentity{.product = "patd", .version = "fuzz", .interfaces = proto::daemon_interfaces()});
    api->register_methods(*service);
    harness = std::make_unique<fuzz::ServiceHarness>(io);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Daemon* daemon = new Daemon();  // lives for the whole run, as patd does
  daemon->harness->serve(*daemon->service, fuzz::decode_dispatch_input({data, size}));
  return 0;
}
