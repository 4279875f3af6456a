// The one place where a launch that failed becomes a protocol error
// (proto/errors.h): each LaunchError kind, and each failed set-up step with
// its errno, gets its error name, message and parameters here.
#pragma once

#include "proto/errors.h"
#include "tracer/launch_error.h"

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace pat::host {

// What was asked for, for the message.
struct LaunchRequestFacts {
  std::string program;
  std::string cwd;
};

// The member whose memory holds an AddressConflict's range, if any.
struct ConflictHolder {
  pid_t pid;
  std::vector<std::string> argv;
};

proto::ErrorReply launch_refusal(const tracer::LaunchError& error, const LaunchRequestFacts& request,
                                 const std::optional<ConflictHolder>& holder = std::nullopt);

}  // namespace pat::host
