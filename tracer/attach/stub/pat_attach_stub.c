/* pat-attach-stub: what an attached process becomes once its program runs as
 * a member of a group (docs/attach.md, "The stub"). The attaching host makes
 * the process execve this program, so the process keeps its PID, parent,
 * session, process group, terminal and cgroup while its old address space
 * is freed. The host traces the stub from before that execve until the
 * stub's end: every signal sent to the stub stops it in a ptrace stop and is
 * forwarded by the host to the member, and when the member ends the host
 * makes the stub end the same way. The stub itself only lets go of what the
 * old program held and waits.
 *
 * No libc: a static program of raw system calls, so that it maps nothing but
 * itself and costs a few pages. */
#include <asm-generic/errno-base.h>
#include <asm/signal.h>
#include <asm/unistd.h>
#include <linux/prctl.h>
#include <linux/resource.h>
#include <linux/wait.h>


/* _NSIG on x86-64 (arch/x86/include/asm/signal.h; the uapi header names only
 * NSIG, 32): signals 1..64. */
#define STUB_NSIG 64

static long sys6(long nr, long a, long b, long c, long d, long e, long f) {
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
#define sys(nr, a, b, c, d) sys6((nr), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

/* The kernel's struct sigaction (x86-64) and struct rlimit64. */
struct kernel_sigaction {
  unsigned long handler, flags, restorer, mask;
};
struct kernel_rlimit {
  unsigned long long cur, max;
};

static int starts_with(const char* s, const char* prefix) {
  while (*prefix)
    if (*s++ != *prefix++) return 0;
  return 1;
}

__attribute__((noreturn, used)) static void stub_main(long* sp) {
  long argc = sp[0];
  char** envp = (char**)(sp + 1 + argc + 1);

  /* 1. The old program's fds go: a pipe's write end kept here would hide EOF
   *    from its reader, a socket would stay open. The member has its own
   *    copies of all of them. */
  sys(__NR_close_range, 0, ~0U, 0, 0);
  /* 2. No core file of the stub: when the member dumps core, the stub dies
   *    of the same signal, and its dump would be worthless. */
  struct kernel_rlimit no_core = {0, 0};
  sys(__NR_prlimit64, 0, RLIMIT_CORE, &no_core, 0);
  /* 3. Default dispositions and an empty mask: every signal reaches the
   *    tracing host as a ptrace stop, which forwards it (execve kept the old
   *    program's ignored signals and mask). */
  struct kernel_sigaction dfl = {0 /* SIG_DFL */, 0, 0, 0};
  for (int sig = 1; sig <= STUB_NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    sys(__NR_rt_sigaction, sig, &dfl, 0, 8);
  }
  unsigned long empty = 0;
  sys(__NR_rt_sigprocmask, SIG_SETMASK, &empty, 0, sizeof(empty));
  /* 4. The old program's name, for ps and top (the host passes it). */
  for (char** e = envp; *e; ++e) {
    if (starts_with(*e, "PAT_STUB_NAME=")) sys(__NR_prctl, PR_SET_NAME, *e + 14, 0, 0);
  }
  /* 5. Tell the host the old program's fds are gone: a breakpoint trap,
   *    which the tracing host sees as a SIGTRAP stop and drops. */
  __asm__ volatile("int3");
  /* 6. Reap the task that kept the old address space alive across the
   *    execve (the host kills it): it was the old program's child, so it is
   *    ours now. Its exit signal is 0, so only __WALL sees it. A signal
   *    stops us in between (and is dropped by the host); wait4 restarts. */
  while (sys(__NR_wait4, -1, 0, __WALL, 0) != -ECHILD) {
  }
  /* 7. Wait. The host ends the stub; nothing else can but SIGKILL. */
  for (;;) sys(__NR_pause, 0, 0, 0, 0);
}

/* The entry point: the kernel leaves argc at rsp (System V psABI 3.4.1). */
__asm__(".text\n"
        ".globl _start\n"
        "_start:\n"
        "  xorl %ebp, %ebp\n"
        "  movq %rsp, %rdi\n"
        "  andq $-16, %rsp\n"
        "  call stub_main\n"
        "  hlt\n");
