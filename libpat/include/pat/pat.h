/* pat: the member-side data plane of a pat group, as a C ABI (libpat.so).
 * The same capability as the C++ API (pat/pat.hpp): buffers in the group's
 * shared memory with a group-wide reference count, and named channels that
 * pass references to them. docs/dataplane.md explains the design.
 *
 * Conventions: functions returning a pointer return NULL on failure;
 * functions returning int return PAT_OK (0) or a negative pat_status. In both
 * cases pat_last_error() then describes the failure (per thread, until the
 * next failing call). Objects are opaque and owned by the caller until
 * released with the matching *_release / *_free. Timeouts are nanoseconds;
 * a negative timeout waits forever; a signal handler that runs during a wait
 * ends it with PAT_E_INTERRUPTED, as EINTR would. */
#ifndef PAT_PAT_H
#define PAT_PAT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(PAT_BUILDING_LIBPAT)
#define PAT_C_API __attribute__((visibility("default")))
#else
#define PAT_C_API
#endif

/* The numbers of pat::Errc (pat/pat.hpp), negated. */
enum pat_status {
  PAT_OK = 0,
  PAT_E_NOT_IN_GROUP = -1,
  PAT_E_INVALID_ARGUMENT = -2,
  PAT_E_OUT_OF_MEMORY = -3,
  PAT_E_TOO_LARGE = -4,
  PAT_E_TIMEOUT = -5,
  PAT_E_CLOSED = -6,
  PAT_E_PEER_DIED = -7,
  PAT_E_INTERRUPTED = -8,
  PAT_E_LIMIT_REACHED = -9,
  PAT_E_ARENA_DAMAGED = -10,
  PAT_E_SYSTEM = -11,
};

/* What the last failing call on this thread said, e.g.
 * "pat_channel_receive: peer died: every member sending on channel 'jobs'
 * ended without closing it". Never NULL. */
PAT_C_API const char* pat_last_error(void);
/* A short name for a status: "peer died". */
PAT_C_API const char* pat_status_name(int status);

/* 1 when this process is a member of a pat group with a data plane, else 0
 * (pat_last_error() says why). */
PAT_C_API int pat_in_group(void);
/* The group's name, NUL-terminated, into `out` (at most `size` bytes). */
PAT_C_API int pat_group_name(char* out, size_t size);

/* ---- Buffers -------------------------------------------------------------
 * A pat_buffer is one reference to a buffer in the group's memory. */
typedef struct pat_buffer pat_buffer;

/* A new zero-filled buffer of `size` bytes in the group's arena. */
PAT_C_API pat_buffer* pat_buffer_alloc(size_t size);
/* Like pat_buffer_alloc, without zeroing the bytes. */
PAT_C_API pat_buffer* pat_buffer_alloc_uninitialized(size_t size);
/* The caller's `size` bytes at `data`, without a copy when they are at least
 * PAT_ZERO_COPY_MINIMUM bytes of its own mapped memory (then pinned: they
 * stay mapped for the holders after the caller unmaps them or exits; the
 * caller must not change or reuse them while others hold the buffer);
 * otherwise (brk heap, stack, program image, small) a copy. */
PAT_C_API pat_buffer* pat_buffer_share(const void* data, size_t size);
#define PAT_ZERO_COPY_MINIMUM ((size_t)64 * 1024)
/* Another reference to the same buffer (release each). */
PAT_C_API pat_buffer* pat_buffer_ref(const pat_buffer* buffer);
PAT_C_API void pat_buffer_release(pat_buffer* buffer); /* NULL is fine */

PAT_C_API void* pat_buffer_data(const pat_buffer* buffer);
PAT_C_API size_t pat_buffer_size(const pat_buffer* buffer);
/* 1 when the buffer is a member's own pinned memory (no copy was made). */
PAT_C_API int pat_buffer_is_zero_copy(const pat_buffer* buffer);
/* The buffer's id in the group (the same in every member). */
PAT_C_API uint64_t pat_buffer_handle(const pat_buffer* buffer);
/* Holders across the group right now (members once each, queued messages). */
PAT_C_API uint32_t pat_buffer_references(const pat_buffer* buffer);

/* ---- Channels ------------------------------------------------------------ */
typedef struct pat_channel pat_channel;
typedef struct pat_message pat_message;

#define PAT_CHANNEL_SEND 1u
#define PAT_CHANNEL_RECEIVE 2u
#define PAT_CHANNEL_BOTH 3u

/* Limits used when the open creates the channel; NULL for the defaults
 * (64 messages, 4096 inline bytes, 16 buffers). */
typedef struct pat_channel_options {
  uint32_t capacity;
  uint32_t max_bytes;
  uint32_t max_buffers;
} pat_channel_options;

/* Opens (creating if needed) the channel `name` and attaches this member to
 * it with `roles` (PAT_CHANNEL_*). */
PAT_C_API pat_channel* pat_channel_open(const char* name, unsigned roles, const pat_channel_options* options);
/* Detaches; the channel lives on while others have it open or it holds
 * messages. NULL is fine. */
PAT_C_API void pat_channel_release(pat_channel* channel);
/* Ends the channel for everyone: later sends fail with PAT_E_CLOSED,
 * receivers drain what is queued and then get PAT_E_CLOSED. */
PAT_C_API int pat_channel_close(pat_channel* channel);

/* Queues `size` inline bytes and references to `count` buffers (the caller
 * keeps its own). Blocks while the channel is full. PAT_E_TIMEOUT,
 * PAT_E_CLOSED, PAT_E_PEER_DIED (every receiver ended without closing),
 * PAT_E_TOO_LARGE. */
PAT_C_API int pat_channel_send(pat_channel* channel, const void* bytes, size_t size, pat_buffer* const* buffers,
                               size_t count, int64_t timeout_ns);
/* The next message into *message (free it with pat_message_free).
 * PAT_E_TIMEOUT, PAT_E_CLOSED (closed and drained), PAT_E_PEER_DIED (empty,
 * and every sender ended without closing). */
PAT_C_API int pat_channel_receive(pat_channel* channel, pat_message** message, int64_t timeout_ns);
/* Messages queued now, or a negative pat_status. */
PAT_C_API long pat_channel_queued(const pat_channel* channel);

PAT_C_API const void* pat_message_bytes(const pat_message* message, size_t* size);
PAT_C_API size_t pat_message_buffer_count(const pat_message* message);
/* A new reference to buffer `index` of the message (release it). */
PAT_C_API pat_buffer* pat_message_buffer(const pat_message* message, size_t index);
PAT_C_API pid_t pat_message_sender(const pat_message* message);
PAT_C_API void pat_message_free(pat_message* message); /* NULL is fine */

/* ---- Members ------------------------------------------------------------- */
typedef struct pat_member_info {
  pid_t pid;
  int argc;           /* entries in argv (the arena keeps the first 1.5 KiB) */
  const char** argv;  /* owned by the list */
  int argv_truncated;
} pat_member_info;

/* The members running now: *members gets `*count` entries, freed with
 * pat_members_free. */
PAT_C_API int pat_members(pat_member_info** members, size_t* count);
PAT_C_API void pat_members_free(pat_member_info* members, size_t count);

#ifdef __cplusplus
}
#endif

#endif
