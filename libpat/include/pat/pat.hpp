// pat: the member-side data plane of a pat group, in C++ (the C ABI is
// pat/pat.h). Members of one group share one address space, so a buffer made
// by one member is readable by every other at the same address: this library
// gives such buffers a group-wide reference count that outlives the member
// that made them (and survives members that crash), and named channels that
// pass references to them instead of bytes. docs/dataplane.md explains the
// design; every call here works only inside a pat group (`patctl run`).
//
// Errors are exceptions of type pat::Error carrying a pat::Errc. Waiting
// calls report a timeout through their return value, not an exception.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#if defined(PAT_BUILDING_LIBPAT)
#define PAT_API __attribute__((visibility("default")))
#else
#define PAT_API
#endif

namespace pat {

// The same numbers as the PAT_E_* codes of pat/pat.h, negated there.
enum class Errc : int {
  NotInGroup = 1,       // not a member of a pat group (or a fork child of one)
  InvalidArgument = 2,
  OutOfMemory = 3,      // the group's arena has no block that large
  TooLarge = 4,         // a message exceeds its channel's limits
  Timeout = 5,          // (C ABI only: C++ returns an empty optional or false)
  Closed = 6,           // the channel was closed (receivers: and drained)
  PeerDied = 7,         // the members on the other side of a channel ended without closing it
  Interrupted = 8,      // a signal handler ran during a wait (Wait::ReturnOnSignal)
  LimitReached = 9,     // too many members, channels or attachments in the group
  ArenaDamaged = 10,    // a member died inside the allocator and the heap failed its check
  SystemError = 11,     // an unexpected system call failure; the message has errno's text
};

PAT_API const char* to_string(Errc code);  // "peer died", ...

class PAT_API Error : public std::runtime_error {
 public:
  Error(Errc code, const std::string& message);
  Errc code() const noexcept { return code_; }

 private:
  Errc code_;
};

namespace detail {
class Holding;
class ChannelHandle;
struct BufferAccess;
}  // namespace detail

// One reference to a buffer in the group's shared memory. Copies share the
// reference; when the last Buffer of every member (and every message still in
// a channel) is gone, the memory is freed: arena blocks go back to the
// group's allocator, shared pages are unpinned. A member that ends, however
// it ends, drops its references with it.
class PAT_API Buffer {
 public:
  enum class Kind {
    Arena,     // a block of the group's arena
    External,  // a member's own pages, pinned and shared without a copy
  };

  enum class Fill { Zero, Uninitialized };
  // A new buffer of `size` bytes in the group's arena, zero-filled unless
  // asked not to be.
  static Buffer allocate(std::size_t size, Fill fill = Fill::Zero);
  // The caller's `size` bytes at `data`, shared without a copy when they are
  // at least kZeroCopyMinimum bytes of the caller's own mapped memory (not its
  // brk heap, stack or program image); otherwise copied into a new arena
  // buffer. Without a copy, the bytes must stay as they are while others
  // hold the buffer: munmap and exit are safe (the pages stay mapped for the
  // holders), but memory an allocator reuses after free() is not. See
  // references() and docs/dataplane.md "External buffers".
  static Buffer share(const void* data, std::size_t size);
  // Always a copy into a new arena buffer.
  static Buffer copy_of(const void* data, std::size_t size);
  static constexpr std::size_t kZeroCopyMinimum = 64 * 1024;

  Buffer() = default;  // empty: no reference
  explicit operator bool() const { return holding_ != nullptr; }

  std::byte* data() const;
  std::size_t size() const;
  std::span<std::byte> bytes() const { return {data(), size()}; }
  Kind kind() const;
  bool zero_copy() const { return kind() == Kind::External; }
  // The buffer's id in the group (an offset in the arena); the same in
  // every member.
  std::uint64_t handle() const;
  // How many holders the buffer has across the group right now (a member
  // counts once however many Buffers it has; each message in a channel
  // counts once). A maker of an External buffer can keep the source alive
  // until this drops to 1 (itself).
  std::uint32_t references() const;

 private:
  friend struct detail::BufferAccess;
  explicit Buffer(std::shared_ptr<detail::Holding> holding) : holding_(std::move(holding)) {}
  std::shared_ptr<detail::Holding> holding_;
};

// What travels through a channel: a few bytes inline (a header, a pickle's
// metadata) and references to buffers.
struct PAT_API Message {
  std::vector<std::byte> bytes;
  std::vector<Buffer> buffers;
  pid_t sender = 0;  // filled in by receive()

  Message() = default;
  Message(std::string_view text, std::vector<Buffer> buffers_ = {});
  std::string_view text() const { return {reinterpret_cast<const char*>(bytes.data()), bytes.size()}; }
};

struct ChannelOptions {
  // Used by the open() that creates the channel; later opens get the
  // channel as it was created.
  std::uint32_t capacity = 64;      // messages queued before send() blocks
  std::uint32_t max_bytes = 4096;   // inline bytes per message
  std::uint32_t max_buffers = 16;   // buffers per message
};

enum class Role : unsigned {
  Send = 1,
  Receive = 2,
  Both = 3,
};

enum class Wait {
  RetryOnSignal,   // a signal handler running during the wait does not end it
  ReturnOnSignal,  // it ends it with Error(Errc::Interrupted), e.g. for Python's Ctrl-C
};

// A named multi-producer, multi-consumer queue of Messages in the group's
// memory. Opening attaches this member to it (as sender, receiver or both);
// destroying the Channel detaches. The channel exists while someone has it
// open or it holds messages.
//
// close() ends it for everyone: send() then throws Closed, receive() returns
// what is queued and then throws Closed. When every member attached on the
// other side has ended without closing (crashed, killed, exited), a
// receive() that would block (a send() on a full channel) throws PeerDied;
// messages already queued by them are still delivered first.
//
// One Channel may be used from several threads at once; a moved-from one
// only throws.
class PAT_API Channel {
 public:
  static Channel open(std::string_view name, Role role = Role::Both, const ChannelOptions& options = {});

  Channel(Channel&&) noexcept;
  Channel& operator=(Channel&&) noexcept;
  ~Channel();

  // Queues `message`, which then holds its own references to the buffers.
  // Blocks while the channel is full; false when `timeout` passed first.
  bool send(const Message& message, std::optional<std::chrono::nanoseconds> timeout = std::nullopt,
            Wait wait = Wait::RetryOnSignal);
  // The next message, or nullopt when `timeout` passed with none.
  std::optional<Message> receive(std::optional<std::chrono::nanoseconds> timeout = std::nullopt,
                                 Wait wait = Wait::RetryOnSignal);
  void close();

  const std::string& name() const;
  std::size_t queued() const;  // messages waiting now
  bool closed() const;
  ChannelOptions limits() const;

 private:
  explicit Channel(std::unique_ptr<detail::ChannelHandle> handle);
  // Throws Error(InvalidArgument) for a moved-from Channel.
  detail::ChannelHandle& attached() const;
  std::unique_ptr<detail::ChannelHandle> handle_;
};

struct MemberInfo {
  pid_t pid = 0;
  std::vector<std::string> argv;
  bool argv_truncated = false;  // the arena keeps the first 1.5 KiB of it
};

// Whether this process is a member of a pat group with a data plane. Never throws.
PAT_API bool in_group() noexcept;
// in_group() after looking again: the answer of the first look is kept, so a
// process moved into a group while it runs (`patctl group attach`,
// pat.join()) calls this once PAT_ARENA is in its environment. Never throws.
PAT_API bool look_for_group() noexcept;
// The group's name; throws Error(NotInGroup) outside one.
PAT_API std::string group_name();
// The members running now, in no particular order.
PAT_API std::vector<MemberInfo> members();

}  // namespace pat
