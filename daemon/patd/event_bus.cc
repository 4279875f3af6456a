#include "daemon/patd/event_bus.h"


#include <chrono>

namespace pat::patd {

bool EventFilter::admits(const proto::DaemonEvent& event) const {
  if (event.group.empty()) return false;  // events.* are per subscriber, never published
  if (group && *group != event.group) return false;
  return sees_all || (event.owner_uid && *event.owner_uid == uid);
}

EventSubscription::EventSubscription(asio::any_io_executor executor, EventFilter filter, std::size_t capacity)
    : filter_(std::move(filter)), capacity_(capacity), wakeup_(std::move(executor)) {}

void EventSubscription::offer(const proto::DaemonEvent& event, const std::shared_ptr<const nlohmann::json>& encoded) {
  if (closed_ || !filter_.admits(event)) return;
  if (queue_.size() >= capacity_) {
    // Full: count the loss at the back, after what the reader will still
    // get, so events.missed arrives exactly where the gap is.
    if (queue_.back().event) queue_.push_back(Entry{nullptr, 0});
    ++queue_.back().missed;
  } else {
    queue_.push_back(Entry{encoded, 0});
  }
  wakeup_.cancel();
}

void EventSubscription::close() {
  closed_ = true;
  wakeup_.cancel();
}

asio::awaitable<std::optional<std::shared_ptr<const nlohmann::json>>> EventSubscription::next() {
  while (!closed_ && queue_.empty()) {
    wakeup_.expires_at(asio::steady_timer::time_point::max());
    boost::system::error_code ec;
    co_await wakeup_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  if (closed_) co_return std::nullopt;
  Entry entry = std::move(queue_.front());
  queue_.pop_front();
  if (entry.event) co_return entry.event;
  proto::DaemonEvent missed(proto::event::kMissed);
  missed.missed = entry.missed;
  co_return std::make_shared<const nlohmann::json>(missed.to_json());
}

std::shared_ptr<EventSubscription> EventBus::subscribe(EventFilter filter) {
  auto subscription = std::make_shared<EventSubscription>(executor_, std::move(filter), queue_length_);
  std::erase_if(subscribers_, [](const auto& weak) { return weak.expired(); });
  subscribers_.push_back(subscription);
  return subscription;
}

void EventBus::publish(proto::DaemonEvent event) {
  for (const auto& observer : observers_) observer(event);
  std::shared_ptr<const nlohmann::json> encoded;  // built once, if anyone is listening
  for (const auto& weak : subscribers_) {
    auto subscription = weak.lock();
    if (!subscription) continue;
    if (!encoded) encoded = std::make_shared<const nlohmann::json>(event.to_json());
    subscription->offer(event, encoded);
  }
}

}  // namespace pat::patd
