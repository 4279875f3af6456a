// A member for the debugging tests (debugging_test.cc), with functions whose
// names the tests look for in backtraces and cores.
//   debug_target wait         prints "ready", then waits in wait_in_named_function()
//                             while a second thread waits in thread_waits_here();
//                             SIGUSR1 makes it print "usr1" (it still runs)
//   debug_target crash        starts a thread waiting in thread_waits_here(),
//                             then writes through NULL in crash_in_named_function()
//   debug_target marker SEED  keeps a string made from SEED at run time (so it is
//                             in no file and no argument) in its memory, prints
//                             "ready", waits
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void on_usr1(int signal) {
  (void)signal;
  (void)!write(1, "usr1\n", 5);
}

__attribute__((noinline)) static void* thread_waits_here(void* arg) {
  for (;;) pause();
  return arg;
}

__attribute__((noinline)) static void wait_in_named_function(void) {
  for (;;) pause();
}

__attribute__((noinline)) static void crash_in_named_function(volatile int* where) { *where = 42; }

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  if (argc >= 2 && strcmp(argv[1], "crash") == 0) {
    pthread_t thread;
    pthread_create(&thread, NULL, thread_waits_here, NULL);
    usleep(100000);  // let it reach its pause()
    crash_in_named_function(NULL);
    return 1;
  }
  if (argc >= 3 && strcmp(argv[1], "marker") == 0) {
    // "PATMARK-" and SEED reversed, 4096 times over: in memory only.
    size_t n = strlen(argv[2]);
    char* marker = malloc(4096 * (n + 8) + 1);
    char* at = marker;
    for (int i = 0; i < 4096; ++i) {
      memcpy(at, "PATMARK-", 8);
      for (size_t j = 0; j < n; ++j) at[8 + j] = argv[2][n - 1 - j];
      at += n + 8;
    }
    *at = 0;
    printf("ready %zu\n", strlen(marker));
    wait_in_named_function();
  }
  signal(SIGUSR1, on_usr1);
  pthread_t thread;
  pthread_create(&thread, NULL, thread_waits_here, NULL);
  printf("ready\n");
  wait_in_named_function();
}
