// Numbers from the kernel ABI that pat's loader and syscall handling rely on
// and that Debian 12's userspace headers do not name (or name differently).
// Each one says where the kernel defines it.
#pragma once

#include <linux/ioctl.h>
#include <linux/seccomp.h>
#include <linux/types.h>

#include <cstddef>
#include <cstdint>

namespace pat::tracer::kernel {

// arch/x86/include/asm/page_types.h: PAGE_SIZE, also ELF_MIN_ALIGN and
// AT_PAGESZ (ELF_EXEC_PAGESIZE) on x86-64.
inline constexpr std::uint64_t kPageSize = 4096;

inline constexpr std::uint64_t page_down(std::uint64_t a) { return a & ~(kPageSize - 1); }
inline constexpr std::uint64_t page_up(std::uint64_t a) { return (a + kPageSize - 1) & ~(kPageSize - 1); }

// include/uapi/linux/binfmts.h: BINPRM_BUF_SIZE (256 since Linux 5.1). The
// kernel looks at this many bytes of a file to decide what it is, and a `#!`
// line must fit in it (fs/binfmt_script.c).
inline constexpr std::size_t kBinprmBufSize = 256;

// fs/exec.c exec_binprm(): `if (depth > 5) return -ELOOP;` around
// search_binary_handler(), so 5 binfmt rewrites succeed and the 6th fails
// (the comment there still says "4 levels"). A `#!` script whose interpreter
// is a script is one rewrite each. Checked on Linux 6.18 by execve of chains
// of scripts: 5 run, 6 fail with ELOOP (tests/integration/hostile_input_test.cc
// compares the two on the same files).
inline constexpr int kMaxInterpreterRewrites = 5;

// include/linux/sched.h: TASK_COMM_LEN. comm holds 15 characters plus NUL.
inline constexpr std::size_t kTaskCommLen = 16;

// x86-64: the user address space ends at TASK_SIZE_MAX = (1 << 47) - PAGE_SIZE
// with 4-level paging (arch/x86/include/asm/page_64_types.h). 5-level paging
// only hands out higher addresses to callers who ask for them, so nothing we
// map or accept from an ELF file lies above this.
inline constexpr std::uint64_t kTaskSize = (std::uint64_t{1} << 47) - 4096;

// mm/mmap.c: stack_guard_gap defaults to 256 pages. We keep the same gap of
// PROT_NONE below a member's stack (it costs no memory).
inline constexpr std::size_t kStackGuardGap = 256 * 4096;

// fs/binfmt_elf.c load_elf_phdrs(): program headers larger than this in total
// are refused.
inline constexpr std::size_t kMaxProgramHeaderBytes = 65536;

// include/uapi/linux/limits.h PATH_MAX; fs/binfmt_elf.c refuses a PT_INTERP
// longer than this.
inline constexpr std::size_t kPathMax = 4096;

// include/uapi/linux/seccomp.h (Linux 6.6, newer than Debian 12's headers):
// ask the kernel to wake the supervisor and, on reply, the notifying task on
// the current CPU, as a synchronous hand-off. Halves the cost of a rerouted
// syscall (DESIGN "Rerouted syscalls": 15 -> 8 µs).
inline constexpr unsigned long kSeccompIoctlNotifSetFlags = SECCOMP_IOW(4, __u64);  // SECCOMP_IOCTL_NOTIF_SET_FLAGS
inline constexpr std::uint64_t kSeccompUserNotifFdSyncWakeUp = 1;       // SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP

// The kernel's `struct k_sigaction` for rt_sigaction(2) on x86-64
// (arch/x86/include/uapi/asm/signal.h, include/linux/signal_types.h): unlike
// glibc's struct sigaction, the mask is the kernel's 8-byte sigset_t.
struct KernelSigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)();
  std::uint64_t mask;
};

// _NSIG on x86-64 (arch/x86/include/asm/signal.h): signals 1..64, and the
// kernel's sigset_t is 8 bytes (the sigsetsize argument of rt_sig*).
inline constexpr int kNumSignals = 64;
inline constexpr std::size_t kSigsetSize = 8;

// ---- attach (tracer/attach/) ----

// System V x86-64 psABI 3.2.2: the 128 bytes below rsp are the running
// function's red zone; a signal handler (or we) may only use memory below it.
inline constexpr std::uint64_t kRedZone = 128;

// The `syscall` instruction (Intel SDM vol. 2B): 0f 05, two bytes.
inline constexpr std::uint8_t kSyscallInsn[2] = {0x0f, 0x05};

// include/uapi/linux/futex.h FUTEX_TID_MASK: the owner's TID in a robust or
// PI futex word; the two high bits are FUTEX_WAITERS and FUTEX_OWNER_DIED.
inline constexpr std::uint32_t kFutexTidMask = 0x3fffffff;

// include/uapi/linux/elf.h NT_X86_XSTATE: PTRACE_GETREGSET's regset for the
// XSAVE area (x87, SSE, AVX, AVX-512, PKRU...).
inline constexpr unsigned kNtX86Xstate = 0x202;

// arch/x86/include/asm/fpu/types.h: the largest XSAVE area the kernel may
// report today is below 12 KiB (AMX tiles: 8 KiB); room to spare.
inline constexpr std::size_t kMaxXstateBytes = 16384;

// include/uapi/linux/rseq.h: the registration area is struct rseq, 32 bytes
// aligned on 32 (ORIG_RSEQ_SIZE), or larger as AT_RSEQ_FEATURE_SIZE says.
inline constexpr std::uint32_t kOrigRseqSize = 32;

// include/uapi/linux/userfaultfd.h (Linux 6.7, newer than Debian 12's
// headers): userfaultfd(2)'s flag for a context that handles user-mode
// faults only (allowed without privilege), and the features of asynchronous
// write protection: a write to a protected page is let through by the
// kernel itself, which only records it (Documentation/admin-guide/mm/
// userfaultfd.rst "Write Protect Notifications", WP_ASYNC).
inline constexpr int kUffdUserModeOnly = 1;                  // UFFD_USER_MODE_ONLY
inline constexpr std::uint64_t kUffdFeatureWpUnpopulated = 1u << 13;  // UFFD_FEATURE_WP_UNPOPULATED
inline constexpr std::uint64_t kUffdFeatureWpAsync = 1u << 15;        // UFFD_FEATURE_WP_ASYNC

// include/uapi/linux/fs.h (Linux 6.7): the PAGEMAP_SCAN ioctl on
// /proc/PID/pagemap (Documentation/admin-guide/mm/pagemap.rst).
struct PageRegion {  // struct page_region
  std::uint64_t start, end, categories;
};
struct PmScanArg {  // struct pm_scan_arg
  std::uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
  std::uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
inline constexpr unsigned long kPagemapScan = _IOWR('f', 16, PmScanArg);  // PAGEMAP_SCAN
inline constexpr std::uint64_t kPmScanWpMatching = 1u << 0;     // PM_SCAN_WP_MATCHING: write-protect what matched
inline constexpr std::uint64_t kPmScanCheckWpAsync = 1u << 1;   // PM_SCAN_CHECK_WPASYNC
inline constexpr std::uint64_t kPageIsWritten = 1u << 1;        // PAGE_IS_WRITTEN
inline constexpr std::uint64_t kPageIsFile = 1u << 2;           // PAGE_IS_FILE: not anonymous (page cache, shmem)
inline constexpr std::uint64_t kPageIsPresent = 1u << 3;        // PAGE_IS_PRESENT
inline constexpr std::uint64_t kPageIsSwapped = 1u << 4;        // PAGE_IS_SWAPPED
inline constexpr std::uint64_t kPageIsPfnZero = 1u << 5;        // PAGE_IS_PFNZERO: the shared zero page

// include/uapi/linux/fs.h (Linux 6.11): the PROCMAP_QUERY ioctl on
// /proc/PID/maps, one mapping by address without formatting them all.
struct ProcmapQuery {  // struct procmap_query
  std::uint64_t size, query_flags, query_addr;                                // in
  std::uint64_t vma_start, vma_end, vma_flags, vma_page_size, vma_offset;    // out
  std::uint64_t inode;                                                        // out
  std::uint32_t dev_major, dev_minor;                                         // out
  std::uint32_t vma_name_size, build_id_size;                                 // in/out
  std::uint64_t vma_name_addr, build_id_addr;                                 // in
};
inline constexpr unsigned long kProcmapQuery = _IOWR('f', 17, ProcmapQuery);  // PROCMAP_QUERY
inline constexpr std::uint64_t kProcmapVmaReadable = 0x01;   // PROCMAP_QUERY_VMA_READABLE
inline constexpr std::uint64_t kProcmapVmaWritable = 0x02;   // PROCMAP_QUERY_VMA_WRITABLE
inline constexpr std::uint64_t kProcmapVmaExecutable = 0x04; // PROCMAP_QUERY_VMA_EXECUTABLE
inline constexpr std::uint64_t kProcmapVmaShared = 0x08;     // PROCMAP_QUERY_VMA_SHARED (VM_MAYSHARE, maps' 's')
inline constexpr std::uint64_t kProcmapCoveringOrNext = 0x10;  // PROCMAP_QUERY_COVERING_OR_NEXT_VMA

}  // namespace pat::tracer::kernel
