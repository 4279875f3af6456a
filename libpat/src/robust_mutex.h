// Locks that live in the arena and survive a holder that dies (members may be
// killed at any instruction). A POSIX robust mutex (pthread_mutexattr_setrobust(3)):
// when its owner dies, the kernel walks the dead thread's robust list
// (set_robust_list(2), kernel/futex/core.c exit_robust_list()), marks the lock
// FUTEX_OWNER_DIED and wakes a waiter, whose lock call then returns
// EOWNERDEAD. The data the lock guards may be half-changed: the new holder
// repairs it, then pthread_mutex_consistent(3) makes the lock usable again.
//
// This works between members because they share one address space: glibc
// uses shared futex operations for robust mutexes (the kernel's robust-list
// wake is a shared one), and the shared futex key of a private anonymous page
// is (mm, address), the same for every member.
#pragma once

#include <pthread.h>

#include <cerrno>
#include <utility>

namespace pat::dataplane {

// Makes `mutex` (in the arena, not in use) a robust, process-shared mutex.
void init_robust_mutex(pthread_mutex_t& mutex);

class RobustLock {
 public:
  enum class Mode {
    Wait,  // block until acquired (members)
    Try,   // never block (the host: its event loop must not wait on a member)
  };
  enum class State {
    Held,           // acquired; the data is consistent (repaired if its holder had died)
    Busy,           // Mode::Try and a live thread holds it
    Unrecoverable,  // ENOTRECOVERABLE: a previous repair was abandoned; the data is lost
  };

  // `repair` runs when the previous holder died holding the lock; it must
  // make the guarded data consistent again and must not throw. Afterwards
  // the lock is marked consistent.
  template <class Repair>
  RobustLock(pthread_mutex_t& mutex, Mode mode, Repair&& repair) : mutex_(&mutex) {
    int rc = mode == Mode::Wait ? ::pthread_mutex_lock(mutex_) : ::pthread_mutex_trylock(mutex_);
    if (rc == EOWNERDEAD) {
      repair();
      mark_consistent();
      rc = 0;
    }
    state_ = settle(rc);
  }
  RobustLock(const RobustLock&) = delete;
  RobustLock& operator=(const RobustLock&) = delete;
  RobustLock(RobustLock&& other) noexcept
      : mutex_(std::exchange(other.mutex_, nullptr)), state_(other.state_) {}
  RobustLock& operator=(RobustLock&& other) noexcept {
    if (this != &other) {
      unlock();
      mutex_ = std::exchange(other.mutex_, nullptr);
      state_ = other.state_;
    }
    return *this;
  }
  ~RobustLock() { unlock(); }

  bool held() const { return mutex_ != nullptr && state_ == State::Held; }
  State state() const { return state_; }
  // Releases early (before a futex wake, so the woken thread finds it free).
  void unlock();

 private:
  void mark_consistent();
  State settle(int rc);

  pthread_mutex_t* mutex_;
  State state_ = State::Busy;
};

}  // namespace pat::dataplane
