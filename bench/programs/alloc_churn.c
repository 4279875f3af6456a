/* One worker of bench/mmap_contention.py. Repeats an allocate-touch-free
 * cycle and prints the mean microseconds per cycle as JSON.
 *   alloc_churn mmap   BYTES ITERATIONS   mmap, touch every page, munmap
 *   alloc_churn malloc BYTES ITERATIONS   malloc, touch every page, free
 * Started in pairs: as two members of one group, as two ordinary processes,
 * or (with "threads" as a third word) as two threads of one process. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static size_t bytes;
static long iterations;
static int use_malloc;

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void* churn(void* arg) {
  double* result = arg;
  double start = now_us();
  for (long i = 0; i < iterations; ++i) {
    char* p;
    if (use_malloc) {
      p = malloc(bytes);
    } else {
      p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) p = NULL;
    }
    if (!p) abort();
    for (size_t at = 0; at < bytes; at += 4096) p[at] = (char)i;
    if (use_malloc) {
      free(p);
    } else {
      munmap(p, bytes);
    }
  }
  *result = (now_us() - start) / (double)iterations;
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: alloc_churn mmap|malloc BYTES ITERATIONS [threads]\n");
    return 64;
  }
  use_malloc = strcmp(argv[1], "malloc") == 0;
  bytes = strtoull(argv[2], NULL, 0);
  iterations = atol(argv[3]);
  if (argc > 4 && strcmp(argv[4], "threads") == 0) {
    pthread_t a, b;
    double ra, rb;
    pthread_create(&a, NULL, churn, &ra);
    pthread_create(&b, NULL, churn, &rb);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    printf("{\"us_per_cycle\": %.2f}\n", (ra + rb) / 2);
    return 0;
  }
  double result;
  churn(&result);
  printf("{\"us_per_cycle\": %.2f}\n", result);
  return 0;
}
