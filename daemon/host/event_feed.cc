#include "daemon/host/event_feed.h"

namespace pat::host {

std::uint64_t EventFeed::add(Watcher watcher) {
  auto id = next_id_++;
  watchers_.emplace(id, std::move(watcher));
  return id;
}

void EventFeed::remove(std::uint64_t id) { watchers_.erase(id); }

void EventFeed::publish(const proto::MemberEvent& event) {
  if (watchers_.empty()) return;
  nlohmann::json message = event.to_json();
  auto watchers = watchers_;  // a watcher may remove itself
  for (auto& [id, watcher] : watchers) watcher(message);
}

}  // namespace pat::host
