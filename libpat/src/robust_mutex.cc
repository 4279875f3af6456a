#include "libpat/src/robust_mutex.h"

#include <cassert>

namespace pat::dataplane {

void init_robust_mutex(pthread_mutex_t& mutex) {
  pthread_mutexattr_t attributes;
  ::pthread_mutexattr_init(&attributes);
  // PROCESS_SHARED: members are separate processes. They share the mm, so a
  // private futex would work too, but glibc uses shared futex calls for
  // robust mutexes anyway, and POSIX asks for this attribute.
  ::pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
  ::pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST);
  [[maybe_unused]] int rc = ::pthread_mutex_init(&mutex, &attributes);
  assert(rc == 0);
  ::pthread_mutexattr_destroy(&attributes);
}

void RobustLock::mark_consistent() {
  [[maybe_unused]] int rc = ::pthread_mutex_consistent(mutex_);
  assert(rc == 0);
}

RobustLock::State RobustLock::settle(int rc) {
  switch (rc) {
    case 0: return State::Held;
    case EBUSY: mutex_ = nullptr; return State::Busy;
    case ENOTRECOVERABLE: mutex_ = nullptr; return State::Unrecoverable;
    default:
      // EDEADLK (we hold it already) or EINVAL (not a mutex: the arena is
      // corrupt) are bugs, not conditions to handle.
      assert(false && "pthread_mutex_lock on an arena lock failed");
      mutex_ = nullptr;
      return State::Unrecoverable;
  }
}

void RobustLock::unlock() {
  if (mutex_ == nullptr || state_ != State::Held) return;
  ::pthread_mutex_unlock(std::exchange(mutex_, nullptr));
}

}  // namespace pat::dataplane
