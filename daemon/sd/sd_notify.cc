#include "daemon/sd/sd_notify.h"

#include <limits.h>  // PIPE_BUF
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "base/unique_fd.h"
#include "daemon/sd/environment.h"

namespace pat::sd {

namespace {

// systemd reads each notification into a buffer of NOTIFY_BUFFER_MAX = PIPE_BUF
// bytes (src/basic/def.h) and drops a longer datagram whole, READY=1 included.
// One byte below, in case a manager keeps room for a terminating NUL.
constexpr std::size_t kMaxMessageBytes = PIPE_BUF - 1;

// Fills `address` from a NOTIFY_SOCKET value. unix(7): a path socket's
// address includes the terminating NUL and must fit in sun_path; an abstract
// one is a NUL followed by exactly the name's bytes, and the address length,
// not a terminator, says where the name ends.
Status parse_address(const std::string& name, sockaddr_un& address, socklen_t& length) {
  std::string context = "NOTIFY_SOCKET=" + name;
  bool abstract = name[0] == '@';
  if (name[0] != '/' && !abstract) {
    return SysError{EAFNOSUPPORT, context + " (patd understands a /path or an @abstract name)"};
  }
  if (name.size() == 1 && abstract) return SysError{EINVAL, context + " (empty abstract name)"};
  std::size_t bytes = name.size() + (abstract ? 0 : 1);
  if (bytes > sizeof(address.sun_path)) return SysError{ENAMETOOLONG, context};

  address = sockaddr_un{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, name.data(), name.size());
  if (abstract) address.sun_path[0] = '\0';
  length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + bytes);
  return ok_status();
}

// sd_watchdog_enabled(3): WATCHDOG_USEC counts only when WATCHDOG_PID is unset
// or names this very process; the variables may have been inherited from a
// parent that was the one being watched.
std::optional<std::chrono::microseconds> parse_watchdog_interval(const std::optional<std::string>& usec_text,
                                                                 const std::optional<std::string>& pid_text) {
  if (!usec_text) return std::nullopt;
  if (pid_text) {
    auto pid = parse_decimal<pid_t>(*pid_text);
    if (!pid || *pid != ::getpid()) return std::nullopt;
  }
  auto usec = parse_decimal<std::uint64_t>(*usec_text);
  // systemd passes a positive count (WatchdogSec=0 means no variable at all).
  // A value beyond a signed microsecond count is no interval either.
  if (!usec || *usec == 0 || *usec > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
  return std::chrono::microseconds(static_cast<std::int64_t>(*usec));
}

// Bytes in the UTF-8 sequence that `lead` starts (1 for ASCII; a stray
// continuation byte counts as 1, it cannot be repaired by cutting).
std::size_t utf8_sequence_length(unsigned char lead) {
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;
}

}  // namespace

std::string sanitize_assignment_value(std::string_view text, std::size_t max_bytes) {
  std::string out(text.substr(0, max_bytes));
  if (text.size() > max_bytes) {
    // Find where the last, possibly cut, character starts and drop it if the
    // cut left it incomplete.
    std::size_t start = out.size();
    while (start > 0 && (static_cast<unsigned char>(out[start - 1]) & 0xC0) == 0x80) --start;
    if (start > 0) {
      std::size_t lead = start - 1;
      if (out.size() - lead < utf8_sequence_length(static_cast<unsigned char>(out[lead]))) {
        out.resize(lead);
      }
    }
  }
  // systemd drops a datagram holding a NUL byte whole, READY=1 included.
  for (char& c : out) {
    if (c == '\n' || c == '\0') c = ' ';
  }
  return out;
}

Notifier Notifier::from_environment() {
  Notifier notifier;
  std::optional<std::string> socket = take_environment_variable("NOTIFY_SOCKET");
  std::optional<std::string> watchdog_usec = take_environment_variable("WATCHDOG_USEC");
  std::optional<std::string> watchdog_pid = take_environment_variable("WATCHDOG_PID");

  // An empty NOTIFY_SOCKET is how `env NOTIFY_SOCKET= patd` switches it off.
  if (!socket || socket->empty()) return notifier;
  notifier.enabled_ = true;
  notifier.socket_name_ = *socket;
  Status parsed = parse_address(*socket, notifier.address_, notifier.address_length_);
  if (!parsed) notifier.address_error_ = parsed.error();
  notifier.watchdog_interval_ = parse_watchdog_interval(watchdog_usec, watchdog_pid);
  return notifier;
}

Status Notifier::ready(std::string_view status) {
  // Both in one datagram: systemd then shows the status from the moment the
  // unit turns active, never an active unit with a stale start-up status.
  std::string message = "READY=1\nSTATUS=";
  message += sanitize_assignment_value(status, kMaxMessageBytes - message.size());
  return send(message);
}

Status Notifier::status(std::string_view status) {
  std::string message = "STATUS=";
  message += sanitize_assignment_value(status, kMaxMessageBytes - message.size());
  return send(message);
}

Status Notifier::stopping() { return send("STOPPING=1"); }

Status Notifier::watchdog() { return send("WATCHDOG=1"); }

Status Notifier::send(std::string_view message) {
  if (!enabled_) return ok_status();
  if (address_error_) return *address_error_;

  // A fresh unconnected socket per message, addressed with sendto: connect(2)
  // on a datagram socket would pin the socket inode it found then, and a
  // manager that re-created its notify socket (daemon-reexec) would not hear
  // us. One socket and one close per message is nothing at patd's rate
  // (start-up, shutdown, a ping every few seconds).
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return last_error("sd_notify: socket(AF_UNIX, SOCK_DGRAM)");

  // No SCM_CREDENTIALS by hand: systemd sets SO_PASSCRED on its end, so the
  // kernel attaches our real pid, which is what NotifyAccess=main checks.
  // MSG_DONTWAIT: patd's event loop must never wait on the manager (a full
  // queue gives EAGAIN). MSG_NOSIGNAL: no SIGPIPE, whatever the peer does.
  ssize_t sent = ::sendto(fd.get(), message.data(), message.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                          reinterpret_cast<const sockaddr*>(&address_), address_length_);
  if (sent < 0) return last_error("sd_notify to " + socket_name_);
  // A datagram is sent whole or not at all (unix(7)); a short count would be a
  // kernel bug, not something to retry.
  if (static_cast<std::size_t>(sent) != message.size()) {
    return SysError{EMSGSIZE, "sd_notify: short datagram"};
  }
  return ok_status();
}

}  // namespace pat::sd
