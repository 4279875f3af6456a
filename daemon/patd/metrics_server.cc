#include "daemon/patd/metrics_server.h"

#include "base/log.h"

#include <spdlog/spdlog.h>
#include <charconv>
#include <sys/stat.h>

namespace pat::patd {

namespace {

constexpr std::size_t kMaxRequestBytes = 8 << 10;
constexpr std::chrono::seconds kRequestTimeout{5};
// A client that stops reading the page is dropped after this: it would
// otherwise hold one of kMaxConnections, and the page, for ever.
constexpr std::chrono::seconds kResponseTimeout{30};
constexpr std::chrono::milliseconds kAcceptRetry{50};

std::string response(const char* status, const std::string& content_type, const std::string& body, bool head) {
  std::string out = std::string("HTTP/1.1 ") + status + "\r\nContent-Type: " + content_type +
                    "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
  if (!head) out += body;
  return out;
}

// "127.0.0.1:9464" or "[::1]:9464": a loopback endpoint, or why not.
Result<asio::ip::tcp::endpoint> loopback_endpoint(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) return SysError{EINVAL, "--metrics-listen " + address + ": expected HOST:PORT or a /path"};
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(host, ec);
  if (ec) return SysError{EINVAL, "--metrics-listen " + address + ": not an IP address"};
  if (!ip.is_loopback()) {
    return SysError{EINVAL, "--metrics-listen " + address + ": only loopback addresses (the page names every "
                                                           "group, program and pid) or a Unix socket path"};
  }
  const std::string_view digits = std::string_view(address).substr(colon + 1);
  unsigned short port = 0;
  auto [end, parse_error] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (parse_error != std::errc() || end != digits.data() + digits.size() || port == 0) {
    return SysError{EINVAL, "--metrics-listen " + address + ": the port must be 1 to 65535"};
  }
  return asio::ip::tcp::endpoint(ip, port);
}

}  // namespace

Result<std::unique_ptr<MetricsServer>> MetricsServer::listen(asio::io_context& io, const std::string& address,
                                                             DaemonMetrics& metrics) {
  std::unique_ptr<MetricsServer> server(new MetricsServer(io, address, metrics));
  boost::system::error_code ec;
  if (!address.empty() && address.front() == '/') {
    // A socket left by an earlier patd is replaced; any other file is not.
    struct stat st {};
    if (::lstat(address.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(address.c_str());
    server->local_ = std::make_unique<LocalAcceptor>(io);
    asio::local::stream_protocol::endpoint endpoint(address);
    server->local_->open(endpoint.protocol(), ec);
    if (!ec) server->local_->bind(endpoint, ec);
    if (!ec && ::chmod(address.c_str(), 0666) != 0) ec.assign(errno, boost::system::system_category());
    if (!ec) server->local_->listen(asio::socket_base::max_listen_connections, ec);
  } else {
    auto endpoint = loopback_endpoint(address);
    if (!endpoint) return endpoint.error();
    server->tcp_ = std::make_unique<asio::ip::tcp::acceptor>(io);
    server->tcp_->open(endpoint->protocol(), ec);
    if (!ec) server->tcp_->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) server->tcp_->bind(*endpoint, ec);
    if (!ec) server->tcp_->listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) return SysError{ec.value(), "--metrics-listen " + address};
  return server;
}

void MetricsServer::start() {
  if (tcp_) asio::co_spawn(io_, accept_loop(*tcp_), asio::detached);
  if (local_) asio::co_spawn(io_, accept_loop(*local_), asio::detached);
  spdlog::info("event=metrics.listening address={}", log_quote(address_));
}

template <class Acceptor>
asio::awaitable<void> MetricsServer::accept_loop(Acceptor& acceptor) {
  for (;;) {
    boost::system::error_code ec;
    auto socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // EMFILE and the like: the pending connection stays queued, so an
      // immediate retry would spin; wait a little, as the control socket does.
      asio::steady_timer pause(io_, kAcceptRetry);
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
  }
}

template <class Socket>
asio::awaitable<void> MetricsServer::serve(Socket socket) {
  ++connections_;
  struct Leaving {
    std::size_t& connections;
    ~Leaving() { --connections; }
  } leaving{connections_};
  boost::system::error_code ec;
  std::string reply;
  if (connections_ > kMaxConnections) {
    reply = response("503 Service Unavailable", "text/plain", "too many scrapes at once\n", false);
  } else {
    asio::steady_timer deadline(io_, kRequestTimeout);
    deadline.async_wait([&socket](boost::system::error_code timer_ec) {
      if (!timer_ec) socket.close();
    });
    std::string request;
    co_await asio::async_read_until(socket, asio::dynamic_buffer(request, kMaxRequestBytes), "\r\n\r\n",
                                    asio::redirect_error(asio::use_awaitable, ec));
    deadline.cancel();  // the time limit is the client's, for its request; a scrape takes what the hosts take
    if (ec == asio::error::not_found) {  // the buffer filled up before the head ended
      reply = response("431 Request Header Fields Too Large", "text/plain", "request head over 8 KiB\n", false);
    } else if (ec) {
      co_return;  // too slow, or gone: nothing to answer
    } else {
      reply = co_await answer(request);
    }
  }
  asio::steady_timer deadline(io_, kResponseTimeout);
  deadline.async_wait([&socket](boost::system::error_code timer_ec) {
    if (!timer_ec) socket.close();
  });
  co_await asio::async_write(socket, asio::buffer(reply), asio::redirect_error(asio::use_awaitable, ec));
  deadline.cancel();
  socket.shutdown(asio::socket_base::shutdown_both, ec);
}

// "METHOD TARGET HTTP/1.x" decides; headers are not looked at.
asio::awaitable<std::string> MetricsServer::answer(const std::string& request) {
  auto line = request.substr(0, request.find("\r\n"));
  auto first_space = line.find(' ');
  auto second_space = first_space == std::string::npos ? std::string::npos : line.find(' ', first_space + 1);
  std::string method = line.substr(0, first_space);
  std::string target =
      first_space == std::string::npos ? "" : line.substr(first_space + 1, second_space - first_space - 1);
  bool head = method == "HEAD";
  if (method != "GET" && !head) co_return response("405 Method Not Allowed", "text/plain", "only GET /metrics\n", false);
  if (target != "/metrics" && !target.starts_with("/metrics?")) {
    co_return response("404 Not Found", "text/plain", "only /metrics\n", head);
  }
  auto page = co_await metrics_.scrape();
  co_return response("200 OK", "text/plain; version=0.0.4; charset=utf-8", page, head);
}

}  // namespace pat::patd
