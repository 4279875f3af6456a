/* Probes what the member seccomp filter decides in BPF, without the host:
 *  - a 32-bit syscall through int 0x80 (i386 getpid) must fail with ENOSYS,
 *    or it would bypass every rule written for the x86-64 numbers;
 *  - prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE) must fail with EPERM (natively it
 *    needs no privilege and succeeds).
 * Prints what happened; run natively it prints "int80=pid prctl=0/0". */
#include <errno.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(void) {
  long ret;
  asm volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");  /* __NR_getpid in arch/x86/entry/syscalls/syscall_32.tbl */
  unsigned int size = 0;
  errno = 0;
  int r = prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, (unsigned long)&size, 0, 0);
  if (ret == getpid())
    printf("int80=pid");
  else
    printf("int80=%ld", ret);
  printf(" prctl=%d/%d\n", r, r == 0 ? 0 : errno);
  return 0;
}
