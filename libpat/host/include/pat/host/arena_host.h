// ArenaHost: the group host's side of the data plane (DESIGN "Zero-copy
// data plane", docs/dataplane.md), and the public face of it: pat-host
// includes only this. The host makes one when the group starts: it maps the
// arena, formats it, and from then on records members as they start and,
// when one ends (exit, kill or exec), releases everything it held —
// references in its HolderSet, frees it left halfway, its channel
// attachments (which its peers then see as PeerDied).
//
// The host's event loop must never wait for a member, and a live member may
// hold an arena lock (or be stopped holding it). So the host only ever
// try-locks: work that finds a lock busy stays recorded (the member's slot
// stays Ending, owed frees stay listed) and retry() picks it up later.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pat::dataplane {

class Arena;  // libpat/src/arena.h: for libpat's own tests

// Called when a buffer the host frees held a pin (PAT_HOSTCALL_PIN): the
// host releases it in its ledger. Runs under whatever lock the caller of
// member_ended() or retry() holds.
using Unpin = std::function<void(std::uint64_t pin_id)>;

struct ArenaStats {
  std::size_t arena_bytes = 0;
  std::size_t members = 0;           // alive
  std::size_t members_ending = 0;    // gone, cleanup not finished
  std::size_t channels = 0;
  std::size_t buffers = 0;
  std::size_t buffer_bytes = 0;
  std::size_t retained_free_bytes = 0;
  std::size_t discarded_bytes = 0;
  std::size_t owed_frees = 0;
  std::uint32_t allocator_owner_deaths = 0;
  bool allocator_damaged = false;
};

class ArenaHost {
 public:
  static constexpr std::size_t kDefaultBytes = std::size_t{64} << 30;
  static constexpr std::size_t kSmallestBytes = std::size_t{256} << 20;

  // Maps `bytes` of private anonymous memory with MAP_NORESERVE (untouched
  // pages cost nothing; the mm is every member's, so private memory is the
  // group's). When the kernel refuses (vm.overcommit_memory=2 ignores
  // MAP_NORESERVE, RLIMIT_AS), tries half as much, down to kSmallestBytes.
  // Throws pat::Error(SystemError) (pat/pat.hpp) if even that fails.
  static std::unique_ptr<ArenaHost> create(std::string_view group_name, Unpin unpin,
                                           std::size_t bytes = kDefaultBytes);
  ~ArenaHost();
  ArenaHost(const ArenaHost&) = delete;
  ArenaHost& operator=(const ArenaHost&) = delete;

  std::uintptr_t address() const;
  std::size_t size() const;
  // What every member's environment gets, so that libpat finds the arena:
  // {"PAT_ARENA", "0x<address>:0x<size>"}.
  std::pair<std::string, std::string> environment() const;

  // Records a member before it runs. False when the member table is full: it
  // runs without a data plane (libpat says so).
  bool member_started(pid_t pid, const std::vector<std::string>& argv);
  // The member left the address space. Never blocks; false when some of its
  // cleanup waits for a lock a live member holds: call retry() later.
  bool member_ended(pid_t pid);
  // Continues unfinished cleanups; true when none is left.
  bool retry();
  bool cleanup_pending() const;

  ArenaStats stats() const;
  const Arena& arena() const;

 private:
  struct State;
  explicit ArenaHost(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace pat::dataplane
