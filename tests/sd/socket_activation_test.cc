// Socket activation as sd_listen_fds(3) specifies it: real listening sockets
// placed at fd 3 (and 4, 5), LISTEN_* set the way systemd sets them, and every
// way those variables can be wrong.
#include "tests/support/skip.h"
#include "daemon/sd/socket_activation.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "tests/sd/scoped_environment.h"

using pat::UniqueFd;
using pat::sd::is_unix_stream_listener;
using pat::sd::kListenFdsStart;
using pat::sd::listen_fds_from_environment;
using pat::sd::named_listen_fds_from_environment;
using pat::test::env_is_set;
using pat::test::ScopedEnvironment;

namespace {

// Borrows fd number `slot` for one test: whatever the test runner had there is
// parked at a high number and put back afterwards (or the slot closed again if
// it was free). Until place(), /dev/null holds the slot, so that sockets the
// test opens meanwhile get other numbers and only place() puts one at 3, as
// systemd would.
class BorrowedFdSlot {
 public:
  explicit BorrowedFdSlot(int slot) : slot_(slot), saved_flags_(::fcntl(slot, F_GETFD)) {
    if (saved_flags_ >= 0) {
      parked_.reset(::fcntl(slot_, F_DUPFD_CLOEXEC, 100));
      REQUIRE(parked_.valid());
    }
    UniqueFd null(::open("/dev/null", O_RDONLY));
    REQUIRE(null.valid());
    if (null.get() == slot_) {
      (void)null.release();  // it landed in the slot already; the slot owns it now
    } else {
      REQUIRE(::dup2(null.get(), slot_) == slot_);
    }
  }
  BorrowedFdSlot(const BorrowedFdSlot&) = delete;
  BorrowedFdSlot& operator=(const BorrowedFdSlot&) = delete;
  ~BorrowedFdSlot() {
    if (parked_) {
      ::dup2(parked_.get(), slot_);
      ::fcntl(slot_, F_SETFD, saved_flags_);
    } else {
      clear();
    }
  }

  // Puts a duplicate of `fd` at the slot, without FD_CLOEXEC, the way an
  // exec'd service receives it.
  void place(int fd) { REQUIRE(::dup2(fd, slot_) == slot_); }
  // Leaves the slot closed (what may be there is the test's to drop).
  void clear() { UniqueFd(slot_).reset(); }

 private:
  int slot_;
  int saved_flags_;
  UniqueFd parked_;
};

// A listening AF_UNIX stream socket on an autobound abstract address (unix(7):
// bind with only sun_family), so tests leave nothing in the file system.
UniqueFd unix_listener(int type = SOCK_STREAM) {
  UniqueFd fd(::socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
  REQUIRE(fd.valid());
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(sa_family_t)) == 0);
  if (type != SOCK_DGRAM) REQUIRE(::listen(fd.get(), 16) == 0);
  return fd;
}

bool has_cloexec(int fd) {
  int flags = ::fcntl(fd, F_GETFD);
  REQUIRE(flags >= 0);
  return (flags & FD_CLOEXEC) != 0;
}

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) >= 0; }

void check_listen_variables_gone() {
  CHECK_FALSE(env_is_set("LISTEN_PID"));
  CHECK_FALSE(env_is_set("LISTEN_FDS"));
  CHECK_FALSE(env_is_set("LISTEN_FDNAMES"));
  CHECK_FALSE(env_is_set("LISTEN_PIDFDID"));
}

std::string my_pid() { return std::to_string(::getpid()); }

// The test's own view of LISTEN_PIDFDID: our pidfd's inode number, when pidfds
// live on pidfs (Linux 6.9+; PID_FS_MAGIC from include/uapi/linux/magic.h).
std::optional<std::uint64_t> my_pidfd_inode() {
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, ::getpid(), 0)));
  if (!pidfd) return std::nullopt;
  struct statfs fs {};
  struct stat st {};
  if (::fstatfs(pidfd.get(), &fs) != 0 || fs.f_type != 0x50494446) return std::nullopt;
  if (::fstat(pidfd.get(), &st) != 0) return std::nullopt;
  return static_cast<std::uint64_t>(st.st_ino);
}

}  // namespace

TEST_CASE("no LISTEN_* variables: no fds and no error") {
  ScopedEnvironment env;
  env.unset("LISTEN_PID");
  env.unset("LISTEN_FDS");
  env.unset("LISTEN_FDNAMES");
  env.unset("LISTEN_PIDFDID");
  auto fds = listen_fds_from_environment();
  REQUIRE(fds.ok());
  CHECK(fds->empty());
}

TEST_CASE("one passed socket: taken at fd 3, FD_CLOEXEC set, variables removed") {
  BorrowedFdSlot slot(kListenFdsStart);
  UniqueFd listener = unix_listener();
  slot.place(listener.get());
  REQUIRE_FALSE(has_cloexec(3));

  ScopedEnvironment env;
  env.set("LISTEN_PID", my_pid());
  env.set("LISTEN_FDS", "1");
  env.unset("LISTEN_FDNAMES");
  auto fds = listen_fds_from_environment();
  REQUIRE(fds.ok());
  REQUIRE(fds->size() == 1);
  CHECK((*fds)[0].get() == 3);
  CHECK(has_cloexec(3));
  CHECK(is_unix_stream_listener((*fds)[0].get()));
  check_listen_variables_gone();
}

TEST_CASE("names come from LISTEN_FDNAMES, in order, or are \"unknown\"") {
  BorrowedFdSlot slot3(3), slot4(4), slot5(5);
  UniqueFd a = unix_listener(), b = unix_listener(), c = unix_listener();
  slot3.place(a.get());
  slot4.place(b.get());
  slot5.place(c.get());

  SUBCASE("named") {
    ScopedEnvironment env;
    env.set("LISTEN_PID", my_pid());
    env.set("LISTEN_FDS", "3");
    env.set("LISTEN_FDNAMES", "patd.socket::extra");  // an empty name is still a name
    auto fds = named_listen_fds_from_environment();
    REQUIRE(fds.ok());
    REQUIRE(fds->size() == 3);
    CHECK((*fds)[0].fd.get() == 3);
    CHECK((*fds)[0].name == "patd.socket");
    CHECK((*fds)[1].fd.get() == 4);
    CHECK((*fds)[1].name == "");
    CHECK((*fds)[2].fd.get() == 5);
    CHECK((*fds)[2].name == "extra");
    for (int fd = 3; fd <= 5; ++fd) CHECK(has_cloexec(fd));
    check_listen_variables_gone();
  }
  SUBCASE("unnamed") {
    ScopedEnvironment env;
    env.set("LISTEN_PID", my_pid());
    env.set("LISTEN_FDS", "2");
    env.unset("LISTEN_FDNAMES");
    auto fds = named_listen_fds_from_environment();
    REQUIRE(fds.ok());
    REQUIRE(fds->size() == 2);
    CHECK((*fds)[0].name == "unknown");
    CHECK((*fds)[1].name == "unknown");
    CHECK_FALSE(has_cloexec(5));  // not passed, not touched
  }
}

TEST_CASE("fds meant for another process are left alone") {
  BorrowedFdSlot slot(3);
  UniqueFd listener = unix_listener();
  slot.place(listener.get());

  for (std::string other : {std::to_string(::getpid() + 1), std::string("1")}) {
    CAPTURE(other);
    ScopedEnvironment env;
    env.set("LISTEN_PID", other);
    env.set("LISTEN_FDS", "1");
    env.set("LISTEN_FDNAMES", "patd.socket");
    auto fds = listen_fds_from_environment();
    REQUIRE(fds.ok());
    CHECK(fds->empty());
    CHECK(is_open(3));
    CHECK_FALSE(has_cloexec(3));  // sd_listen_fds(3) touches nothing that is not ours
    check_listen_variables_gone();  // ...but still keeps the variables from our children
  }
}

TEST_CASE("LISTEN_PID without LISTEN_FDS is no activation") {
  ScopedEnvironment env;
  env.set("LISTEN_PID", my_pid());
  env.unset("LISTEN_FDS");
  auto fds = listen_fds_from_environment();
  REQUIRE(fds.ok());
  CHECK(fds->empty());
  check_listen_variables_gone();
}

TEST_CASE("malformed variables are errors, and the variables are removed anyway") {
  BorrowedFdSlot slot(3);
  UniqueFd listener = unix_listener();
  slot.place(listener.get());
  struct Case {
    std::string pid, fds;
    std::optional<std::string> names;
    std::string mentions;  // the variable the error message must name
  };
  const std::string me = my_pid();
  const Case cases[] = {
      {"abc", "1", std::nullopt, "LISTEN_PID"},
      {me + "x", "1", std::nullopt, "LISTEN_PID"},
      {"", "1", std::nullopt, "LISTEN_PID"},
      {"0", "1", std::nullopt, "LISTEN_PID"},
      {"-" + me, "1", std::nullopt, "LISTEN_PID"},
      {me, "0", std::nullopt, "LISTEN_FDS"},  // systemd never sets 0; libsystemd refuses it too
      {me, "-1", std::nullopt, "LISTEN_FDS"},
      {me, "one", std::nullopt, "LISTEN_FDS"},
      {me, "1 ", std::nullopt, "LISTEN_FDS"},
      {me, "", std::nullopt, "LISTEN_FDS"},
      {me, "2147483647", std::nullopt, "LISTEN_FDS"},  // would overflow 3 + n
      {me, "99999999999", std::nullopt, "LISTEN_FDS"},
      {me, "1", std::string("patd.socket:extra"), "LISTEN_FDNAMES"},
      {me, "1", std::string(""), "LISTEN_FDNAMES"},  // empty: zero names for one fd
  };
  for (const Case& c : cases) {
    CAPTURE(c.pid);
    CAPTURE(c.fds);
    CAPTURE(c.names.value_or("<unset>"));
    ScopedEnvironment env;
    env.set("LISTEN_PID", c.pid);
    env.set("LISTEN_FDS", c.fds);
    if (c.names) env.set("LISTEN_FDNAMES", *c.names); else env.unset("LISTEN_FDNAMES");
    auto fds = named_listen_fds_from_environment();
    REQUIRE_FALSE(fds.ok());
    CHECK(fds.error().code == EINVAL);
    CHECK(fds.error().message().find(c.mentions) != std::string::npos);
    CHECK(is_open(3));  // an error never closes an fd
    check_listen_variables_gone();
  }
}

TEST_CASE("a passed fd that is not open is an error and nothing is closed") {
  BorrowedFdSlot slot3(3), slot4(4);
  UniqueFd listener = unix_listener();
  slot3.place(listener.get());
  slot4.clear();
  ScopedEnvironment env;
  env.set("LISTEN_PID", my_pid());
  env.set("LISTEN_FDS", "2");
  auto fds = listen_fds_from_environment();
  REQUIRE_FALSE(fds.ok());
  CHECK(fds.error().code == EBADF);
  CHECK(fds.error().message().find("fd 4") != std::string::npos);
  CHECK(is_open(3));
  check_listen_variables_gone();
}

TEST_CASE("LISTEN_PIDFDID must name this process when the kernel can tell") {
  std::optional<std::uint64_t> mine = my_pidfd_inode();
  if (!mine) PAT_SKIP("no pidfs on this kernel (before 6.9): LISTEN_PIDFDID cannot be checked");
  BorrowedFdSlot slot(3);
  UniqueFd listener = unix_listener();
  slot.place(listener.get());

  SUBCASE("ours") {
    ScopedEnvironment env;
    env.set("LISTEN_PID", my_pid());
    env.set("LISTEN_PIDFDID", std::to_string(*mine));
    env.set("LISTEN_FDS", "1");
    auto fds = listen_fds_from_environment();
    REQUIRE(fds.ok());
    CHECK(fds->size() == 1);
    check_listen_variables_gone();
  }
  SUBCASE("a former process with our pid") {
    ScopedEnvironment env;
    env.set("LISTEN_PID", my_pid());
    env.set("LISTEN_PIDFDID", std::to_string(*mine + 1));
    env.set("LISTEN_FDS", "1");
    auto fds = listen_fds_from_environment();
    REQUIRE(fds.ok());
    CHECK(fds->empty());
    CHECK_FALSE(has_cloexec(3));
    check_listen_variables_gone();
  }
  SUBCASE("garbage") {
    ScopedEnvironment env;
    env.set("LISTEN_PID", my_pid());
    env.set("LISTEN_PIDFDID", "pidfd");
    env.set("LISTEN_FDS", "1");
    auto fds = listen_fds_from_environment();
    REQUIRE_FALSE(fds.ok());
    CHECK(fds.error().message().find("LISTEN_PIDFDID") != std::string::npos);
    check_listen_variables_gone();
  }
}

TEST_CASE("is_unix_stream_listener accepts only a listening AF_UNIX stream socket") {
  SUBCASE("listening unix stream: yes") {
    UniqueFd fd = unix_listener();
    CHECK(is_unix_stream_listener(fd.get()));
  }
  SUBCASE("bound but not listening: no") {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(sa_family_t)) == 0);
    CHECK_FALSE(is_unix_stream_listener(fd.get()));
  }
  SUBCASE("a connected stream (what Accept=yes would pass): no") {
    int pair[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
    UniqueFd a(pair[0]), b(pair[1]);
    CHECK_FALSE(is_unix_stream_listener(a.get()));
  }
  SUBCASE("unix datagram (ListenDatagram=): no") {
    UniqueFd fd = unix_listener(SOCK_DGRAM);
    CHECK_FALSE(is_unix_stream_listener(fd.get()));
  }
  SUBCASE("listening unix seqpacket (ListenSequentialPacket=): no") {
    UniqueFd fd = unix_listener(SOCK_SEQPACKET);
    CHECK_FALSE(is_unix_stream_listener(fd.get()));
  }
  SUBCASE("not a socket, or not open: no") {
    int pipe_fds[2];
    REQUIRE(::pipe2(pipe_fds, O_CLOEXEC) == 0);
    UniqueFd r(pipe_fds[0]), w(pipe_fds[1]);
    CHECK_FALSE(is_unix_stream_listener(r.get()));
    UniqueFd file(::open("/proc/self/status", O_RDONLY | O_CLOEXEC));
    CHECK_FALSE(is_unix_stream_listener(file.get()));
    CHECK_FALSE(is_unix_stream_listener(-1));
    int closed = UniqueFd(::fcntl(r.get(), F_DUPFD_CLOEXEC, 0)).get();  // closed at the semicolon
    CHECK_FALSE(is_unix_stream_listener(closed));
  }
}

TEST_CASE("is_unix_stream_listener refuses a listening TCP socket (ListenStream=<port>)") {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd.valid());
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 || ::listen(fd.get(), 1) != 0) {
    PAT_SKIP("no IPv4 loopback here");
  }
  CHECK_FALSE(is_unix_stream_listener(fd.get()));
}
