// A member calling its host: prctl(PAT_HOSTCALL, op, ...) (proto/hostcall.h),
// which the member's seccomp filter sends to pat-host. Outside a group the
// kernel answers EINVAL (an unknown prctl option, kernel/sys.c).
#pragma once

#include <cstddef>
#include <cstdint>

namespace pat::dataplane::hostcall {

// The host's pid, or -errno (-EINVAL: not a member).
long ping();
// A pin id > 0 for the pages under [data, data + size), or -errno: -EPERM
// when they are not the caller's own mapped memory (brk heap, stack, image,
// the arena, someone else's).
long pin(const void* data, std::size_t size);
// 0, or -ENOENT when the pin was released already.
long unpin(std::uint64_t pin_id);

}  // namespace pat::dataplane::hostcall
