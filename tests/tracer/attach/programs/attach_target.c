/* Small targets for the attach tests, one per MODE, each printing "ready"
 * on stdout once it is in the state the test wants, then waiting (blocked in
 * read(2) on a pipe nobody writes, so its registers stay put) until killed.
 * Every mode keeps 8 MiB of known data, so a test can checksum its memory.
 *
 *   attach_target MODE
 *
 * MODE: plain, threads, child, seccomp, io_uring, userfaultfd, timer, lock,
 * shared_anon, nondumpable, sigaltstack, pending. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int block_fds[2];

static void block_forever(void) {
  char c;
  for (;;) (void)!read(block_fds[0], &c, 1);
}

static void* blocked_thread(void* arg) {
  (void)arg;
  block_forever();
  return NULL;
}

static void on_usr1(int sig) { (void)sig; }

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const char* mode = argv[1];
  if (pipe(block_fds) != 0) return 3;
  unsigned char* data = malloc(8u << 20);
  for (size_t i = 0; i < (8u << 20); ++i) data[i] = (unsigned char)(i * 13 + 1);

  if (strcmp(mode, "threads") == 0 || strcmp(mode, "sigaltstack") == 0) {
    pthread_t t;
    for (int i = 0; i < 3; ++i) pthread_create(&t, NULL, blocked_thread, NULL);
  }
  if (strcmp(mode, "sigaltstack") == 0) {
    stack_t ss = {.ss_sp = malloc(1 << 16), .ss_size = 1 << 16, .ss_flags = 0};
    sigaltstack(&ss, NULL);
  }
  if (strcmp(mode, "pending") == 0) {
    /* SIGUSR1 blocked and pending (process-wide), with a handler. */
    struct sigaction sa = {.sa_handler = on_usr1};
    sigaction(SIGUSR1, &sa, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    kill(getpid(), SIGUSR1);
  }
  if (strcmp(mode, "child") == 0 && fork() == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0); /* ends with its parent, not left to init */
    block_forever();
  }
  if (strcmp(mode, "seccomp") == 0) {
    struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_fprog prog = {1, &allow};
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) return 4;
  }
  if (strcmp(mode, "io_uring") == 0) {
    char params[120] = {0};  /* struct io_uring_params */
    if (syscall(SYS_io_uring_setup, 4, params) < 0) return 5;
  }
  if (strcmp(mode, "userfaultfd") == 0) {
    if (syscall(SYS_userfaultfd, O_CLOEXEC | 1 /* UFFD_USER_MODE_ONLY */) < 0) return 6;
  }
  if (strcmp(mode, "timer") == 0) {
    timer_t timer;
    if (timer_create(CLOCK_MONOTONIC, NULL, &timer) != 0) return 7;
  }
  if (strcmp(mode, "lock") == 0) {
    char path[] = "/tmp/attach_lock_XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fd < 0 || fcntl(fd, F_SETLK, &fl) != 0) return 8;
  }
  if (strcmp(mode, "shared_anon") == 0) {
    char* p = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 9;
    p[0] = 1;
  }
  if (strcmp(mode, "nondumpable") == 0) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  printf("ready\n");
  fflush(stdout);
  block_forever();
}
