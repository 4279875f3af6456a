/* The peer bench/attach.py compares a large attach with: a plain copy of a
 * process's own memory into fresh pages with process_vm_readv(2). It copies
 * exactly what an attach must copy (the private pages that hold data: anon
 * memory, and pages of private file mappings written by the process), found
 * through /proc/PID/pagemap before the clock starts, into one fresh
 * anonymous mapping, and prints "copied BYTES in US us".
 *
 *   vm_readv_copy PID */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum { kPage = 4096, kIovMax = 1024 };

static struct iovec* runs;
static size_t run_count, run_capacity, total;

static void add_page(uint64_t page) {
  if (run_count > 0 && (uint64_t)runs[run_count - 1].iov_base + runs[run_count - 1].iov_len == page) {
    runs[run_count - 1].iov_len += kPage;
  } else {
    if (run_count == run_capacity) runs = realloc(runs, (run_capacity = run_capacity * 2 + 64) * sizeof(*runs));
    runs[run_count++] = (struct iovec){(void*)page, kPage};
  }
  total += kPage;
}

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  char path[64];
  snprintf(path, sizeof(path), "/proc/%s/maps", argv[1]);
  FILE* maps = fopen(path, "r");
  snprintf(path, sizeof(path), "/proc/%s/pagemap", argv[1]);
  int pagemap = open(path, O_RDONLY);
  if (!maps || pagemap < 0) return 3;
  char line[4096];
  while (fgets(line, sizeof(line), maps)) {
    unsigned long start, end, inode;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s %*x %*x:%*x %lu", &start, &end, perms, &inode) != 4) continue;
    if (perms[0] != 'r' || perms[3] != 'p' || strstr(line, "[vvar") || strstr(line, "[vdso]") || strstr(line, "[vsyscall]")) continue;
    size_t pages = (end - start) / kPage;
    uint64_t* entries = malloc(pages * 8);
    if (pread(pagemap, entries, pages * 8, (off_t)(start / kPage * 8)) != (ssize_t)(pages * 8)) {
      free(entries);
      continue;
    }
    for (size_t i = 0; i < pages; ++i) {
      int populated = (entries[i] >> 63 & 1) || (entries[i] >> 62 & 1);
      int file_page = entries[i] >> 61 & 1;
      if (populated && !(inode != 0 && file_page)) add_page(start + i * kPage);
    }
    free(entries);
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  char* fresh = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (fresh == MAP_FAILED) return 4;
  size_t copied = 0;
  for (size_t i = 0; i < run_count; i += kIovMax) {
    size_t n = run_count - i < kIovMax ? run_count - i : kIovMax;
    size_t want = 0;
    for (size_t j = 0; j < n; ++j) want += runs[i + j].iov_len;
    struct iovec local = {fresh + copied, want};
    ssize_t got = process_vm_readv(atoi(argv[1]), &local, 1, runs + i, n, 0);
    if (got < 0) return 5;
    copied += want;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  long us = (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
  printf("copied %zu in %ld us\n", total, us);
  return 0;
}
