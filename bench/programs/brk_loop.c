/* Run as a pat member by bench_brk: times brk(0), which the member's seccomp
 * filter reroutes to the host. Prints the best per-call time of several
 * batches, in microseconds. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char** argv) {
  long calls = argc > 1 ? atol(argv[1]) : 5000;
  int batches = argc > 2 ? atoi(argv[2]) : 5;
  double best = 1e30;
  for (int b = 0; b < batches; ++b) {
    double start = now_us();
    for (long i = 0; i < calls; ++i) syscall(SYS_brk, 0);
    double per_call = (now_us() - start) / (double)calls;
    if (per_call < best) best = per_call;
  }
  printf("%.3f\n", best);
  return 0;
}
