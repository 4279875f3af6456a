/* A member that exercises the mapping rules of a pat group.
 *   map_probe hold SECONDS FILE    map 1 MiB, write its address to FILE, sleep
 *   map_probe clobber ADDR         MAP_FIXED over ADDR, munmap it, mprotect it;
 *                                  print "mmap=<errno> munmap=<errno> mprotect=<errno>"
 *                                  (0 where the call succeeded)
 *   map_probe threads N MIB        N threads each map and touch MIB MiB, then exit
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static size_t thread_bytes;

static void* thread_main(void* arg) {
  (void)arg;
  char* p = malloc(thread_bytes);
  if (!p) return NULL;
  for (size_t i = 0; i < thread_bytes; i += 4096) p[i] = 1;
  char* q = mmap(NULL, thread_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (q != MAP_FAILED) memset(q, 2, thread_bytes);
  /* Deliberately not freed: the member's exit must give it all back. */
  return p;
}

int main(int argc, char** argv) {
  if (argc >= 4 && strcmp(argv[1], "hold") == 0) {
    char* p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 2;
    memset(p, 7, 1 << 20);
    FILE* out = fopen(argv[3], "w");
    if (!out) return 4;
    fprintf(out, "%p\n", (void*)p);
    fclose(out);
    sleep((unsigned)atoi(argv[2]));
    return p[4096] == 7 ? 0 : 3; /* still ours and intact? */
  }
  if (argc >= 3 && strcmp(argv[1], "clobber") == 0) {
    uintptr_t address = (uintptr_t)strtoull(argv[2], NULL, 16);
    void* p = mmap((void*)address, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    int mmap_error = p == MAP_FAILED ? errno : 0;
    int munmap_error = munmap((void*)(address + 8192), 4096) != 0 ? errno : 0;
    int mprotect_error = mprotect((void*)(address + 16384), 4096, PROT_NONE) != 0 ? errno : 0;
    printf("mmap=%d munmap=%d mprotect=%d\n", mmap_error, munmap_error, mprotect_error);
    return 0;
  }
  if (argc >= 4 && strcmp(argv[1], "threads") == 0) {
    int n = atoi(argv[2]);
    thread_bytes = (size_t)atoi(argv[3]) << 20;
    pthread_t threads[64];
    for (int i = 0; i < n && i < 64; ++i) pthread_create(&threads[i], NULL, thread_main, NULL);
    for (int i = 0; i < n && i < 64; ++i) pthread_join(threads[i], NULL);
    printf("done\n");
    return 0;
  }
  fprintf(stderr, "usage: map_probe hold SECONDS FILE | clobber ADDR | threads N MIB\n");
  return 64;
}
