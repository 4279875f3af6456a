/* Member program for the libpat integration tests, in C (pat/pat.h): one
 * step of a buffer's life per run, so that the test can end members between
 * steps.
 *   buffer_relay send CHANNEL BYTES SEED      an arena buffer, filled, sent; exits
 *   buffer_relay share CHANNEL BYTES SEED     its own mmap'd pages, shared without a copy; exits
 *   buffer_relay share-heap CHANNEL SEED      100 KiB of its brk heap: must be copied
 *   buffer_relay receive CHANNEL BYTES SEED   one message, checked: "ok zero_copy=Z sender=PID"
 *   buffer_relay flood CHANNEL COUNT BYTES    COUNT messages with fresh buffers, then close
 *   buffer_relay drain CHANNEL                receive until closed: "drained N"
 *   buffer_relay send-and-hang CHANNEL        send "hello", then sleep until killed
 *   buffer_relay wait-peer CHANNEL            print each message, then the error that ends it
 *   buffer_relay members                      the group's members
 *   buffer_relay in-group                     "1", or "0: <why not>" */
#include <pat/pat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const int64_t kTenSeconds = 10LL * 1000 * 1000 * 1000;

static unsigned char pattern(unsigned seed, size_t i) { return (unsigned char)((seed * 7 + i * 13 + (i >> 12)) & 0xff); }

static void fill(unsigned char* data, size_t bytes, unsigned seed) {
  for (size_t i = 0; i < bytes; ++i) data[i] = pattern(seed, i);
}

static int check(const unsigned char* data, size_t bytes, unsigned seed) {
  for (size_t i = 0; i < bytes; ++i) {
    if (data[i] != pattern(seed, i)) return 0;
  }
  return 1;
}

static int die(const char* what) {
  fprintf(stderr, "buffer_relay: %s: %s\n", what, pat_last_error());
  return 1;
}

/* Four messages in flight at most: the RSS test's peak does not depend on
 * how far the sender runs ahead. */
static const pat_channel_options kSmallChannel = {4, 64, 1};

static pat_channel* open_channel(const char* name, unsigned roles) {
  pat_channel* channel = pat_channel_open(name, roles, &kSmallChannel);
  if (channel == NULL) exit(die("pat_channel_open"));
  return channel;
}

static int send_one(const char* name, pat_buffer* buffer) {
  pat_channel* channel = open_channel(name, PAT_CHANNEL_SEND);
  if (pat_channel_send(channel, "buffer", 6, &buffer, 1, kTenSeconds) != PAT_OK) return die("pat_channel_send");
  printf("sent handle=%llu zero_copy=%d\n", (unsigned long long)pat_buffer_handle(buffer), pat_buffer_is_zero_copy(buffer));
  /* Exits holding the buffer and attached: the host releases both. */
  return 0;
}

static int send_arena(const char* name, size_t bytes, unsigned seed) {
  pat_buffer* buffer = pat_buffer_alloc_uninitialized(bytes);
  if (buffer == NULL) return die("pat_buffer_alloc");
  fill(pat_buffer_data(buffer), bytes, seed);
  return send_one(name, buffer);
}

static int share_own_pages(const char* name, size_t bytes, unsigned seed) {
  unsigned char* mine = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mine == MAP_FAILED) return die("mmap");
  fill(mine, bytes, seed);
  pat_buffer* buffer = pat_buffer_share(mine, bytes);
  if (buffer == NULL) return die("pat_buffer_share");
  if (!pat_buffer_is_zero_copy(buffer) || pat_buffer_data(buffer) != mine) {
    fprintf(stderr, "buffer_relay: share made a copy of its own mmap'd pages\n");
    return 1;
  }
  return send_one(name, buffer);
}

static int share_heap(const char* name, unsigned seed) {
  size_t bytes = 100 * 1024; /* under glibc's mmap threshold: brk heap */
  unsigned char* heap = malloc(bytes);
  fill(heap, bytes, seed);
  pat_buffer* buffer = pat_buffer_share(heap, bytes);
  if (buffer == NULL) return die("pat_buffer_share");
  if (pat_buffer_is_zero_copy(buffer) || !check(pat_buffer_data(buffer), bytes, seed)) {
    fprintf(stderr, "buffer_relay: a brk-heap buffer was not copied\n");
    return 1;
  }
  return send_one(name, buffer);
}

static int receive_one(const char* name, size_t bytes, unsigned seed) {
  pat_channel* channel = open_channel(name, PAT_CHANNEL_RECEIVE);
  pat_message* message = NULL;
  if (pat_channel_receive(channel, &message, kTenSeconds) != PAT_OK) return die("pat_channel_receive");
  pat_buffer* buffer = pat_message_buffer(message, 0);
  if (buffer == NULL) return die("pat_message_buffer");
  if (pat_buffer_size(buffer) != bytes || !check(pat_buffer_data(buffer), bytes, seed)) {
    fprintf(stderr, "buffer_relay: received bytes differ\n");
    return 1;
  }
  printf("ok zero_copy=%d sender=%d\n", pat_buffer_is_zero_copy(buffer), (int)pat_message_sender(message));
  pat_buffer_release(buffer);
  pat_message_free(message);
  pat_channel_release(channel);
  return 0;
}

static int flood(const char* name, long count, size_t bytes) {
  pat_channel* channel = open_channel(name, PAT_CHANNEL_SEND);
  for (long i = 0; i < count; ++i) {
    pat_buffer* buffer = pat_buffer_alloc_uninitialized(bytes);
    if (buffer == NULL) return die("pat_buffer_alloc");
    unsigned char* data = pat_buffer_data(buffer);
    for (size_t at = 0; at < bytes; at += 4096) data[at] = (unsigned char)i; /* touch every page */
    data[bytes - 1] = (unsigned char)(i ^ 0x5a);
    if (pat_channel_send(channel, &i, sizeof(i), &buffer, 1, kTenSeconds) != PAT_OK) return die("pat_channel_send");
    pat_buffer_release(buffer);
  }
  pat_channel_close(channel);
  pat_channel_release(channel);
  printf("flooded %ld\n", count);
  return 0;
}

static int drain(const char* name) {
  pat_channel* channel = open_channel(name, PAT_CHANNEL_RECEIVE);
  long received = 0, damaged = 0;
  for (;;) {
    pat_message* message = NULL;
    int status = pat_channel_receive(channel, &message, kTenSeconds);
    if (status == PAT_E_CLOSED) break;
    if (status != PAT_OK) return die("pat_channel_receive");
    size_t size = 0;
    const long* index = pat_message_bytes(message, &size);
    pat_buffer* buffer = pat_message_buffer(message, 0);
    const unsigned char* data = pat_buffer_data(buffer);
    size_t bytes = pat_buffer_size(buffer);
    if (size != sizeof(long) || data[0] != (unsigned char)*index || data[bytes - 1] != (unsigned char)(*index ^ 0x5a)) {
      damaged++;
    }
    pat_buffer_release(buffer);
    pat_message_free(message);
    received++;
  }
  pat_channel_release(channel);
  printf("drained %ld damaged %ld\n", received, damaged);
  return damaged == 0 ? 0 : 1;
}

static int send_and_hang(const char* name) {
  pat_channel* channel = open_channel(name, PAT_CHANNEL_SEND);
  if (pat_channel_send(channel, "hello", 5, NULL, 0, kTenSeconds) != PAT_OK) return die("pat_channel_send");
  for (;;) pause();
}

static int wait_peer(const char* name) {
  pat_channel* channel = open_channel(name, PAT_CHANNEL_RECEIVE);
  for (;;) {
    pat_message* message = NULL;
    int status = pat_channel_receive(channel, &message, 60LL * 1000 * 1000 * 1000);
    if (status != PAT_OK) {
      printf("error=%s\n", pat_status_name(status));
      return 0;
    }
    size_t size = 0;
    const char* text = pat_message_bytes(message, &size);
    printf("message=%.*s\n", (int)size, text);
    fflush(stdout);
    pat_message_free(message);
  }
}

static int members(void) {
  pat_member_info* list = NULL;
  size_t count = 0;
  if (pat_members(&list, &count) != PAT_OK) return die("pat_members");
  char group[80];
  if (pat_group_name(group, sizeof(group)) != PAT_OK) return die("pat_group_name");
  printf("group=%s\n", group);
  for (size_t i = 0; i < count; ++i) {
    printf("member pid=%d", (int)list[i].pid);
    for (int j = 0; j < list[i].argc; ++j) printf(" %s", list[i].argv[j]);
    printf("\n");
  }
  pat_members_free(list, count);
  return 0;
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "";
  if (strcmp(mode, "send") == 0 && argc == 5) return send_arena(argv[2], strtoul(argv[3], NULL, 0), strtoul(argv[4], NULL, 0));
  if (strcmp(mode, "share") == 0 && argc == 5) return share_own_pages(argv[2], strtoul(argv[3], NULL, 0), strtoul(argv[4], NULL, 0));
  if (strcmp(mode, "share-heap") == 0 && argc == 4) return share_heap(argv[2], strtoul(argv[3], NULL, 0));
  if (strcmp(mode, "receive") == 0 && argc == 5) return receive_one(argv[2], strtoul(argv[3], NULL, 0), strtoul(argv[4], NULL, 0));
  if (strcmp(mode, "flood") == 0 && argc == 5) return flood(argv[2], strtol(argv[3], NULL, 0), strtoul(argv[4], NULL, 0));
  if (strcmp(mode, "drain") == 0 && argc == 3) return drain(argv[2]);
  if (strcmp(mode, "send-and-hang") == 0 && argc == 3) return send_and_hang(argv[2]);
  if (strcmp(mode, "wait-peer") == 0 && argc == 3) return wait_peer(argv[2]);
  if (strcmp(mode, "members") == 0) return members();
  if (strcmp(mode, "in-group") == 0) {
    int in = pat_in_group();
    if (in) printf("1\n");
    else printf("0: %s\n", pat_last_error());
    return 0;
  }
  fprintf(stderr, "usage: see the comment at the top of buffer_relay.c\n");
  return 64;
}
