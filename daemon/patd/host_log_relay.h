// A group host's log, relayed into patd's (issue 13, 1.4). The host runs as
// the group's owner, and everything in the group's address space can use its
// descriptors (pidfd_getfd on the host is the owner's right). So the host's
// stderr is a pipe that patd reads, never patd's own stderr: an owner could
// otherwise append forged lines to, or truncate, a root-owned log. patd writes
// each host line as one `event=host.log` line of its own, attributed to the
// group and host, the host's text quoted, so that nothing the owner writes can
// pass for a line of patd's; and it bounds line length and rate, so that a
// flood costs patd little and drops lines with a count instead.
#pragma once

#include "base/unique_fd.h"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include <string>
#include <string_view>
#include <sys/types.h>

namespace pat::patd {

// One line as the host wrote it, split into what patd logs. Host lines look
// like "2026-12-03T16:00:00.123+0000 info pat-host: event=...": the time is
// dropped (patd stamps its own), the level kept, the rest becomes the text.
// Anything else (a member's or an owner's own writes) is text at level info.
struct HostLogLine {
  std::string level = "info";
  std::string text;
};
HostLogLine parse_host_log_line(std::string_view line);

// Reads `log` (the read end of the host's stderr pipe) until the host and
// everything holding the write end have closed it.
boost::asio::awaitable<void> relay_host_log(boost::asio::io_context& io, UniqueFd log, std::string group,
                                            pid_t host_pid);

}  // namespace pat::patd
