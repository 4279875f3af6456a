// The C++ API (pat/pat.hpp) over this process's MemberSession.
#include "libpat/src/channel_directory.h"
#include "libpat/src/channel_queue.h"
#include "libpat/src/hostcall.h"
#include "libpat/src/member_table.h"
#include "libpat/src/process_session.h"
#include "pat/pat.hpp"

#include <cassert>
#include <cerrno>
#include <cstring>

namespace pat {

using dataplane::ChannelStatus;
using dataplane::Handle;
using dataplane::MemberSession;
using dataplane::this_member;

namespace detail {

struct BufferAccess {
  static Buffer adopt(MemberSession& session, Handle handle) { return Buffer(session.adopt(handle)); }
  static const Holding& holding(const Buffer& buffer) {
    if (!buffer.holding_) throw Error(Errc::InvalidArgument, "an empty pat::Buffer");
    return *buffer.holding_;
  }
};

// One open() of a channel by this member; detaches when destroyed.
class ChannelHandle {
 public:
  ChannelHandle(MemberSession& session, dataplane::ChannelDirectory::Opened opened, Role role)
      : session_(session), opened_(opened), role_(role), name_(slot().name) {}
  // A heap found damaged while destroying an empty channel leaves its ring
  // allocated; a destructor must not throw.
  ~ChannelHandle() {
    if (session_.disowned()) return;
    try {
      dataplane::ChannelDirectory(session_.arena()).detach(opened_, role_);
    } catch (const Error&) {
    }
  }
  ChannelHandle(const ChannelHandle&) = delete;
  ChannelHandle& operator=(const ChannelHandle&) = delete;

  MemberSession& session() const { return session_; }
  dataplane::ChannelQueue queue() const { return {session_.arena(), opened_.channel, opened_.attachment}; }
  dataplane::ChannelSlot& slot() const { return session_.arena().channels().slots[opened_.channel]; }
  const std::string& name() const { return name_; }
  // Throws InvalidArgument unless the channel was opened with `role`.
  void require(Role role, const char* what) const {
    if ((static_cast<unsigned>(role_) & static_cast<unsigned>(role)) == 0) {
      throw Error(Errc::InvalidArgument, "channel '" + name_ + "' was opened without the right to " + what);
    }
  }

 private:
  MemberSession& session_;
  dataplane::ChannelDirectory::Opened opened_;
  Role role_;
  std::string name_;  // a copy: the slot may be reused once we detach
};

}  // namespace detail

namespace {

using detail::BufferAccess;

dataplane::Deadline deadline_after(std::optional<std::chrono::nanoseconds> timeout) {
  if (!timeout) return std::nullopt;
  return std::chrono::steady_clock::now() + std::max(*timeout, std::chrono::nanoseconds(0));
}

// Throws for every status but Ok and TimedOut; true for Ok.
bool ok_or_timed_out(ChannelStatus status, const std::string& channel, const char* other_side) {
  switch (status) {
    case ChannelStatus::Ok: return true;
    case ChannelStatus::TimedOut: return false;
    case ChannelStatus::Closed: throw Error(Errc::Closed, "channel '" + channel + "' is closed");
    case ChannelStatus::PeerDied:
      throw Error(Errc::PeerDied,
                  "every member " + std::string(other_side) + " channel '" + channel + "' ended without closing it");
    case ChannelStatus::Interrupted:
      throw Error(Errc::Interrupted, "a signal interrupted the wait on channel '" + channel + "'");
  }
  return false;
}

// The received handles, each one counted reference, become Buffers; if that
// fails halfway, the references not yet adopted are dropped.
std::vector<Buffer> adopt_all(MemberSession& session, const std::vector<Handle>& handles) {
  std::vector<Buffer> out;
  out.reserve(handles.size());
  std::size_t next = 0;
  try {
    for (; next < handles.size(); ++next) out.push_back(BufferAccess::adopt(session, handles[next]));
  } catch (...) {
    for (++next; next < handles.size(); ++next) {
      if (session.buffers().drop_reference(handles[next])) {
        session.buffers().free(handles[next], session.slot(), session.unpin());
      }
    }
    throw;
  }
  return out;
}

}  // namespace

// ---- Buffer ---------------------------------------------------------------

Buffer Buffer::allocate(std::size_t size, Fill fill) {
  MemberSession& session = this_member();
  auto store_fill = fill == Fill::Zero ? dataplane::Fill::Zero : dataplane::Fill::Uninitialized;
  return BufferAccess::adopt(session, session.buffers().create_arena(size, store_fill, session.pid()));
}

Buffer Buffer::copy_of(const void* data, std::size_t size) {
  Buffer copy = allocate(size, Fill::Uninitialized);
  if (size != 0) std::memcpy(copy.data(), data, size);
  return copy;
}

// Pinning hands the pages to the group (proto/hostcall.h): the host refuses
// (EPERM) memory that is not the caller's own mapping, such as its brk heap
// or stack, or the arena itself; those, and small buffers, are copied.
Buffer Buffer::share(const void* data, std::size_t size) {
  MemberSession& session = this_member();
  if (size < kZeroCopyMinimum || session.arena().contains(data, size)) return copy_of(data, size);
  long pin = dataplane::hostcall::pin(data, size);
  if (pin == -EPERM || pin == -EINVAL) return copy_of(data, size);
  if (pin < 0) throw Error(Errc::SystemError, std::string("PAT_HOSTCALL_PIN: ") + std::strerror(static_cast<int>(-pin)));
  Handle handle;
  try {
    handle = session.buffers().create_external(data, size, static_cast<std::uint64_t>(pin), session.pid());
  } catch (...) {
    session.unpin()(static_cast<std::uint64_t>(pin));
    throw;
  }
  return BufferAccess::adopt(session, handle);
}

std::byte* Buffer::data() const { return holding_ ? holding_->data() : nullptr; }
std::size_t Buffer::size() const { return holding_ ? holding_->size() : 0; }

Buffer::Kind Buffer::kind() const {
  return BufferAccess::holding(*this).kind() == dataplane::BufferKind::External ? Kind::External : Kind::Arena;
}

std::uint64_t Buffer::handle() const { return BufferAccess::holding(*this).handle(); }

std::uint32_t Buffer::references() const {
  const detail::Holding& holding = BufferAccess::holding(*this);
  return holding.session().buffers().header(holding.handle()).references.load(std::memory_order_relaxed);
}

Message::Message(std::string_view text, std::vector<Buffer> buffers_)
    : bytes(reinterpret_cast<const std::byte*>(text.data()), reinterpret_cast<const std::byte*>(text.data()) + text.size()),
      buffers(std::move(buffers_)) {}

// ---- Channel --------------------------------------------------------------

Channel Channel::open(std::string_view name, Role role, const ChannelOptions& options) {
  MemberSession& session = this_member();
  auto opened = dataplane::ChannelDirectory(session.arena()).open(name, role, options, session.slot_index());
  return Channel(std::make_unique<detail::ChannelHandle>(session, opened, role));
}

Channel::Channel(std::unique_ptr<detail::ChannelHandle> handle) : handle_(std::move(handle)) {}
Channel::Channel(Channel&&) noexcept = default;
Channel& Channel::operator=(Channel&&) noexcept = default;
Channel::~Channel() = default;

detail::ChannelHandle& Channel::attached() const {
  if (!handle_) throw Error(Errc::InvalidArgument, "a moved-from pat::Channel");
  return *handle_;
}

bool Channel::send(const Message& message, std::optional<std::chrono::nanoseconds> timeout, Wait wait) {
  attached().require(Role::Send, "send");
  const dataplane::ChannelSlot& slot = attached().slot();
  if (message.bytes.size() > slot.max_bytes || message.buffers.size() > slot.max_buffers) {
    throw Error(Errc::TooLarge, "channel '" + name() + "' takes up to " + std::to_string(slot.max_bytes) +
                                    " bytes and " + std::to_string(slot.max_buffers) + " buffers per message, not " +
                                    std::to_string(message.bytes.size()) + " and " +
                                    std::to_string(message.buffers.size()));
  }
  std::vector<Handle> handles;
  handles.reserve(message.buffers.size());
  for (const Buffer& buffer : message.buffers) handles.push_back(BufferAccess::holding(buffer).handle());
  auto status = attached().queue().send(message.bytes, handles, attached().session().pid(), deadline_after(timeout),
                                      wait == Wait::ReturnOnSignal);
  return ok_or_timed_out(status, name(), "receiving from");
}

std::optional<Message> Channel::receive(std::optional<std::chrono::nanoseconds> timeout, Wait wait) {
  attached().require(Role::Receive, "receive");
  dataplane::ReceivedMessage received;
  auto status = attached().queue().receive(received, deadline_after(timeout), wait == Wait::ReturnOnSignal);
  if (!ok_or_timed_out(status, name(), "sending on")) return std::nullopt;
  Message message;
  message.buffers = adopt_all(attached().session(), received.handles);
  message.bytes = std::move(received.bytes);
  message.sender = received.sender;
  return message;
}

void Channel::close() { attached().queue().close(); }
const std::string& Channel::name() const { return attached().name(); }
std::size_t Channel::queued() const { return attached().queue().queued(); }
bool Channel::closed() const { return attached().queue().closed(); }

ChannelOptions Channel::limits() const {
  const dataplane::ChannelSlot& slot = attached().slot();
  return {slot.capacity, slot.max_bytes, slot.max_buffers};
}

// ---- The group ------------------------------------------------------------

bool in_group() noexcept {
  try {
    this_member();
    return true;
  } catch (...) {
    return false;
  }
}

bool look_for_group() noexcept {
  dataplane::look_again();
  return in_group();
}

std::string group_name() { return this_member().arena().header().group_name; }

std::vector<MemberInfo> members() {
  std::vector<MemberInfo> out;
  for (auto& record : dataplane::MemberTable(this_member().arena()).alive()) {
    out.push_back(MemberInfo{record.pid, std::move(record.argv), record.argv_truncated});
  }
  return out;
}

}  // namespace pat
