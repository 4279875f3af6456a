// EventBus: the fan-out behind io.pat.Daemon.Events. Whoever notices
// something (the registry, the control API) publishes a DaemonEvent once;
// each subscriber gets it in a bounded queue of its own. Publishing never
// waits for a reader: a reader that falls behind loses the events that did
// not fit and, when it catches up, reads one events.missed saying how many,
// in the place where they were lost. In-process observers (the metrics
// counters) see every event synchronously.
#pragma once

#include "daemon/rpc/asio.h"
#include "proto/daemon_event.h"

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pat::patd {

// Who may see what: a caller sees its own groups' events, root every group's.
struct EventFilter {
  uid_t uid = 0;
  bool sees_all = false;
  std::optional<std::string> group;  // only this group
  bool admits(const proto::DaemonEvent& event) const;
};

class EventSubscription {
 public:
  EventSubscription(asio::any_io_executor executor, EventFilter filter, std::size_t capacity);

  // The next event, or events.missed where some were lost; nullopt once
  // closed.
  asio::awaitable<std::optional<std::shared_ptr<const nlohmann::json>>> next();
  // Ends the stream: next() returns nullopt from now on.
  void close();

 private:
  friend class EventBus;
  // A queued event, or (event == nullptr) a run of `missed` lost ones.
  struct Entry {
    std::shared_ptr<const nlohmann::json> event;
    std::uint64_t missed = 0;
  };
  void offer(const proto::DaemonEvent& event, const std::shared_ptr<const nlohmann::json>& encoded);

  EventFilter filter_;
  std::size_t capacity_;
  std::deque<Entry> queue_;
  bool closed_ = false;
  asio::steady_timer wakeup_;  // the reader parks on it; offer() and close() cancel it
};

class EventBus {
 public:
  // Events a subscriber may have waiting before it starts losing them.
  static constexpr std::size_t kDefaultQueueLength = 256;

  EventBus(asio::any_io_executor executor, std::size_t queue_length)
      : executor_(std::move(executor)), queue_length_(queue_length) {}

  std::shared_ptr<EventSubscription> subscribe(EventFilter filter);
  using Observer = std::function<void(const proto::DaemonEvent&)>;
  void observe(Observer observer) { observers_.push_back(std::move(observer)); }

  // Hands the event to everyone it concerns.
  void publish(proto::DaemonEvent event);

 private:
  asio::any_io_executor executor_;
  std::size_t queue_length_;
  std::vector<std::weak_ptr<EventSubscription>> subscribers_;
  std::vector<Observer> observers_;
};


}  // namespace pat::patd
