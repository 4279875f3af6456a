// patd: pat's control daemon. Serves the io.pat API on a Unix socket, starts
// and tracks group hosts, and relays member work to them. Restartable at any
// time: groups keep running and a new patd finds them again (DESIGN.md).
#include "base/log.h"
#include "base/self_location.h"
#include "daemon/patd/control_api.h"
#include "daemon/patd/control_socket.h"
#include "daemon/patd/group_registry.h"
#include "daemon/patd/metrics_server.h"
#include "daemon/rpc/unix_server.h"
#include "daemon/sd/sd_notify.h"
#include "daemon/sd/socket_activation.h"
#include "proto/defaults.h"

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <csignal>
#include <cstdio>

namespace {

using namespace pat;

struct Options {
  std::string runtime_dir = proto::kDefaultRuntimeDir;
  std::string socket_mode;  // octal; empty: see resolve_socket_access
  std::string socket_group = "pat";
  std::size_t max_connections = 1024;
  std::size_t max_connections_per_uid = 64;
  long idle_timeout_ms = 60'000;
  std::string log_level = "info";
  std::size_t event_queue_length = patd::EventBus::kDefaultQueueLength;
  std::string metrics_listen;  // empty: no metrics endpoint
};

std::optional<mode_t> parse_mode(const std::string& text) {
  if (text.empty()) return std::nullopt;
  std::size_t used = 0;
  unsigned long mode = std::stoul(text, &used, 8);
  if (used != text.size() || mode > 0777) throw CLI::ValidationError("--socket-mode", "expected an octal mode");
  return static_cast<mode_t>(mode);
}

// Many concurrent clients each hold an fd; the default soft limit (1024) would
// cap connections below --max-connections.
void raise_fd_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
}

Result<UniqueFd> control_listener(const Options& options, const patd::RuntimeDir& runtime, bool& activated) {
  auto passed = sd::listen_fds_from_environment();
  if (!passed) return passed.error();
  if (passed->size() > 1) return SysError{EINVAL, "socket activation passed " + std::to_string(passed->size()) +
                                                      " sockets; patd takes exactly one"};
  if (passed->size() == 1) {
    UniqueFd fd = std::move(passed->front());
    if (!sd::is_unix_stream_listener(fd.get())) {
      return SysError{EINVAL, "the socket passed by socket activation is not a listening AF_UNIX stream socket"};
    }
    activated = true;
    return fd;
  }
  auto access = patd::resolve_socket_access(parse_mode(options.socket_mode), options.socket_group);
  if (!access) return access.error();
  return patd::bind_control_socket(runtime.control_socket().string(), *access);
}

int run(const Options& options) {
  setup_logging("patd", options.log_level);
  // Read (and remove) the sd-daemon variables first, so no host inherits them.
  auto notifier = sd::Notifier::from_environment();
  std::signal(SIGPIPE, SIG_IGN);
  // SIGHUP (a closed terminal, `systemctl reload`) must not end patd: there
  // is no configuration to reload, and its default action would.
  std::signal(SIGHUP, SIG_IGN);
  raise_fd_limit();

  patd::RuntimeDir runtime(options.runtime_dir);
  if (auto status = runtime.prepare(); !status) {
    spdlog::critical("event=start.failed reason={}", log_quote(status.error().message()));
    return 1;
  }
  bool activated = false;
  auto listener_fd = control_listener(options, runtime, activated);
  if (!listener_fd) {
    spdlog::critical("event=start.failed reason={}", log_quote(listener_fd.error().message()));
    return 1;
  }

  asio::io_context io;
  LocalAcceptor acceptor(io, asio::local::stream_protocol(), listener_fd->release());
  auto host_binary = libexec_path("pat-host").string();
  patd::EventBus events(io.get_executor(), options.event_queue_length);
  patd::GroupRegistry registry(io, runtime, host_binary, events);

  patd::DaemonFacts facts{PROJECT_VERSION, std::chrono::steady_clock::now(), options.runtime_dir, nullptr};
  rpc::Service service(rpc::ServiceIdentity{.product = "patd", .version = PROJECT_VERSION,
                                            .interfaces = proto::daemon_interfaces()});
  patd::ControlApi api(registry, events, facts);
  api.register_methods(service);
  rpc::ServerLimits limits{.max_connections = options.max_connections,
                           .max_connections_per_uid = options.max_connections_per_uid,
                           .idle_timeout = std::chrono::milliseconds(options.idle_timeout_ms)};
  rpc::UnixServer server(io, std::move(acceptor), service, limits);
  facts.server = &server;
  patd::DaemonMetrics metrics(registry, events, service, server);
  std::unique_ptr<patd::MetricsServer> metrics_server;
  if (!options.metrics_listen.empty()) {
    auto listening = patd::MetricsServer::listen(io, options.metrics_listen, metrics);
    if (!listening) {
      spdlog::critical("event=start.failed reason={}", log_quote(listening.error().message()));
      return 1;
    }
    metrics_server = std::move(listening.value());
  }

  asio::signal_set stop_signals(io, SIGTERM, SIGINT);
  stop_signals.async_wait([&](boost::system::error_code ec, int signal) {
    if (ec) return;
    spdlog::info("event=stopping signal={} groups={}", signal, registry.size());
    (void)notifier.stopping();
    server.stop();
    // Groups are left running on purpose: their hosts are in sessions of their
    // own and a new patd re-discovers them.
    if (!activated) ::unlink(runtime.control_socket().c_str());
    io.stop();
  });

  asio::steady_timer watchdog(io);
  std::function<void()> ping;
  if (auto interval = notifier.watchdog_interval()) {
    ping = [&, period = *interval / 2] {
      (void)notifier.watchdog();
      watchdog.expires_after(period);
      watchdog.async_wait([&](boost::system::error_code ec) {
        if (!ec) ping();
      });
    };
    ping();
  }

  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await registry.discover();
        server.start();
        if (metrics_server) metrics_server->start();
        spdlog::info("event=ready socket={} activated={} groups={} host={}",
                     log_quote(runtime.control_socket().string()), activated, registry.size(),
                     log_quote(host_binary));
        auto ready = notifier.ready("serving " + runtime.control_socket().string() + ", " +
                                    std::to_string(registry.size()) + " groups");
        if (!ready) spdlog::warn("event=notify.failed reason={}", log_quote(ready.error().message()));
      },
      asio::detached);
  io.run();
  spdlog::info("event=stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app{"patd: the pat control daemon (processes as threads)", "patd"};
  app.set_version_flag("--version", std::string("patd ") + PROJECT_VERSION);
  app.add_option("--runtime-dir", options.runtime_dir, "Runtime directory: control socket and group state")
      ->capture_default_str();
  app.add_option("--socket-mode", options.socket_mode,
                 "Octal mode of the control socket (default 0660 with group 'pat' if it exists, else 0600)");
  app.add_option("--socket-group", options.socket_group, "Group owning the control socket, if it exists")
      ->capture_default_str();
  app.add_option("--max-connections", options.max_connections, "Concurrent client connections served")
      ->capture_default_str()
      ->check(CLI::Range(1, 1'000'000));
  app.add_option("--max-connections-per-uid", options.max_connections_per_uid,
                 "Concurrent connections of one user other than root (root keeps a reserve besides)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1'000'000));
  app.add_option("--idle-timeout-ms", options.idle_timeout_ms, "Close connections idle this long")
      ->capture_default_str()
      ->check(CLI::Range(100L, 86'400'000L));
  app.add_option("--event-queue-length", options.event_queue_length,
                 "Events an io.pat.Daemon.Events reader may fall behind by before it loses them")
      ->capture_default_str()
      ->check(CLI::Range(1, 1'000'000));
  app.add_option("--metrics-listen", options.metrics_listen,
                 "Serve Prometheus metrics at /metrics on a loopback HOST:PORT or a Unix socket path");
  app.add_option("--log-level", options.log_level, "trace, debug, info, warn, error")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return run(options);
}
