/* A target that keeps writing its memory while it is attached, and can tell
 * whether every page came through: MIB MiB of pages, swept in order by a
 * writer thread at RATE MiB/s, each page filled with the number of the sweep
 * that last wrote it. Pages before the writer's position hold generation g,
 * the others g-1; any other value means a page was lost or came from an
 * older copy. Used by the attach tests (pre-copy correctness) and by
 * bench/attach.py (a large, busy target).
 *
 *   attach_churn SOCKET_PATH MIB RATE_MIB_PER_S
 *
 * Commands: check -> "ok gen=G" or "bad page=I value=V gen=G pos=P"; exit CODE.
 * Writes "ready" on fd 3 once every page has been written once. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum { kPage = 4096, kBatch = 16 };

static uint64_t* pages;
static size_t page_count;
static size_t position; /* next page to write */
static uint64_t generation = 1;
static double rate_pages; /* per second */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void fill(size_t i, uint64_t g) {
  uint64_t* p = pages + i * (kPage / 8);
  for (size_t w = 0; w < kPage / 8; ++w) p[w] = g;
}

static void* writer(void* arg) {
  (void)arg;
  struct timespec pause = {0, (long)(1e9 * kBatch / rate_pages)};
  for (;;) {
    pthread_mutex_lock(&lock);
    for (int b = 0; b < kBatch; ++b) {
      fill(position, generation);
      if (++position == page_count) position = 0, ++generation;
    }
    pthread_mutex_unlock(&lock);
    nanosleep(&pause, NULL);
  }
  return NULL;
}

static void check(char* out, size_t size) {
  pthread_mutex_lock(&lock);
  for (size_t i = 0; i < page_count; ++i) {
    uint64_t want = i < position ? generation : generation - 1;
    const uint64_t* p = pages + i * (kPage / 8);
    if (p[0] != want || p[kPage / 8 - 1] != want) {
      snprintf(out, size, "bad page=%zu value=%lu gen=%lu pos=%zu\n", i, (unsigned long)p[0], (unsigned long)generation, position);
      pthread_mutex_unlock(&lock);
      return;
    }
  }
  snprintf(out, size, "ok gen=%lu\n", (unsigned long)generation);
  pthread_mutex_unlock(&lock);
}

int main(int argc, char** argv) {
  if (argc != 4) return 2;
  page_count = (size_t)atol(argv[2]) * (1 << 20) / kPage;
  rate_pages = atof(argv[3]) * (1 << 20) / kPage;
  pages = mmap(NULL, page_count * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (pages == MAP_FAILED) return 3;
  for (size_t i = 0; i < page_count; ++i) fill(i, 0); /* generation 0 everywhere: all resident */
  int server = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", argv[1]);
  unlink(argv[1]);
  if (bind(server, (struct sockaddr*)&addr, sizeof(addr)) != 0 || listen(server, 4) != 0) return 4;
  pthread_t t;
  pthread_create(&t, NULL, writer, NULL);
  (void)!write(3, "ready\n", 6);
  for (;;) {
    int client = accept4(server, NULL, NULL, SOCK_CLOEXEC);
    if (client < 0) continue;
    char cmd[64] = {0};
    ssize_t n = read(client, cmd, sizeof(cmd) - 1);
    char out[160] = "unknown\n";
    if (n > 0 && strncmp(cmd, "check", 5) == 0) check(out, sizeof(out));
    else if (n > 0 && strncmp(cmd, "exit ", 5) == 0) exit(atoi(cmd + 5));
    (void)!write(client, out, strlen(out));
    close(client);
  }
}
