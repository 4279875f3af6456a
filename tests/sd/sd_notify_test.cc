// Notifier: the exact datagrams sd_notify(3) expects, to a path and to an
// abstract socket; WATCHDOG_USEC/WATCHDOG_PID; silence without NOTIFY_SOCKET;
// errors returned, never a blocked caller.
#include "daemon/sd/sd_notify.h"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>

#include "base/unique_fd.h"
#include "tests/sd/scoped_environment.h"

using pat::UniqueFd;
using pat::sd::Notifier;
using pat::sd::sanitize_assignment_value;
using pat::test::env_is_set;
using pat::test::ScopedEnvironment;

namespace {

// Plays the service manager: a datagram socket bound where NOTIFY_SOCKET will
// point, path or abstract, which the test reads without blocking.
class NotifyReceiver {
 public:
  enum class Kind { kPath, kAbstract };

  explicit NotifyReceiver(Kind kind) {
    static std::atomic<int> serial{0};
    std::string unique = "pat-sd-test-" + std::to_string(::getpid()) + "-" + std::to_string(serial++);
    fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd_.valid());
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    socklen_t length;
    if (kind == Kind::kPath) {
      directory_ = std::filesystem::temp_directory_path() / unique;
      std::filesystem::create_directory(directory_);
      name_ = (directory_ / "notify").string();
      std::strcpy(address.sun_path, name_.c_str());
      length = offsetof(sockaddr_un, sun_path) + name_.size() + 1;
    } else {
      name_ = "@" + unique;
      std::memcpy(address.sun_path + 1, unique.data(), unique.size());  // sun_path[0] stays NUL
      length = offsetof(sockaddr_un, sun_path) + 1 + unique.size();
    }
    REQUIRE(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&address), length) == 0);
  }
  ~NotifyReceiver() {
    if (!directory_.empty()) std::filesystem::remove_all(directory_);
  }

  // What NOTIFY_SOCKET holds to reach this receiver.
  const std::string& name() const { return name_; }
  int fd() const { return fd_.get(); }

  // The next queued datagram, exactly as sent. A unix datagram is queued at
  // the receiver before sendto(2) returns, so no waiting is needed.
  std::optional<std::string> receive() {
    char buffer[8192];
    ssize_t n = ::recv(fd_.get(), buffer, sizeof(buffer), MSG_DONTWAIT);
    if (n < 0) return std::nullopt;
    return std::string(buffer, static_cast<std::size_t>(n));
  }

 private:
  UniqueFd fd_;
  std::string name_;
  std::filesystem::path directory_;
};

// A notifier built from an environment where NOTIFY_SOCKET = `socket` and the
// watchdog variables are absent unless set by the caller beforehand.
Notifier notifier_for(ScopedEnvironment& env, const std::string& socket) {
  env.set("NOTIFY_SOCKET", socket);
  return Notifier::from_environment();
}

}  // namespace

TEST_CASE("without NOTIFY_SOCKET nothing is sent and every call succeeds") {
  ScopedEnvironment env;
  env.unset("NOTIFY_SOCKET");
  env.set("WATCHDOG_USEC", "30000000");
  NotifyReceiver receiver(NotifyReceiver::Kind::kPath);

  Notifier notifier = Notifier::from_environment();
  CHECK_FALSE(notifier.enabled());
  CHECK(notifier.ready("serving").ok());
  CHECK(notifier.status("still serving").ok());
  CHECK(notifier.watchdog().ok());
  CHECK(notifier.stopping().ok());
  CHECK(notifier.send("RELOADING=1").ok());
  // No one to ping, so no interval, even though WATCHDOG_USEC was there.
  CHECK_FALSE(notifier.watchdog_interval().has_value());
  CHECK_FALSE(receiver.receive().has_value());
}

TEST_CASE("an empty NOTIFY_SOCKET switches notification off") {
  ScopedEnvironment env;
  Notifier notifier = notifier_for(env, "");
  CHECK_FALSE(notifier.enabled());
  CHECK(notifier.ready("x").ok());
}

TEST_CASE("a default-constructed notifier is disabled") {
  Notifier notifier;
  CHECK_FALSE(notifier.enabled());
  CHECK(notifier.watchdog().ok());
}

TEST_CASE("exact datagrams for ready, status, stopping and watchdog") {
  for (auto kind : {NotifyReceiver::Kind::kPath, NotifyReceiver::Kind::kAbstract}) {
    NotifyReceiver receiver(kind);
    CAPTURE(receiver.name());
    ScopedEnvironment env;
    Notifier notifier = notifier_for(env, receiver.name());
    REQUIRE(notifier.enabled());

    REQUIRE(notifier.ready("serving /run/patd/patd.sock, 0 groups").ok());
    CHECK(receiver.receive() == std::string("READY=1\nSTATUS=serving /run/patd/patd.sock, 0 groups"));

    REQUIRE(notifier.status("3 groups, 12 members").ok());
    CHECK(receiver.receive() == std::string("STATUS=3 groups, 12 members"));

    REQUIRE(notifier.watchdog().ok());
    CHECK(receiver.receive() == std::string("WATCHDOG=1"));

    REQUIRE(notifier.stopping().ok());
    CHECK(receiver.receive() == std::string("STOPPING=1"));

    REQUIRE(notifier.send("RELOADING=1").ok());
    CHECK(receiver.receive() == std::string("RELOADING=1"));

    CHECK_FALSE(receiver.receive().has_value());  // one datagram per call, no more
  }
}

TEST_CASE("from_environment removes the variables so children cannot inherit them") {
  NotifyReceiver receiver(NotifyReceiver::Kind::kAbstract);
  ScopedEnvironment env;
  env.set("WATCHDOG_USEC", "1000000");
  env.set("WATCHDOG_PID", std::to_string(::getpid()));
  Notifier notifier = notifier_for(env, receiver.name());
  CHECK_FALSE(env_is_set("NOTIFY_SOCKET"));
  CHECK_FALSE(env_is_set("WATCHDOG_USEC"));
  CHECK_FALSE(env_is_set("WATCHDOG_PID"));
  // The notifier keeps working from what it read.
  CHECK(notifier.watchdog().ok());
  CHECK(receiver.receive() == std::string("WATCHDOG=1"));
  CHECK(notifier.watchdog_interval() == std::chrono::seconds(1));
  // A second reader finds nothing, as a child of patd would.
  CHECK_FALSE(Notifier::from_environment().enabled());
}

TEST_CASE("the kernel attaches our pid, which NotifyAccess=main checks") {
  NotifyReceiver receiver(NotifyReceiver::Kind::kAbstract);
  int on = 1;
  REQUIRE(::setsockopt(receiver.fd(), SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) == 0);
  ScopedEnvironment env;
  Notifier notifier = notifier_for(env, receiver.name());
  REQUIRE(notifier.watchdog().ok());

  char data[64];
  iovec iov{data, sizeof(data)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
  msghdr message{};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof(control);
  ssize_t n = ::recvmsg(receiver.fd(), &message, MSG_DONTWAIT);
  REQUIRE(n == 10);
  cmsghdr* header = CMSG_FIRSTHDR(&message);
  REQUIRE(header != nullptr);
  REQUIRE(header->cmsg_type == SCM_CREDENTIALS);
  ucred credentials;
  std::memcpy(&credentials, CMSG_DATA(header), sizeof(credentials));
  CHECK(credentials.pid == ::getpid());
}

TEST_CASE("status text cannot inject assignments or NULs") {
  NotifyReceiver receiver(NotifyReceiver::Kind::kAbstract);
  ScopedEnvironment env;
  Notifier notifier = notifier_for(env, receiver.name());
  REQUIRE(notifier.status("group evil\nREADY=1\nMAINPID=1").ok());
  CHECK(receiver.receive() == std::string("STATUS=group evil READY=1 MAINPID=1"));
  REQUIRE(notifier.ready(std::string("a\0b", 3)).ok());
  CHECK(receiver.receive() == std::string("READY=1\nSTATUS=a b"));
}

TEST_CASE("a long status is cut to fit systemd's notify buffer") {
  NotifyReceiver receiver(NotifyReceiver::Kind::kAbstract);
  ScopedEnvironment env;
  Notifier notifier = notifier_for(env, receiver.name());
  REQUIRE(notifier.ready(std::string(10000, 'x')).ok());
  auto datagram = receiver.receive();
  REQUIRE(datagram.has_value());
  CHECK(datagram->size() == 4095);  // PIPE_BUF - 1
  CHECK(datagram->rfind("READY=1\nSTATUS=xxx", 0) == 0);
}

TEST_CASE("cutting never splits a UTF-8 character") {
  const std::string e_acute = "\xC3\xA9";           // é, 2 bytes
  const std::string euro = "\xE2\x82\xAC";          // €, 3 bytes
  const std::string snake = "\xF0\x9F\x90\x8D";     // 🐍, 4 bytes
  CHECK(sanitize_assignment_value("h" + e_acute, 2) == "h");
  CHECK(sanitize_assignment_value("h" + e_acute, 3) == "h" + e_acute);
  CHECK(sanitize_assignment_value("a" + euro + "b", 2) == "a");
  CHECK(sanitize_assignment_value("a" + euro + "b", 3) == "a");
  CHECK(sanitize_assignment_value("a" + euro + "b", 4) == "a" + euro);
  for (std::size_t cut = 1; cut <= 4; ++cut) {
    CAPTURE(cut);
    CHECK(sanitize_assignment_value("z" + snake, cut) == "z");
  }
  CHECK(sanitize_assignment_value("z" + snake, 5) == "z" + snake);
  CHECK(sanitize_assignment_value("short", 100) == "short");
  CHECK(sanitize_assignment_value("", 0) == "");
}

TEST_CASE("a full receive queue gives EAGAIN instead of blocking the caller") {
  NotifyReceiver receiver(NotifyReceiver::Kind::kAbstract);
  ScopedEnvironment env;
  Notifier notifier = notifier_for(env, receiver.name());
  // Nobody reads: the queue fills after net.unix.max_dgram_qlen datagrams (or
  // the socket buffer); a blocking send would hang here until the test times out.
  std::optional<pat::SysError> failure;
  for (int i = 0; i < 100000 && !failure; ++i) {
    pat::Status sent = notifier.status(std::string(512, 's'));
    if (!sent) failure = sent.error();
  }
  REQUIRE(failure.has_value());
  CHECK(failure->code == EAGAIN);
  // Once the manager reads again, notifications flow again.
  while (receiver.receive()) {
  }
  CHECK(notifier.watchdog().ok());
}

TEST_CASE("send errors are returned with the socket named, not thrown") {
  ScopedEnvironment env;
  Notifier notifier = notifier_for(env, "/nonexistent-pat-dir/notify");
  CHECK(notifier.enabled());
  pat::Status sent = notifier.ready("x");
  REQUIRE_FALSE(sent.ok());
  CHECK(sent.error().code == ENOENT);
  CHECK(sent.error().message().find("/nonexistent-pat-dir/notify") != std::string::npos);

  // Nobody bound to this abstract name: the kernel refuses at once.
  Notifier nobody = notifier_for(env, "@pat-sd-test-nobody-listens-" + std::to_string(::getpid()));
  pat::Status refused = nobody.watchdog();
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ECONNREFUSED);
}

TEST_CASE("unusable NOTIFY_SOCKET values give an enabled notifier that reports why") {
  struct Case {
    std::string value;
    int code;
  };
  const Case cases[] = {
      {"relative/notify", EAFNOSUPPORT},
      {"vsock:2:1234", EAFNOSUPPORT},  // systemd 253+ form for VMs; patd never needs it
      {"@", EINVAL},
      {"/" + std::string(107, 'p'), ENAMETOOLONG},  // 108 bytes + NUL > sun_path
      {"@" + std::string(108, 'a'), ENAMETOOLONG},  // NUL + 108 > sun_path
  };
  for (const Case& c : cases) {
    CAPTURE(c.value);
    ScopedEnvironment env;
    Notifier notifier = notifier_for(env, c.value);
    CHECK(notifier.enabled());
    pat::Status sent = notifier.ready("x");
    REQUIRE_FALSE(sent.ok());
    CHECK(sent.error().code == c.code);
    CHECK(sent.error().context.find("NOTIFY_SOCKET=") != std::string::npos);
  }
}

TEST_CASE("the longest names that fit are accepted") {
  // 107 path bytes + NUL, and NUL + 107 abstract bytes, both fill sun_path.
  ScopedEnvironment env;
  Notifier path = notifier_for(env, "/" + std::string(106, 'p'));
  CHECK(path.watchdog().error().code == ENOENT);  // parsed; just nothing there
  Notifier abstract = notifier_for(env, "@" + std::string(107, 'a'));
  CHECK(abstract.watchdog().error().code == ECONNREFUSED);
}

TEST_CASE("WATCHDOG_USEC counts only when WATCHDOG_PID is unset or ours") {
  NotifyReceiver receiver(NotifyReceiver::Kind::kAbstract);
  const std::string me = std::to_string(::getpid());
  struct Case {
    std::optional<std::string> usec, pid;
    std::optional<std::chrono::microseconds> expected;
  };
  const Case cases[] = {
      {std::nullopt, std::nullopt, std::nullopt},
      {"30000000", std::nullopt, std::chrono::seconds(30)},
      {"30000000", me, std::chrono::seconds(30)},
      {"1", me, std::chrono::microseconds(1)},
      {"30000000", std::to_string(::getpid() + 1), std::nullopt},  // meant for another process
      {"30000000", "1", std::nullopt},
      {"30000000", "not-a-pid", std::nullopt},
      {"30000000", "", std::nullopt},
      {std::nullopt, me, std::nullopt},
      {"0", std::nullopt, std::nullopt},  // zero is "off", not "ping constantly"
      {"30s", std::nullopt, std::nullopt},
      {"-5", std::nullopt, std::nullopt},
      {"+5", std::nullopt, std::nullopt},
      {" 5", std::nullopt, std::nullopt},
      {"", std::nullopt, std::nullopt},
      {"18446744073709551615", std::nullopt, std::nullopt},  // USEC_INFINITY
      {"99999999999999999999999", std::nullopt, std::nullopt},
  };
  for (const Case& c : cases) {
    CAPTURE(c.usec.value_or("<unset>"));
    CAPTURE(c.pid.value_or("<unset>"));
    ScopedEnvironment env;
    if (c.usec) env.set("WATCHDOG_USEC", *c.usec); else env.unset("WATCHDOG_USEC");
    if (c.pid) env.set("WATCHDOG_PID", *c.pid); else env.unset("WATCHDOG_PID");
    Notifier notifier = notifier_for(env, receiver.name());
    CHECK(notifier.watchdog_interval() == c.expected);
    CHECK_FALSE(env_is_set("WATCHDOG_USEC"));
    CHECK_FALSE(env_is_set("WATCHDOG_PID"));
  }
}
