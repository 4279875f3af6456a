// Notifier: patd's side of the sd_notify(3) protocol (READY=1, STATUS=,
// STOPPING=1, WATCHDOG=1), written against the protocol rather than libsystemd
// so that patd has no runtime dependency on it. Without NOTIFY_SOCKET (patd
// started by hand, or by a manager that is not systemd) it does nothing at all.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace pat::sd {

class Notifier {
 public:
  // A notifier that is not enabled: every call succeeds and sends nothing.
  Notifier() = default;

  // Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID, then removes all
  // three from the environment. They must not reach pat-host or the members:
  // those are arbitrary programs, and one that speaks sd_notify itself
  // (gunicorn, another daemon) would otherwise report READY=1 or STOPPING=1 on
  // patd.service's behalf. Call it once, at start-up, before any thread exists
  // (unsetenv(3) is not thread-safe).
  //
  // NOTIFY_SOCKET may be a path ("/run/systemd/notify") or a Linux abstract
  // socket name written with a leading '@'. Any other form (vsock:, a relative
  // path) still gives an enabled notifier, whose every send returns the parse
  // error, so the operator sees it in patd's log instead of a silent no-op.
  static Notifier from_environment();

  // True when NOTIFY_SOCKET was set and not empty.
  bool enabled() const { return enabled_; }

  // "READY=1\nSTATUS=<status>": start-up is complete, the socket is served.
  Status ready(std::string_view status);
  // "STATUS=<status>": free text shown by `systemctl status patd`.
  Status status(std::string_view status);
  // "STOPPING=1": patd is shutting down (groups keep running).
  Status stopping();
  // "WATCHDOG=1": the keep-alive ping expected every watchdog_interval().
  Status watchdog();

  // The watchdog timeout systemd enforces (WatchdogSec=, passed as
  // WATCHDOG_USEC), when it is meant for this process: WATCHDOG_PID unset or
  // equal to our pid, as sd_watchdog_enabled(3) specifies. systemd acts once
  // this much time passes without a ping, so ping at half of it (the man page's
  // advice). Nothing when the notifier is not enabled (no one to ping), when
  // WATCHDOG_USEC is absent, zero or not a number, or names another pid.
  std::optional<std::chrono::microseconds> watchdog_interval() const { return watchdog_interval_; }

  // Sends one datagram holding `message` as is. The helpers above build their
  // messages through this; it is public for the rarer assignments of sd_notify(3)
  // (RELOADING=1, ERRNO=...). Never blocks: a full receive queue at the
  // manager's end is an error (EAGAIN), not a wait.
  Status send(std::string_view message);

 private:
  bool enabled_ = false;
  std::string socket_name_;  // NOTIFY_SOCKET as given, for error messages
  sockaddr_un address_{};
  socklen_t address_length_ = 0;
  std::optional<SysError> address_error_;  // NOTIFY_SOCKET was set but unusable
  std::optional<std::chrono::microseconds> watchdog_interval_;
};

// Makes `text` safe as the value of one sd_notify assignment: newlines and NUL
// bytes become spaces (a newline would end the assignment and let the rest,
// e.g. a group name chosen by a user, be read as "READY=1" or "MAINPID=..."; a
// NUL makes systemd drop the whole datagram), and the text is cut, on a UTF-8
// character boundary, to at most `max_bytes`. The text itself must be UTF-8:
// systemd ignores a STATUS= that is not. Exposed for the tests.
std::string sanitize_assignment_value(std::string_view text, std::size_t max_bytes);

}  // namespace pat::sd
