// Fuzz target: pat-host's method dispatch and parameter validation. Every
// frame goes through the real rpc::Service with the real HostApi
// (io.pat.Host.Describe/Watch/Spawn/Signal/Shutdown) and org.varlink.service,
// over a real GroupHost (its shared address space, ledger, data-plane arena
// and syscall servers), with 0, 1, 3 or 4 descriptors: Spawn reads its
// arguments inline or from the sealed memfd, opens cwd, parses umask and
// rlimits, and runs the real launcher.
//
// One change to what a caller sent, so that the fuzzer can never start a
// program: a Spawn's "program", when it is a string, is put under a
// directory that does not exist. The kernel walks a path one name at a time,
// so nothing below a missing directory resolves ("../" included): every
// launch ends in the resolver with ProgramNotFound. Mapping and starting
// members are covered by the program resolver and ELF targets and by the
// integration tests, not here.
#include "daemon/host/group_host.h"
#include "daemon/host/host_api.h"
#include "proto/interface.h"
#include "proto/message.h"
#include "tests/fuzz/service_harness.h"

#include <cstdlib>
#include <memory>

namespace {

using namespace pat;

constexpr const char* kNowhere = "/nonexistent-pat-fuzz-dir/";

struct Host {
  asio::io_context io;
  std::string group_dir;
  bool exit_requested = false;
  std::unique_ptr<host::GroupHost> group;
  std::unique_ptr<host::HostApi> api;
  std::unique_ptr<rpc::Service> service;
  fuzz::ServiceHarness harness{io};

  Host() {
    fuzz::log_to_nowhere();
    char dir[] = "/tmp/pat-fuzz-host-XXXXXX";
    if (::mkdtemp(dir) == nullptr) std::abort();
    group_dir = dir;
    renew();
  }
  // A GroupHost that shut down refuses every spawn from then on, as the real
  // one does until it exits: start a fresh one, as patd would.
  void renew() {
    service.reset();
    api.reset();
    group.reset();
    exit_requested = false;
    host::HostConfig config;
    config.group = "fuzz";
    config.group_dir = group_dir;
    group = std::make_unique<host::GroupHost>(io, config,
                                              [this] { exit_requested = true; });
    api = std::make_unique<host::HostApi>(*group);
    service = std::make_unique<rpc::Service>(
        rpc::ServiceIdentity{.product = "pat-host", .version = "fuzz", .interfaces = proto::host_interfaces()});
    api->register_methods(*service);
  }
};

// The frame as sent, but with a Spawn's program under kNowhere.
std::string confine_program(std::string frame) {
  auto parsed = proto::parse_call(frame);
  auto* call = std::get_if<proto::Call>(&parsed);
  if (call == nullptr || call->method != proto::method::kHostSpawn) return frame;
  auto program = call->parameters.find("program");
  if (program == call->parameters.end() || !program->is_string()) return frame;
  *program = kNowhere + program->get<std::string>();
  std::string encoded = proto::encode(*call);
  encoded.pop_back();  // the NUL
  return encoded;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Host* host = new Host();  // lives for the whole run, as pat-host does
  auto input = fuzz::decode_dispatch_input({data, size});
  input.frame = confine_program(std::move(input.frame));
  host->harness.serve(*host->service, std::move(input));
  if (host->exit_requested) host->renew();
  return 0;
}
