// The data-plane arena's layout: every structure that lives in the group's
// shared memory, at fixed offsets, read and written by the host and by every
// member's copy of libpat (each member loads its own libpat, maybe another
// build of it: layout_version guards the format). docs/dataplane.md draws it.
//
// Rules for everything in this file:
// - Plain data and std::atomic only: no pointers (offsets from the arena's
//   base instead), no virtual functions, nothing a destructor must undo.
// - All-zero bytes are the valid initial state of every slot: fresh
//   anonymous memory is zero (mmap(2)), so untouched slots cost no memory.
// - A member may die between any two instructions. Each structure says which
//   single store commits a change, so a half-done change is either invisible
//   or repaired by whoever takes the lock next (robust_mutex.h).
#pragma once

#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace pat::dataplane {

// Offsets from the arena's base. A buffer's handle is the offset of its
// BufferHeader; 0 is never a handle (the ArenaHeader is there).
using Offset = std::uint64_t;
using Handle = std::uint64_t;

inline constexpr std::uint32_t kLayoutVersion = 1;
inline constexpr char kArenaMagic[8] = {'P', 'A', 'T', 'A', 'R', 'E', 'N', 'A'};

// arch/x86/include/asm/page_types.h: PAGE_SIZE on x86-64.
inline constexpr std::size_t kPageSize = 4096;
inline constexpr std::size_t kCacheLine = 64;

inline constexpr std::size_t kMaxMembers = 1024;        // alive at once, per group
inline constexpr std::size_t kMaxChannels = 1024;       // existing at once, per group
inline constexpr std::size_t kMaxAttachments = 256;     // members with one channel open
inline constexpr std::size_t kChannelNameBytes = 128;   // including the NUL
inline constexpr std::size_t kArgvBytes = 1536;         // a member's argv, NUL-separated, truncated
inline constexpr std::size_t kPendingFrees = 8;         // frees in flight per member
inline constexpr std::size_t kGroupNameBytes = 72;      // proto/group_object.h: up to 64 characters

// ---------------------------------------------------------------------------
// Allocator state (block_allocator.h). The Boost heap itself starts at
// ArenaHeader::heap_offset; this is what libpat keeps beside it.
struct AllocatorState {
  pthread_mutex_t lock;                      // robust; guards the Boost heap and the fields below
  std::uint32_t damaged;                     // 1: a holder died and the heap failed its check
  std::uint32_t owner_deaths;                // times the lock was recovered from a dead holder
  // Estimate of freed memory kept resident for reuse; atomic, so that a
  // free can decide without the lock whether to discard (block_allocator.h).
  std::atomic<std::uint64_t> retained_free_bytes;
  std::atomic<std::uint64_t> discarded_bytes;  // total given back with MADV_DONTNEED (statistics)
};

// ---------------------------------------------------------------------------
// The first page of the arena.
struct ArenaHeader {
  char magic[8];                             // kArenaMagic, written last by the host
  std::uint32_t layout_version;
  std::uint32_t header_bytes;                // sizeof(ArenaHeader), a second format check
  std::uint64_t arena_bytes;
  Offset member_table_offset;
  Offset directory_offset;
  Offset heap_offset;
  std::uint64_t heap_bytes;
  char group_name[kGroupNameBytes];
  std::int32_t host_pid;
  std::uint32_t reserved0;
  std::atomic<std::uint64_t> next_generation;  // BufferHeader::generation, never reused
  std::atomic<std::uint64_t> buffers_live;     // statistics
  std::atomic<std::uint64_t> buffer_bytes_live;
  AllocatorState allocator;
};

// ---------------------------------------------------------------------------
// Member table (member_table.h): one slot per member alive, written by the
// host at spawn and exit; a member writes only its holder set and pending
// frees.
enum class MemberState : std::uint32_t {
  Free = 0,    // unused (the zero state)
  Alive = 1,   // a member runs with this slot
  Ending = 2,  // the member is gone; the host is releasing what it held
};

// handle 0: empty. Claimed by a CAS on `handle`; `generation` is the freed
// buffer's, 0 before the record's first use and ~0 once a free finished
// (buffer_store.cc says how the host reads it).
struct PendingFree {
  std::atomic<Handle> handle;
  std::atomic<std::uint64_t> generation;
};

struct MemberSlot {
  std::atomic<MemberState> state;
  // Seqlock for pid/argv: odd while the host rewrites the slot, bumped again
  // when done (readers retry or skip). Also tells slot reuses apart.
  std::atomic<std::uint32_t> sequence;
  std::int32_t pid;
  std::uint32_t argc;                        // the real argc, even when argv was truncated
  std::uint32_t argv_bytes;                  // bytes used in argv
  std::uint32_t argv_truncated;
  std::uint64_t started_unix_ns;
  // Which libpat copy in the member attached (an address in it), 0 before:
  // a second copy in the same process (libpat.so beside the Python
  // extension's static one) would keep a second, unsynchronized view of the
  // same holder set, so it is refused (process_session.cc).
  std::atomic<std::uint64_t> attached_session;
  // The member's HolderSetBlock (holder_set.h); 0 until the member attaches.
  // Written by the member only, read by the host after the member is gone.
  std::atomic<Offset> holder_set;
  // Buffers whose last reference this member dropped and whose free is in
  // progress. The host completes them if the member dies (buffer_store.h).
  PendingFree pending_frees[kPendingFrees];
  char argv[kArgvBytes];
};

// ---------------------------------------------------------------------------
// Buffers (buffer_store.h). Every buffer has a header in an arena block; its
// handle is the header's offset. The host may have to look at a block that
// was freed (and maybe merged into a neighbour, or handed out again):
// magic and generation tell whether it is still the buffer it was.
enum class BufferKind : std::uint32_t {
  Arena = 1,     // the data follows the header in the same block
  External = 2,  // the data is a member's own pinned pages (PAT_HOSTCALL_PIN)
};

struct BufferHeader {
  std::uint64_t size;                        // bytes of data
  std::uint64_t capacity;                    // bytes of the whole block (Arena) or 0
  std::uint64_t data;                        // Arena: offset of the data; External: its address
  std::uint64_t magic;                       // kBufferMagic
  std::atomic<std::uint64_t> generation;     // unique per allocation; 0 once freed
  std::atomic<std::uint32_t> references;     // holders: members' holder sets + channel messages
  BufferKind kind;
  std::uint64_t pin_id;                      // External: the host's pin
  std::int32_t maker_pid;
  std::uint32_t reserved0;
};
inline constexpr std::uint64_t kBufferMagic = 0x5041544255463031;  // "PATBUF01"
inline constexpr std::size_t kBufferDataAlignment = 64;

// ---------------------------------------------------------------------------
// Holder sets (holder_set.h): open addressing over handles, in an arena block.
struct HolderSetBlock {
  std::uint64_t capacity;                    // power of two
  std::uint64_t used;                        // slots not Empty (tombstones included)
  std::atomic<Handle> keys[1];               // `capacity` of them; 0 empty, 1 tombstone
};

// ---------------------------------------------------------------------------
// Channels (channel.h, channel_directory.h).
enum class ChannelState : std::uint32_t {
  Free = 0,
  Creating = 1,  // the directory lock holder is setting it up
  Open = 2,
  Closed = 3,    // close(): no more sends; receivers drain
};

// One member that has the channel open. Cleared (member_slot = 0) when the
// member's last open is released or when the host ends the member.
struct Attachment {
  std::uint32_t member_slot;                 // index + 1; 0: this entry is free (written last)
  std::uint32_t send_opens;                  // opens with the send role
  std::uint32_t receive_opens;
  std::uint32_t waiting_senders;             // its threads blocked in send
  std::uint32_t waiting_receivers;
};

struct ChannelSlot {
  pthread_mutex_t lock;                      // robust; guards everything but the futex words
  char name[kChannelNameBytes];
  std::uint32_t capacity;                    // messages in the ring
  std::uint32_t max_bytes;                   // inline bytes per message
  std::uint32_t max_buffers;                 // handles per message
  std::uint32_t slot_bytes;                  // stride of the ring's MessageSlots
  Offset ring;                               // arena block of capacity * slot_bytes
  // Changed under the lock only; atomic so that a waiter may spin on them
  // without it (channel_queue.cc).
  std::atomic<std::uint64_t> head;           // next to receive; head++ commits a receive
  std::atomic<std::uint64_t> tail;           // next to fill; tail++ commits a send
  // Futex words (futex(2), private: the key is (mm, address), the same for
  // every member). Bumped under the lock whenever a waiter may need to look.
  std::atomic<std::uint32_t> items_seq;      // receivers wait on it
  std::atomic<std::uint32_t> space_seq;      // senders wait on it
  std::uint32_t senders_waiting;             // sums of the attachments' counts
  std::uint32_t receivers_waiting;
  // Set when a member ended while attached and left no sender (receiver)
  // attached; cleared when a sender (receiver) attaches. PeerDied.
  std::uint32_t senders_lost_by_death;
  std::uint32_t receivers_lost_by_death;
  std::uint64_t messages_sent;               // statistics
  std::uint64_t messages_received;
  Attachment attachments[kMaxAttachments];
};

// Compact per-channel index so that a name lookup does not touch every slot.
struct DirectoryEntry {
  std::atomic<ChannelState> state;
  std::uint32_t name_hash;
};

struct ChannelTable {
  pthread_mutex_t lock;                      // robust; guards creation, attach, detach, destruction
  std::uint32_t initialized;
  std::uint32_t reserved0;
  DirectoryEntry entries[kMaxChannels];
  ChannelSlot slots[kMaxChannels];
};

// One message in a channel's ring: this header, then max_buffers handles,
// then max_bytes of inline payload.
struct MessageSlotHeader {
  std::uint32_t bytes;
  std::uint32_t buffers;
  std::int32_t sender_pid;
  std::uint32_t reserved0;
};

static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<std::uint64_t>) == 8 && sizeof(std::atomic<MemberState>) == 4);
static_assert(sizeof(ArenaHeader) <= kPageSize);
static_assert(sizeof(BufferHeader) == kBufferDataAlignment);
static_assert(alignof(MemberSlot) <= kCacheLine && alignof(ChannelSlot) <= kCacheLine);

}  // namespace pat::dataplane
