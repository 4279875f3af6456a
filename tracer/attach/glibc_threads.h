// What glibc caches about its threads that must change when they become new
// tasks: each thread's TID in its thread control block (pthread_kill, raise,
// mutex owners use it), and the owner TIDs written into the robust mutexes a
// thread holds. glibc publishes the TID field's place for debuggers: the
// `_thread_db_pthread_tid` descriptor, a GLIBC_PRIVATE dynamic symbol of
// libc.so.6 that libthread_db reads (nptl_db/structs.def: {bits, count,
// offset from the struct pthread, i.e. from the thread pointer}).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "base/result.h"
#include "tracer/attach/process_maps.h"

namespace pat::tracer {

// The offset of the cached TID from a thread's fs base, read from the
// libc.so.6 that `pid` maps (its dynamic symbols, in its memory). nullopt:
// the process maps no glibc (static, or another C library).
Result<std::optional<std::uint32_t>> glibc_tid_offset(pid_t pid, const std::vector<ProcessMapping>& mappings);

// In task `pid`'s memory (the member's, i.e. ours): the TID field at
// fs_base + offset must hold `old_tid`; it gets `new_tid`.
Status update_cached_tid(pid_t pid, std::uint64_t fs_base, std::uint32_t offset, pid_t old_tid, pid_t new_tid);

// Walks the robust list at `head` (set_robust_list(2)) in task `pid`'s memory
// and rewrites every futex word owned by `old_tid` (FUTEX_TID_MASK bits) to
// `new_tid`, and glibc's __owner field beside it. Returns the number of
// mutexes rewritten. The list is bounded: a corrupt one stops the walk.
Result<int> update_robust_owners(pid_t pid, std::uint64_t head, pid_t old_tid, pid_t new_tid);

}  // namespace pat::tracer
