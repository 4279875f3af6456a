// SyscallServers: the threads that answer members' rerouted syscalls, one
// per seccomp listener.
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
// Every answer is given under the group lock, which the event loop also
// takes wherever it reads or changes what answers change: the mapping
// ledger, pins, and each member's brk.
#pragma once

#include "base/unique_fd.h"
#include "daemon/host/member.h"
#include "daemon/rpc/asio.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

namespace pat::host {

class SyscallServers {
 public:
  SyscallServers(asio::io_context& io, std::mutex& group_lock);
  // Stops and joins every thread still serving (fork children of members may
  // keep a listener in use after the member is gone).
  ~SyscallServers();
  SyscallServers(const SyscallServers&) = delete;
  SyscallServers& operator=(const SyscallServers&) = delete;

  // Serves member's listener on a thread of its own until every task using
  // it is gone. Both callbacks run on the io_context: on_exec_started each
  // time the member's own thread group calls execve, on_listener_gone once,
  // after the thread has ended. Call on the io_context's thread.
  void serve(std::shared_ptr<Member> member, std::function<void()> on_exec_started,
             std::function<void()> on_listener_gone);

  std::size_t serving() const { return threads_.size(); }

 private:
  void run(const std::shared_ptr<Member>& member, const std::function<void()>& on_exec_started);

  asio::io_context& io_;
  std::mutex& group_lock_;
  UniqueFd stop_;  // an eventfd, readable once the threads must end
  // Touched on the io_context's thread only.
  std::map<std::uint64_t, std::thread> threads_;
  std::uint64_t next_id_ = 0;
};

}  // namespace pat::host
