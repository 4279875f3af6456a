// EventFeed: who watches the group (io.pat.Host.Watch: patd keeps its
// snapshot fresh and logs from it) and what they are sent, one MemberEvent
// per member start, exec and exit.
#pragma once

#include "proto/group_object.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>

namespace pat::host {

class EventFeed {
 public:
  using Watcher = std::function<void(const nlohmann::json& event)>;

  std::uint64_t add(Watcher watcher);
  void remove(std::uint64_t id);
  // Nobody watches: the event need not even be built.
  bool empty() const { return watchers_.empty(); }
  void publish(const proto::MemberEvent& event);

 private:
  std::map<std::uint64_t, Watcher> watchers_;
  std::uint64_t next_id_ = 1;
};

}  // namespace pat::host
