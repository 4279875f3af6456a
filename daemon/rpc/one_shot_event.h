// OneShotEvent: something that happens once (a host exited), awaited by any
// number of coroutines, each with its own optional timeout. Boost 1.74 has no
// awaitable operators to race a timer against a signal, so every waiter parks
// on its own timer and set() cancels them all.
#pragma once

#include "daemon/rpc/asio.h"

#include <chrono>
#include <list>
#include <optional>

namespace pat::rpc {

class OneShotEvent {
 public:
  explicit OneShotEvent(asio::any_io_executor executor) : executor_(std::move(executor)) {}

  void set() {
    if (set_) return;
    set_ = true;
    for (auto* timer : waiters_) timer->cancel();
  }
  bool is_set() const { return set_; }

  // True once set; false if the timeout passed first.
  asio::awaitable<bool> wait(std::optional<std::chrono::milliseconds> timeout) {
    if (set_) co_return true;
    asio::steady_timer timer(executor_);
    if (timeout) {
      timer.expires_after(*timeout);
    } else {
      timer.expires_at(asio::steady_timer::time_point::max());
    }
    auto it = waiters_.insert(waiters_.end(), &timer);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    waiters_.erase(it);
    co_return set_;
  }

 private:
  asio::any_io_executor executor_;
  bool set_ = false;
  std::list<asio::steady_timer*> waiters_;
};

}  // namespace pat::rpc
