/* The original parent of an attached process, as a shell would be: starts
 * the program with a pipe on its fd 3, then reports on stdout everything it
 * sees, one line per event: "child PID", "pipe DATA", "pipe_eof",
 * "stopped SIG", "continued", "exited CODE", "signaled SIG". Ends after the
 * child has ended and the pipe has reached EOF.
 *
 *   attach_parent PROGRAM [ARGS...] */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return 3;
  setvbuf(stdout, NULL, _IOLBF, 0);
  pid_t child = fork();
  if (child == 0) {
    dup2(fds[1], 3); /* without O_CLOEXEC */
    execv(argv[1], argv + 1);
    _exit(127);
  }
  close(fds[1]);
  printf("child %d\n", child);
  int child_done = 0, pipe_done = 0;
  while (!child_done || !pipe_done) {
    struct pollfd p = {fds[0], POLLIN, 0};
    int n = pipe_done ? 0 : poll(&p, 1, 10);
    if (n > 0) {
      char buf[256];
      ssize_t got = read(fds[0], buf, sizeof(buf) - 1);
      if (got > 0) {
        buf[got] = 0;
        buf[strcspn(buf, "\n")] = 0;
        printf("pipe %s\n", buf);
      } else if (got == 0) {
        printf("pipe_eof\n");
        pipe_done = 1;
      }
    } else if (pipe_done) {
      struct timespec ts = {0, 10000000};
      nanosleep(&ts, NULL);
    }
    int status;
    pid_t got;
    while (!child_done && (got = waitpid(child, &status, WNOHANG | WUNTRACED | WCONTINUED)) == child) {
      if (WIFSTOPPED(status)) printf("stopped %d\n", WSTOPSIG(status));
      else if (WIFCONTINUED(status)) printf("continued\n");
      else if (WIFEXITED(status)) printf("exited %d\n", WEXITSTATUS(status)), child_done = 1;
      else if (WIFSIGNALED(status)) printf("signaled %d\n", WTERMSIG(status)), child_done = 1;
    }
  }
  return 0;
}
