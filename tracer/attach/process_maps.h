// A process's mappings as /proc/PID/smaps describes them (proc(5)): range,
// protection, backing object and the VmFlags that matter for moving it, and
// what attach makes of each one (its MappingClass).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "tracer/member_layout.h"

namespace pat::tracer {

// VmFlags of smaps (fs/proc/task_mmu.c show_smap_vma_flags()), the ones
// attach acts on.
enum VmFlag : std::uint32_t {
  kVmMayWrite = 1u << 0,      // mw
  kVmGrowsDown = 1u << 1,     // gd
  kVmIo = 1u << 2,            // io  (VM_IO: device memory)
  kVmPfnMap = 1u << 3,        // pf  (VM_PFNMAP: no struct page)
  kVmLocked = 1u << 4,        // lo
  kVmNoReserve = 1u << 5,     // nr
  kVmHugetlb = 1u << 6,       // ht
  kVmDontCopy = 1u << 7,      // dc  (MADV_DONTFORK)
  kVmDontDump = 1u << 8,      // dd  (MADV_DONTDUMP)
  kVmWipeOnFork = 1u << 9,    // wf  (MADV_WIPEONFORK)
  kVmMergeable = 1u << 10,    // mg  (MADV_MERGEABLE)
  kVmHugePage = 1u << 11,     // hg  (MADV_HUGEPAGE)
  kVmNoHugePage = 1u << 12,   // nh  (MADV_NOHUGEPAGE)
  kVmUffdMissing = 1u << 13,  // um  (registered with userfaultfd)
  kVmUffdWp = 1u << 14,       // uw
  kVmUffdMinor = 1u << 15,    // ui
  kVmShadowStack = 1u << 16,  // ss  (x86 CET shadow stack)
  kVmSealed = 1u << 17,       // sl  (mseal(2))
  kVmMixedMap = 1u << 18,     // mm  (VM_MIXEDMAP: driver memory)
  kVmDontExpand = 1u << 19,   // de  (VM_DONTEXPAND: special mappings, drivers)
  kVmLockOnFault = 1u << 20,  // lf
  kVmDroppable = 1u << 21,    // dp  (MAP_DROPPABLE)
};

// What attach does with a mapping.
enum class MappingClass {
  PrivateAnonymous,  // copied page by page
  Heap,              // [heap]: copied, and becomes the member's emulated brk
  Stack,             // [stack]: copied into a fixed stack with room to grow
  Vdso,              // [vdso]: replaced by a proxy that jumps to the group's vdso
  NotMoved,          // [vvar], [vvar_vclock], [vsyscall]: the kernel's, never copied
  PrivateFile,       // mapped again from the same file; privately written pages copied
  SharedFile,        // mapped shared from the same object (file, memfd, /dev/shm, shared anonymous)
  SysvShm,           // attached again with shmat(2)
  Refused,           // cannot move faithfully (see refusal_reason)
};
const char* to_string(MappingClass c);

struct ProcessMapping {
  Range range;
  int prot = 0;          // PROT_*
  bool shared = false;   // 's' in the permissions: MAP_SHARED
  std::uint64_t offset = 0;
  unsigned dev_major = 0, dev_minor = 0;
  std::uint64_t inode = 0;
  std::string path;      // without " (deleted)"; special names as shown ("[heap]")
  bool deleted = false;
  std::uint32_t flags = 0;   // VmFlag bits
  int protection_key = 0;
  MappingClass cls = MappingClass::PrivateAnonymous;
  std::string refusal_reason;  // for MappingClass::Refused

  bool anonymous_file() const { return inode == 0; }
  // The same backing as `o` at the same addresses: the file, its offset for
  // each address, sharing. Protection and flags may differ.
  bool same_backing(const ProcessMapping& o) const;
  // Sets cls (and refusal_reason) from the fields above.
  void classify();
};

// Parses smaps text (or maps text: no VmFlags then) and classifies each
// mapping.
std::vector<ProcessMapping> parse_smaps(const std::string& text);
// /proc/PID/smaps. Costly for large processes: the kernel walks every page
// table to count resident pages (81 ms for 1 GiB here).
Result<std::vector<ProcessMapping>> read_process_mappings(pid_t pid);
// The same, from /proc/PID/maps (40 us for the same process), with the
// VmFlags of the mapping in `known` that had the same backing at an
// overlapping address. Falls back to smaps when a mapping is new. Flags in
// `ignored_flags` (our own userfaultfd registration) are dropped.
Result<std::vector<ProcessMapping>> refresh_process_mappings(pid_t pid, const std::vector<ProcessMapping>& known,
                                                             std::uint32_t ignored_flags = 0);

// Reads the VmFlags line's two-letter codes.
std::uint32_t parse_vm_flags(const std::string& codes);

}  // namespace pat::tracer
