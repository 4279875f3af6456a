// MetricsServer: `patd --metrics-listen ADDR`, a minimal HTTP/1.1 server for
// Prometheus. ADDR is a loopback TCP address (127.0.0.1:9464, [::1]:9464) or
// an absolute Unix socket path; nothing else is accepted, since the page
// names every group, program and pid on the machine. The Unix socket is
// made 0666, as open as the loopback port: its directory decides who may
// reach it. One request per connection: GET /metrics (or HEAD); other
// paths get 404, other methods 405, a request head over 8 KiB 431, and one
// that has not arrived whole within 5 s nothing; a client that has not read
// its whole answer within 30 s is dropped. At most kMaxConnections at
// once; more are answered 503 at once. Each scrape is a coroutine on patd's
// loop that waits for the hosts' answers: it never blocks the control API.
#pragma once

#include "base/result.h"
#include "daemon/patd/metrics.h"
#include "daemon/rpc/asio.h"

#include <string>

namespace pat::patd {

class MetricsServer {
 public:
  // Binds ADDR now, so a bad address stops patd at start-up.
  static Result<std::unique_ptr<MetricsServer>> listen(asio::io_context& io, const std::string& address,
                                                       DaemonMetrics& metrics);
  void start();
  const std::string& address() const { return address_; }

  static constexpr std::size_t kMaxConnections = 16;

 private:
  MetricsServer(asio::io_context& io, std::string address, DaemonMetrics& metrics)
      : io_(io), address_(std::move(address)), metrics_(metrics) {}
  template <class Acceptor>
  asio::awaitable<void> accept_loop(Acceptor& acceptor);
  template <class Socket>
  asio::awaitable<void> serve(Socket socket);
  // The response to a whole request head.
  asio::awaitable<std::string> answer(const std::string& request);

  asio::io_context& io_;
  std::string address_;
  DaemonMetrics& metrics_;
  std::unique_ptr<asio::ip::tcp::acceptor> tcp_;
  std::unique_ptr<LocalAcceptor> local_;
  std::size_t connections_ = 0;
};

}  // namespace pat::patd
