// SyscallServers: the threads that answer members' rerouted syscalls, one
// per seccomp listener. Owned and driven by MemberSupervisor.
//
// Why threads and not the host's event loop: the kernel's synchronous
// wake-up (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, Linux 6.6) runs a thread
// that waits on the listener itself on the CPU of the member that called,
// and wakes the member on the same CPU when it is answered, so a rerouted
// call is a switch between two threads on one CPU. An event loop waiting in
// epoll is woken without that hint and answers from whichever CPU it last
// ran on. The difference is more than latency: memory the host unmaps for a
// member on another CPU goes to that CPU's free lists, and the member's next
// page faults zero cold pages (docs/memory.md, "Where the host runs").
//
// What a server learns that its owner must act on (an execve started, the
// listener hung up) is queued as an Event, and event_fd() becomes readable;
// the owner takes the events on its own thread. A server never calls back.
#pragma once

#include "base/unique_fd.h"
#include "tracer/member_syscalls.h"

#include <cstdint>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace pat::tracer {

class SyscallServers {
 public:
  SyscallServers();
  // Stops and joins every thread still serving (fork children of members may
  // keep a listener in use after the member is gone).
  ~SyscallServers();
  SyscallServers(const SyscallServers&) = delete;
  SyscallServers& operator=(const SyscallServers&) = delete;

  using ServerId = std::uint64_t;
  struct Event {
    enum class Kind {
      ExecStarted,   // the member's own thread group called execve (see MemberSyscalls)
      ListenerGone,  // every task using the filter is gone; the thread has ended: retire() it
    };
    ServerId server;
    Kind kind;
  };

  // Serves `syscalls` on a thread of its own until every task using its
  // listener is gone. `syscalls` (and the listener it borrows) must live
  // until the ListenerGone event has been taken and retire() called.
  ServerId serve(MemberSyscalls& syscalls);
  // Joins the thread of a server that reported ListenerGone.
  void retire(ServerId server);

  // Readable while events wait to be taken.
  int event_fd() const { return events_ready_.get(); }
  std::vector<Event> take_events();

  std::size_t serving() const { return threads_.size(); }

 private:
  void run(ServerId id, MemberSyscalls& syscalls);
  void report(Event event);

  UniqueFd stop_;          // an eventfd, readable once the threads must end
  UniqueFd events_ready_;  // an eventfd, readable while events_ is not empty
  std::mutex events_mutex_;
  std::vector<Event> events_;
  // Touched by the owner's thread only.
  std::map<ServerId, std::thread> threads_;
  ServerId next_id_ = 0;
};

}  // namespace pat::tracer
