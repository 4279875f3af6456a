// pat-host: one per group. Its address space is the group's shared address
// space; members are launched into it and their rerouted syscalls answered
// here. Started by patd with the owner's credentials and no capabilities; it
// outlives patd restarts and serves <group dir>/host.sock for patd.
#include "base/log.h"
#include "base/self_location.h"
#include "base/unique_fd.h"
#include "base/unix_socket.h"
#include "daemon/host/group_host.h"
#include "daemon/host/host_api.h"
#include "daemon/host/process_title.h"
#include "daemon/rpc/unix_server.h"
#include "proto/defaults.h"

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <csignal>
#include <cstring>

namespace {

using namespace pat;

struct Options {
  std::string group;
  std::string group_dir;
  int ready_fd = -1;
  bool ephemeral = false;
  bool allow_cross_mapping = false;
  std::string log_level = "info";
};

// 0600: only the owner (and root, i.e. patd) may talk to the host.
Result<UniqueFd> listen_on(const std::string& path) {
  ::unlink(path.c_str());  // a previous host's socket; this directory is ours
  return listen_unix_stream(path, 64);
}

void report_ready(int fd, const std::string& line) {
  if (fd < 0) return;
  (void)!::write(fd, line.data(), line.size());
  ::close(fd);
}

int run(const Options& options) {
  setup_logging("pat-host", options.log_level);
  std::signal(SIGPIPE, SIG_IGN);
  // A stray SIGHUP would end the host and every member with it (they die with
  // their host). Members start with default dispositions regardless.
  std::signal(SIGHUP, SIG_IGN);
  auto listener = listen_on(options.group_dir + "/host.sock");
  if (!listener) {
    report_ready(options.ready_fd, "ERROR " + listener.error().message() + "\n");
    return 1;
  }

  asio::io_context io;
  std::unique_ptr<rpc::UnixServer> server;
  // Exit once patd has every reply queued so far (a spawn's final status, the
  // Shutdown reply): sessions flush and close, then the loop stops. A peer
  // that does not read gets a second at most.
  asio::steady_timer exit_deadline(io);
  auto request_exit = [&] {
    ::unlink((options.group_dir + "/host.sock").c_str());
    if (server) server->shut_down([&io] { io.stop(); });
    exit_deadline.expires_after(std::chrono::seconds(1));
    exit_deadline.async_wait([&io](boost::system::error_code ec) {
      if (!ec) io.stop();
    });
  };
  host::GroupHost group_host(io,
                             {options.group, options.group_dir, options.ephemeral, options.allow_cross_mapping,
                              (self_directory() / "pat-attach-stub").string()},
                             request_exit);
  rpc::Service service(rpc::ServiceIdentity{.product = "pat-host", .version = PROJECT_VERSION,
                                            .interfaces = proto::host_interfaces()});
  host::HostApi api(group_host);
  api.register_methods(service);
  // Streams (watch, spawn) stay open for as long as members run; they are not idle.
  // Every client but patd is the owner's (members, pat.Executor): no
  // per-user share here.
  rpc::ServerLimits limits{
      .max_connections = 4096, .max_connections_per_uid = 4096, .idle_timeout = std::chrono::hours(24 * 365)};
  server = std::make_unique<rpc::UnixServer>(io, LocalAcceptor(io, asio::local::stream_protocol(),
                                                               listener->release()),
                                             service, limits);
  asio::signal_set stop_signals(io, SIGTERM, SIGINT);
  stop_signals.async_wait([&](boost::system::error_code ec, int) {
    if (!ec) asio::co_spawn(io, group_host.shut_down(proto::kDefaultGrace), asio::detached);
  });
  server->start();
  spdlog::info("event=host.ready group={} pid={} uid={} ephemeral={}", options.group, ::getpid(), ::getuid(),
               options.ephemeral);
  report_ready(options.ready_fd, "READY\n");
  io.run();
  spdlog::info("event=host.exit group={} pid={}", options.group, ::getpid());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app{"pat-host: the process whose address space a pat group shares (started by patd)", "pat-host"};
  app.add_option("--group", options.group, "Group name")->required();
  app.add_option("--group-dir", options.group_dir, "Directory for host.sock")->required();
  app.add_option("--ready-fd", options.ready_fd, "Report READY or ERROR on this fd, then close it");
  app.add_flag("--ephemeral", options.ephemeral, "Exit once the spawned member has ended");
  app.add_flag("--allow-cross-mapping", options.allow_cross_mapping,
               "Let members map over each other's memory");
  app.add_option("--log-level", options.log_level, "trace, debug, info, warn, error");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  // From here on every process of the group shows this title in ps, not
  // pat-host's own command line (process_title.h); argv[] is overwritten.
  host::set_process_title(argc, argv, host::group_process_title(options.group));
  host::blank_environment_area();
  return run(options);
}
