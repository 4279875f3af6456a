/* The member of bench/group_lock.py. Holds HOLD_MIB of touched anonymous
 * memory (so that measuring its usage has pages to walk), then maps and
 * unmaps 64 KiB in a loop for SECONDS. Every mmap and munmap is rerouted to
 * the group's host, which answers it under the group lock. Prints one JSON
 * line: iterations, and the microseconds per mmap+munmap pair (mean,
 * median, p99, max).
 *   map_loop HOLD_MIB SECONDS */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int by_value(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: map_loop HOLD_MIB SECONDS\n");
    return 2;
  }
  size_t hold = (size_t)atol(argv[1]) << 20;
  double seconds = atof(argv[2]);
  if (hold > 0) {
    char* held = mmap(NULL, hold, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (held == MAP_FAILED) {
      perror("mmap (held memory)");
      return 1;
    }
    memset(held, 1, hold);
  }
  size_t capacity = 1 << 22, count = 0;
  double* samples = malloc(capacity * sizeof(double));
  if (samples == NULL) return 1;
  const size_t size = 64 << 10;
  double start = now_us(), end = start + seconds * 1e6, now = start;
  while (now < end && count < capacity) {
    char* p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      perror("mmap");
      return 1;
    }
    munmap(p, size);
    double after = now_us();
    samples[count++] = after - now;
    now = after;
  }
  double total = now - start;
  qsort(samples, count, sizeof(double), by_value);
  printf("{\"iterations\": %zu, \"mean_us\": %.3f, \"median_us\": %.3f, \"p99_us\": %.3f, \"max_us\": %.3f}\n", count,
         total / (double)count, samples[count / 2], samples[(size_t)((double)count * 0.99)], samples[count - 1]);
  return 0;
}
