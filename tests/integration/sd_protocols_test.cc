// patd speaking systemd's protocols for real, against sockets this test
// creates (PID 1 here is not systemd): sd_notify READY/STATUS/STOPPING and
// WATCHDOG pings, and socket activation through LISTEN_FDS.
#include "base/unique_fd.h"
#include "tests/support/patd_instance.h"

#include <doctest/doctest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <csignal>
#include <cstring>

using namespace pat::testing;

namespace {

sockaddr_un address_of(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  REQUIRE(path.size() < sizeof(address.sun_path));
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  return address;
}

// The manager's end of NOTIFY_SOCKET.
class NotifyListener {
 public:
  explicit NotifyListener(const std::string& path) : fd_(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    auto address = address_of(path);
    REQUIRE(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  }
  // The next datagram within `timeout`, or "".
  std::string next(std::chrono::milliseconds timeout = std::chrono::milliseconds(10'000)) {
    pollfd pfd{fd_.get(), POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(timeout.count())) <= 0) return "";
    char buffer[4096];
    ssize_t n = ::recv(fd_.get(), buffer, sizeof(buffer), 0);
    return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : "";
  }

 private:
  pat::UniqueFd fd_;
};

}  // namespace

TEST_CASE("sd_notify: READY=1 with a STATUS once serving, STOPPING=1 on SIGTERM") {
  auto dir = std::make_shared<RuntimeDirectory>();
  std::string notify_path = dir->path() + "/notify.sock";
  NotifyListener manager(notify_path);
  PatdOptions options;
  options.env = {{"NOTIFY_SOCKET", notify_path}};
  PatdInstance patd(dir, options);
  std::string ready = manager.next();
  CHECK(ready.find("READY=1\n") == 0);
  CHECK(ready.find("STATUS=serving " + patd.socket()) != std::string::npos);
  patd.process().signal(SIGTERM);
  CHECK(manager.next() == "STOPPING=1");
  CHECK(patd.process().wait(std::chrono::milliseconds(10'000)) == 0);
}

TEST_CASE("sd_notify: WATCHDOG=1 pings at half of WATCHDOG_USEC; none for another WATCHDOG_PID") {
  auto dir = std::make_shared<RuntimeDirectory>();
  std::string notify_path = dir->path() + "/notify.sock";
  {
    NotifyListener manager(notify_path);
    PatdOptions options;
    options.env = {{"NOTIFY_SOCKET", notify_path}, {"WATCHDOG_USEC", "200000"}};
    PatdInstance patd(dir, options);
    int pings = 0;
    auto start = std::chrono::steady_clock::now();
    while (pings < 4 && std::chrono::steady_clock::now() - start < std::chrono::seconds(5)) {
      if (manager.next(std::chrono::milliseconds(1'000)) == "WATCHDOG=1") ++pings;
    }
    CHECK(pings == 4);
    // Four pings 100 ms apart: well under the 200 ms timeout each.
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(2'000));
  }
  std::filesystem::remove(notify_path);
  NotifyListener manager(notify_path);
  PatdOptions options;
  options.env = {{"NOTIFY_SOCKET", notify_path}, {"WATCHDOG_USEC", "200000"}, {"WATCHDOG_PID", "1"}};
  PatdInstance patd(dir, options);
  CHECK(manager.next().find("READY=1") == 0);
  CHECK(manager.next(std::chrono::milliseconds(600)) == "");
}

TEST_CASE("without NOTIFY_SOCKET nothing is sent and nothing breaks") {
  PatdInstance patd;
  CHECK(patd.answering());
  CHECK(patd.log().find("event=notify.failed") == std::string::npos);
}

TEST_CASE("socket activation: patd serves the socket it is given and binds none of its own") {
  auto dir = std::make_shared<RuntimeDirectory>();
  // What systemd does for patd.socket: bind and listen, then pass it as fd 3.
  pat::UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  auto address = address_of(dir->path() + "/patd.sock");
  REQUIRE(::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  REQUIRE(::listen(listener.get(), 16) == 0);
  ::chmod(address.sun_path, 0666);
  PatdOptions options;
  options.env = {{"LISTEN_FDS", "1"}, {"LISTEN_PID", "self"}, {"LISTEN_FDNAMES", "patd.socket"}};
  options.passed_fds = {listener.get()};
  PatdInstance patd(dir, options);
  CHECK(patd.patctl({"group", "create", "activated"}).exit_code == 0);
  CHECK(patd.log().find("activated=true") != std::string::npos);
  // The host must not inherit the listening socket or the variables.
  auto group = patd.patctl_json({"group", "show", "activated"});
  auto host = group["host_pid"].get<pid_t>();
  auto environ = read_file("/proc/" + std::to_string(host) + "/environ");
  CHECK(environ.find("LISTEN_") == std::string::npos);
  for (const auto& entry : std::filesystem::directory_iterator("/proc/" + std::to_string(host) + "/fd")) {
    std::error_code ec;
    auto target = std::filesystem::read_symlink(entry.path(), ec).string();
    CHECK(target.find(std::to_string(::getpid())) == std::string::npos);  // nothing of ours leaked
  }
  // Stopping an activated patd leaves the socket file (it belongs to systemd).
  patd.process().signal(SIGTERM);
  REQUIRE(patd.process().wait(std::chrono::milliseconds(10'000)).has_value());
  CHECK(std::filesystem::exists(dir->path() + "/patd.sock"));
}

TEST_CASE("socket activation with the wrong kind of socket is refused with a clear error") {
  auto dir = std::make_shared<RuntimeDirectory>();
  pat::UniqueFd datagram(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  PatdOptions options;
  options.env = {{"LISTEN_FDS", "1"}, {"LISTEN_PID", "self"}};
  options.passed_fds = {datagram.get()};
  options.wait_for_socket = false;
  PatdInstance patd(dir, options);
  auto status = patd.process().wait(std::chrono::milliseconds(10'000));
  REQUIRE(status.has_value());
  CHECK(*status == 1);
  CHECK(patd.log().find("not a listening AF_UNIX stream socket") != std::string::npos);
}
