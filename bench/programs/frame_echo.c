/* frame_echo: the ceiling for bench/daemon_throughput.py. A minimal server
 * speaking patd's framing (one JSON object + NUL per message) on a Unix
 * stream socket: one thread, epoll, and for every complete frame received a
 * fixed reply of about the size of patd's io.pat.Daemon.Status answer. No
 * JSON parsing, no dispatch: what is left is the socket round trip itself.
 *
 * Usage: frame_echo SOCKET_PATH. Prints "ready" once listening; runs until
 * killed. Clients are closed-loop (one call in flight each), so a reply
 * always fits in the socket buffer and a plain write(2) never blocks long. */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char kReply[] =
    "{\"parameters\":{\"version\":\"0.1.0\",\"pid\":1,\"uptime_seconds\":1.5,\"groups\":0,"
    "\"connections\":8,\"runtime_dir\":\"/tmp/pat-bench-XXXXXXXX\"}}";

static void die(const char* what) {
  perror(what);
  exit(1);
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: frame_echo SOCKET_PATH\n");
    return 2;
  }
  struct sockaddr_un address = {.sun_family = AF_UNIX};
  if (strlen(argv[1]) >= sizeof(address.sun_path)) die("socket path too long");
  strcpy(address.sun_path, argv[1]);
  int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listener < 0) die("socket");
  if (bind(listener, (struct sockaddr*)&address, sizeof(address)) != 0) die("bind");
  if (listen(listener, 128) != 0) die("listen");
  int epoll = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event event = {.events = EPOLLIN, .data.fd = listener};
  if (epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &event) != 0) die("epoll_ctl");
  puts("ready");
  fflush(stdout);

  const size_t reply_size = sizeof(kReply); /* the NUL terminator is the frame end */
  char buffer[65536];
  for (;;) {
    struct epoll_event ready[64];
    int n = epoll_wait(epoll, ready, 64, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("epoll_wait");
    for (int i = 0; i < n; ++i) {
      int fd = ready[i].data.fd;
      if (fd == listener) {
        int client;
        while ((client = accept4(listener, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
          struct epoll_event client_event = {.events = EPOLLIN, .data.fd = client};
          epoll_ctl(epoll, EPOLL_CTL_ADD, client, &client_event);
        }
        continue;
      }
      ssize_t got = read(fd, buffer, sizeof(buffer));
      if (got <= 0) {
        close(fd); /* also leaves the epoll set */
        continue;
      }
      for (ssize_t j = 0; j < got; ++j) {
        if (buffer[j] != '\0') continue;
        if (write(fd, kReply, reply_size) != (ssize_t)reply_size) {
          close(fd);
          break;
        }
      }
    }
  }
}
