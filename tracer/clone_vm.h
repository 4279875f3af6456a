// Starting a task that shares the caller's address space and runs a given
// function on a given stack: a member's first moments (member_child.cc) and
// an attached member's restorer with its threads (attach/member_restorer.cc).
#pragma once

#include <pthread.h>
#include <signal.h>

// long pat_tracer_clone_vm(unsigned long flags, void* stack, int* pidfd, void (*fn)(void*), void* arg)
//
// clone(2) with the child running fn(arg) on `stack` (16-byte aligned top),
// defined in member_child.cc. The child must not return through the
// caller's frame (it is on another stack) and must not touch errno. With
// CLONE_PIDFD the kernel stores the pidfd through `pidfd`; otherwise it is
// ignored. No child_tid, no TLS. Returns the new task's id or -errno in the
// caller; in the child, fn must not return.
extern "C" long pat_tracer_clone_vm(unsigned long flags, void* stack, int* pidfd, void (*fn)(void*), void* arg);

namespace pat::tracer {

// Blocks every signal in the calling thread for its lifetime: a task cloned
// meanwhile starts with all signals blocked, so no handler of the host can
// ever run on its stack.
class AllSignalsBlocked {
 public:
  AllSignalsBlocked() {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved_);
  }
  ~AllSignalsBlocked() { pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }
  AllSignalsBlocked(const AllSignalsBlocked&) = delete;
  AllSignalsBlocked& operator=(const AllSignalsBlocked&) = delete;

 private:
  sigset_t saved_;
};

}  // namespace pat::tracer
