// HostConfig: what patd tells a group's host when it starts it (pat-host's
// command line).
#pragma once

#include <string>

namespace pat::host {

struct HostConfig {
  std::string group;
  std::string group_dir;
  bool ephemeral = false;            // exit once the member(s) have ended
  bool allow_cross_mapping = false;  // members may map over each other's memory
  std::string attach_stub;           // pat-attach-stub, beside pat-host (docs/attach.md "The stub")
};

}  // namespace pat::host
