/* The call ABI from a member to its group's host: prctl(2) with an option
 * Linux does not define. The member's seccomp filter sends exactly this
 * option to the host (a rerouted syscall, a few microseconds); outside a pat
 * group the kernel answers EINVAL, which is how a process learns it is not a
 * member. C-compatible: libpat's C ABI includes it.
 *
 *   long r = prctl(PAT_HOSTCALL, op, a, b, c);   // r < 0: -1 with errno
 */
#ifndef PAT_PROTO_HOSTCALL_H
#define PAT_PROTO_HOSTCALL_H

/* "PAT" and a version byte. Linux's prctl options are small integers
 * (include/uapi/linux/prctl.h); this one will not collide. */
#define PAT_HOSTCALL 0x50415401

enum pat_hostcall_op {
  /* () -> the host's pid. */
  PAT_HOSTCALL_PING = 0,
  /* (addr, len) -> pin id > 0. The pages holding [addr, addr+len) are handed
   * to the group: they stay mapped after the caller frees or unmaps them, or
   * exits, until every pin on them is released. The caller must own them
   * (memory it mapped itself; not its brk heap, stack or image): EPERM
   * otherwise. */
  PAT_HOSTCALL_PIN = 1,
  /* (pin id) -> 0. Any member may release any pin (one pin, one release). */
  PAT_HOSTCALL_UNPIN = 2,
};

#endif
