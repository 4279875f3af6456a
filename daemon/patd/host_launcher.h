// Starts a group's host process (pat-host) with the owner's credentials and
// no capabilities — the privilege rule of DESIGN.md: nothing inside a group's
// address space holds more privilege than the group's owner.
#pragma once

#include "base/result.h"
#include "base/unique_fd.h"

#include <sys/resource.h>
#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

namespace pat::patd {

struct HostCredentials {
  uid_t uid;
  gid_t gid;
  std::vector<gid_t> groups;  // supplementary groups, as the creator had them
  // The creator's resource limits: the host runs with these, not patd's
  // (issue 13, 1.3), so nothing it starts can exceed them.
  std::vector<std::pair<int, rlimit>> rlimits;
};

struct HostSpec {
  std::string host_binary;  // pat-host
  std::string group_name;
  std::string group_dir;    // <runtime>/groups/<name>, already owned by the owner
  HostCredentials credentials;
  bool ephemeral = false;            // exit when its last member has ended
  bool allow_cross_mapping = false;  // see io.pat.Group.Create
};

struct StartedHost {
  pid_t pid;
  UniqueFd pidfd;
  UniqueFd ready;  // read end: the host writes "READY\n" or "ERROR <why>\n", then closes
  UniqueFd log;    // read end of the host's stderr (host_log_relay.h)
};

// fork + drop privileges + exec. Returns at once; the caller waits on `ready`
// asynchronously. Must be called from patd's single thread (fork safety).
Result<StartedHost> start_host(const HostSpec& spec);

}  // namespace pat::patd
