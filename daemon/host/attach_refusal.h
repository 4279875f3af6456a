// The one place where an attach that failed becomes a protocol error
// (proto/errors.h), as launch_refusal.h is for launches: a refusal is
// NotAttachable with its one-word reason, an address conflict is
// AddressConflict naming the member that holds the range, a target that
// exited along the way is NotAttachable (not_running), and any other
// failure along the way is InternalError with the step.
#pragma once

#include "daemon/host/launch_refusal.h"
#include "proto/errors.h"
#include "tracer/attach/attach_error.h"

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace pat::host {

proto::ErrorReply attach_refusal(pid_t pid, const tracer::AttachError& error,
                                 const std::optional<ConflictHolder>& holder = std::nullopt);

}  // namespace pat::host
