/* Heavy malloc/free on the main arena (brk): blocks below the mmap threshold,
 * each filled with a pattern derived from its address and checked before it
 * is freed; the heap grows to tens of MiB and is trimmed back repeatedly.
 * Two members sharing one kernel brk corrupt each other within milliseconds;
 * with pat's private brk each one prints "ok" and exits 0. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define SLOTS 4096

static uint32_t next_random(uint32_t* state) {
  *state ^= *state << 13;
  *state ^= *state >> 17;
  *state ^= *state << 5;
  return *state;
}

static void fill(unsigned char* p, size_t n) {
  for (size_t i = 0; i < n; ++i) p[i] = (unsigned char)(((uintptr_t)p >> 4) + i);
}

static int intact(const unsigned char* p, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (p[i] != (unsigned char)(((uintptr_t)p >> 4) + i)) return 0;
  return 1;
}

int main(int argc, char** argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 20;
  uint32_t seed = argc > 2 ? (uint32_t)atoi(argv[2]) : 12345u;
  static unsigned char* block[SLOTS];
  static size_t size[SLOTS];
  for (int round = 0; round < rounds; ++round) {
    for (int step = 0; step < 20000; ++step) {
      int slot = (int)(next_random(&seed) % SLOTS);
      if (block[slot] != NULL) {
        if (!intact(block[slot], size[slot])) {
          printf("corrupted block at %p\n", (void*)block[slot]);
          return 1;
        }
        free(block[slot]);
        block[slot] = NULL;
      } else {
        size[slot] = 16 + next_random(&seed) % 16000;
        block[slot] = malloc(size[slot]);
        if (block[slot] == NULL) return 2;
        fill(block[slot], size[slot]);
      }
    }
    for (int slot = 0; slot < SLOTS; ++slot) {  /* free all: the top of the heap gets trimmed */
      if (block[slot] != NULL && !intact(block[slot], size[slot])) {
        printf("corrupted block at %p\n", (void*)block[slot]);
        return 1;
      }
      free(block[slot]);
      block[slot] = NULL;
    }
  }
  printf("ok\n");
  return 0;
}
