/* The attach tests' main target (tests/tracer/attach/attach_test.cc): four
 * threads with a mutex held for long stretches, two threads ping-ponging
 * through a condition variable, thread-local counters, a file appended to,
 * a pipe to its parent (fd 3) and a listening Unix socket answering one-line
 * commands. Everything it answers is computed from its own state, so an
 * attach that loses or corrupts anything shows in the answers.
 *
 *   attach_workload SOCKET_PATH APPEND_FILE
 *
 * Commands (one line each, one line back): ping, tid, counts, kill,
 * signals, close, malloc MIB, mmap MIB, checksum, exit CODE, abort. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static __thread long tls_counter;
static __thread volatile sig_atomic_t tls_got_usr2;
static __thread pid_t tls_usr2_tid;

static pthread_mutex_t pingpong_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pingpong_cond = PTHREAD_COND_INITIALIZER;
static int turn;           /* 0: ping's turn, 1: pong's */
static long exchanges;     /* under pingpong_lock */

static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER; /* held 20 ms at a time */
static long holder_rounds;

static long appended;
static int append_fd;
static long tls_of[4];     /* each worker's copy of its tls_counter, published */
static pthread_t workers[4];

static volatile sig_atomic_t got_int, got_term, got_usr1;

static unsigned char pattern[1 << 20];  /* .bss: checked by "checksum" */
static unsigned char* heap_block;

static void on_signal(int sig) {
  if (sig == SIGINT) ++got_int;
  if (sig == SIGTERM) ++got_term;
  if (sig == SIGUSR1) ++got_usr1;
}

static void on_usr2(int sig) {
  (void)sig;
  tls_got_usr2 = 1;
  tls_usr2_tid = (pid_t)syscall(SYS_gettid);
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static void* pinger(void* arg) {
  int me = (int)(intptr_t)arg; /* 0 or 1 */
  for (;;) {
    pthread_mutex_lock(&pingpong_lock);
    while (turn != me) pthread_cond_wait(&pingpong_cond, &pingpong_lock);
    turn = 1 - me;
    ++exchanges;
    ++tls_counter;
    tls_of[me] = tls_counter;
    pthread_cond_broadcast(&pingpong_cond);
    pthread_mutex_unlock(&pingpong_lock);
    if (tls_got_usr2) tls_of[me] = -tls_counter; /* visible proof the handler ran in this thread */
    sleep_ms(1);
  }
  return NULL;
}

static void* appender(void* arg) {
  (void)arg;
  char line[64];
  for (;;) {
    ++tls_counter;
    tls_of[2] = tls_counter;
    int n = snprintf(line, sizeof(line), "line %ld\n", tls_counter);
    if (write(append_fd, line, (size_t)n) == n) __atomic_add_fetch(&appended, 1, __ATOMIC_RELAXED);
    sleep_ms(5);
  }
  return NULL;
}

static void* holder(void* arg) {
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&held_lock);
    ++tls_counter;
    tls_of[3] = tls_counter;
    ++holder_rounds;
    sleep_ms(20); /* attach usually catches it holding the lock */
    pthread_mutex_unlock(&held_lock);
    sleep_ms(1);
  }
  return NULL;
}

static unsigned long checksum(void) {
  unsigned long sum = 0;
  for (size_t i = 0; i < sizeof(pattern); ++i) sum = sum * 31 + pattern[i];
  for (size_t i = 0; i < (4u << 20); i += 64) sum = sum * 31 + heap_block[i];
  return sum;
}

/* pthread_kill from worker 1 (the pong thread's peer is irrelevant): the
 * main thread asks, the target is worker 0. Proves that glibc's cached TIDs
 * were updated: pthread_kill sends tgkill(getpid(), that cached TID). */
static void answer_kill(char* out, size_t size) {
  int rc = pthread_kill(workers[0], SIGUSR2);
  for (int i = 0; i < 200 && tls_of[0] >= 0; ++i) sleep_ms(5);
  snprintf(out, size, "kill rc=%d handled=%s\n", rc, tls_of[0] < 0 ? "yes" : "no");
}

static void answer(int fd, char* cmd, int* pipe_fd) {
  char out[256];
  cmd[strcspn(cmd, "\r\n")] = 0;
  if (strcmp(cmd, "ping") == 0) snprintf(out, sizeof(out), "pong\n");
  else if (strcmp(cmd, "tid") == 0) snprintf(out, sizeof(out), "pid=%d tid=%d self_tid=%d\n", getpid(), (int)syscall(SYS_gettid), gettid());
  else if (strcmp(cmd, "counts") == 0) {
    pthread_mutex_lock(&held_lock); /* waits for the holder to let go */
    long rounds = holder_rounds;
    pthread_mutex_unlock(&held_lock);
    pthread_mutex_lock(&pingpong_lock);
    long ex = exchanges;
    pthread_mutex_unlock(&pingpong_lock);
    snprintf(out, sizeof(out), "exchanges=%ld rounds=%ld appended=%ld tls=%ld,%ld,%ld,%ld\n", ex, rounds,
             __atomic_load_n(&appended, __ATOMIC_RELAXED), labs(tls_of[0]), labs(tls_of[1]), tls_of[2], tls_of[3]);
  } else if (strcmp(cmd, "kill") == 0) answer_kill(out, sizeof(out));
  else if (strcmp(cmd, "signals") == 0) snprintf(out, sizeof(out), "int=%d term=%d usr1=%d\n", (int)got_int, (int)got_term, (int)got_usr1);
  else if (strcmp(cmd, "close") == 0) {
    close(*pipe_fd);
    *pipe_fd = -1;
    snprintf(out, sizeof(out), "closed\n");
  } else if (strncmp(cmd, "malloc ", 7) == 0) {
    size_t mib = (size_t)atol(cmd + 7);
    char* p = malloc(mib << 20);
    if (p) memset(p, 0x5a, mib << 20);
    char* small = malloc(100); /* from the heap: brk */
    snprintf(out, sizeof(out), "malloc %s %s\n", p ? "ok" : "failed", small ? "ok" : "failed");
  } else if (strncmp(cmd, "mmap ", 5) == 0) {
    size_t mib = (size_t)atol(cmd + 5);
    void* p = mmap(NULL, mib << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) memset(p, 1, mib << 20);
    snprintf(out, sizeof(out), "mmap %s\n", p != MAP_FAILED ? "ok" : "failed");
  } else if (strcmp(cmd, "checksum") == 0) snprintf(out, sizeof(out), "checksum=%lu\n", checksum());
  else if (strncmp(cmd, "exit ", 5) == 0) {
    (void)!write(fd, "bye\n", 4);
    exit(atoi(cmd + 5));
  } else if (strcmp(cmd, "abort") == 0) {
    (void)!write(fd, "bye\n", 4);
    abort();
  } else snprintf(out, sizeof(out), "unknown\n");
  (void)!write(fd, out, strlen(out));
}

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  int pipe_fd = 3;
  append_fd = open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (append_fd < 0) return 3;
  for (size_t i = 0; i < sizeof(pattern); ++i) pattern[i] = (unsigned char)(i * 7 + 3);
  heap_block = malloc(4u << 20); /* large: its own mapping, not the brk heap */
  for (size_t i = 0; i < (4u << 20); ++i) heap_block[i] = (unsigned char)(i >> 6);
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL);
  sa.sa_handler = on_usr2;
  sigaction(SIGUSR2, &sa, NULL);

  int server = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", argv[1]);
  unlink(argv[1]);
  if (bind(server, (struct sockaddr*)&addr, sizeof(addr)) != 0 || listen(server, 8) != 0) return 4;

  pthread_create(&workers[0], NULL, pinger, (void*)0);
  pthread_create(&workers[1], NULL, pinger, (void*)1);
  pthread_create(&workers[2], NULL, appender, NULL);
  pthread_create(&workers[3], NULL, holder, NULL);
  (void)!write(pipe_fd, "ready\n", 6);

  for (;;) {
    int client = accept4(server, NULL, NULL, SOCK_CLOEXEC);
    if (client < 0) continue;
    char cmd[128];
    ssize_t n;
    size_t used = 0;
    while ((n = read(client, cmd + used, sizeof(cmd) - 1 - used)) > 0) {
      used += (size_t)n;
      cmd[used] = 0;
      char* nl;
      while ((nl = strchr(cmd, '\n')) != NULL) {
        *nl = 0;
        answer(client, cmd, &pipe_fd);
        memmove(cmd, nl + 1, used - (size_t)(nl + 1 - cmd) + 1);
        used -= (size_t)(nl + 1 - cmd);
      }
    }
    close(client);
  }
}
