// Measures what the other candidate of DESIGN "Memory ownership" would cost:
// mmap/munmap trapped by seccomp (SECCOMP_RET_TRAP -> SIGSYS) into an
// in-process handler that re-issues the call from an allowed instruction
// pointer, as gVisor's systrap does. Prints ns per mmap+munmap pair, native
// and trapped; with "plain", only the loop (run it as a pat member to time the
// host-performed calls). Used by bench/mapping_mechanisms.sh; docs/memory.md.
#define _GNU_SOURCE
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

// The one place allowed to make trapped syscalls: the filter compares the
// instruction pointer with this function's address range.
__attribute__((noinline, section("pat_trampoline"))) static long trampoline(long nr, long a, long b, long c, long d,
                                                                             long e, long f) {
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
extern char __start_pat_trampoline[], __stop_pat_trampoline[];

static void on_sigsys(int sig, siginfo_t* info, void* context) {
  (void)sig;
  (void)info;
  greg_t* regs = ((ucontext_t*)context)->uc_mcontext.gregs;
  regs[REG_RAX] = trampoline(regs[REG_RAX], regs[REG_RDI], regs[REG_RSI], regs[REG_RDX], regs[REG_R10],
                             regs[REG_R8], regs[REG_R9]);
}

static void install_filter(void) {
  uint64_t lo = (uint64_t)__start_pat_trampoline, hi = (uint64_t)__stop_pat_trampoline;
  // x86-64 only; instruction_pointer is 64 bits, compared in two halves.
  struct sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mmap, 2, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_munmap, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      // high half of the IP must equal the trampoline's (same 4 GiB)
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer) + 4),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(lo >> 32), 0, 4),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer)),
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, (uint32_t)lo, 0, 2),
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, (uint32_t)hi, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
  };
  struct sock_fprog prog = {sizeof(code) / sizeof(code[0]), code};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog)) {
    perror("seccomp");
    exit(1);
  }
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static double pair_cost_ns(int rounds) {
  double start = now_ns();
  for (int i = 0; i < rounds; ++i) {
    void* p = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) abort();
    munmap(p, 65536);
  }
  return (now_ns() - start) / rounds;
}

int main(int argc, char** argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 200000;
  double native = pair_cost_ns(rounds);
  // "plain": only the loop, e.g. inside a pat member where the calls go to
  // the host through the member's own filter.
  if (argc > 2 && argv[2][0] == 'p') {
    printf("{\"pair_ns\": %.0f}\n", native);
    return 0;
  }
  struct sigaction action = {0};
  action.sa_sigaction = on_sigsys;
  action.sa_flags = SA_SIGINFO;
  sigaction(SIGSYS, &action, NULL);
  install_filter();
  double trapped = pair_cost_ns(rounds);
  printf("{\"native_pair_ns\": %.0f, \"trapped_pair_ns\": %.0f}\n", native, trapped);
  // The hazard that rules this mechanism out (docs/memory.md): a trapped call
  // made while SIGSYS is blocked, as glibc blocks all signals around clone in
  // pthread_create and posix_spawn, is delivered by force with the default
  // action: the process dies.
  if (argc > 2 && argv[2][0] == 'b') {
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("survived a trapped mmap with signals blocked\n");
  }
  return 0;
}
