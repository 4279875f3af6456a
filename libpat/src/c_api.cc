// The C ABI (pat/pat.h) over the C++ API: opaque objects wrapping pat::Buffer,
// pat::Channel and pat::Message; every exception becomes a pat_status and
// pat_last_error()'s text. No exception crosses into C.
#include "pat/pat.h"

#include "pat/pat.hpp"

#include <cstring>
#include <new>
#include <string>

struct pat_buffer {
  pat::Buffer buffer;
};
struct pat_channel {
  pat::Channel channel;
};
struct pat_message {
  pat::Message message;
};

namespace {

thread_local std::string last_error = "no error";

int fail(const char* function, pat::Errc code, const std::string& message) {
  last_error = std::string(function) + ": " + message;
  return -static_cast<int>(code);
}

// Runs `body`, turning exceptions into a status (and the message).
template <class Body>
int guarded(const char* function, Body&& body) {
  try {
    return body();
  } catch (const pat::Error& error) {
    return fail(function, error.code(), error.what());
  } catch (const std::bad_alloc&) {
    return fail(function, pat::Errc::OutOfMemory, "out of process memory");
  } catch (const std::exception& error) {
    return fail(function, pat::Errc::SystemError, error.what());
  }
}

// The same for calls that return an object: nullptr on failure.
template <class T, class Body>
T* guarded_new(const char* function, Body&& body) {
  T* made = nullptr;
  guarded(function, [&] {
    made = new T{body()};
    return int{PAT_OK};
  });
  return made;
}

std::optional<std::chrono::nanoseconds> timeout_of(int64_t timeout_ns) {
  if (timeout_ns < 0) return std::nullopt;
  return std::chrono::nanoseconds(timeout_ns);
}

int invalid(const char* function, const char* what) { return fail(function, pat::Errc::InvalidArgument, what); }

}  // namespace

extern "C" {

const char* pat_last_error(void) { return last_error.c_str(); }

const char* pat_status_name(int status) {
  return status == PAT_OK ? "ok" : pat::to_string(static_cast<pat::Errc>(-status));
}

int pat_in_group(void) {
  int status = guarded("pat_in_group", [] {
    pat::group_name();  // throws NotInGroup with the reason
    return int{PAT_OK};
  });
  return status == PAT_OK ? 1 : 0;
}

int pat_group_name(char* out, size_t size) {
  if (out == nullptr || size == 0) return invalid("pat_group_name", "no output buffer");
  return guarded("pat_group_name", [&] {
    std::string name = pat::group_name();
    if (name.size() + 1 > size) return fail("pat_group_name", pat::Errc::TooLarge, "the name needs " + std::to_string(name.size() + 1) + " bytes");
    std::memcpy(out, name.c_str(), name.size() + 1);
    return int{PAT_OK};
  });
}

pat_buffer* pat_buffer_alloc(size_t size) {
  return guarded_new<pat_buffer>("pat_buffer_alloc", [&] { return pat::Buffer::allocate(size); });
}

pat_buffer* pat_buffer_alloc_uninitialized(size_t size) {
  return guarded_new<pat_buffer>("pat_buffer_alloc_uninitialized",
                                 [&] { return pat::Buffer::allocate(size, pat::Buffer::Fill::Uninitialized); });
}

pat_buffer* pat_buffer_share(const void* data, size_t size) {
  if (data == nullptr && size != 0) {
    invalid("pat_buffer_share", "NULL data");
    return nullptr;
  }
  return guarded_new<pat_buffer>("pat_buffer_share", [&] { return pat::Buffer::share(data, size); });
}

pat_buffer* pat_buffer_ref(const pat_buffer* buffer) {
  if (buffer == nullptr) {
    invalid("pat_buffer_ref", "NULL buffer");
    return nullptr;
  }
  return guarded_new<pat_buffer>("pat_buffer_ref", [&] { return buffer->buffer; });
}

void pat_buffer_release(pat_buffer* buffer) { delete buffer; }

void* pat_buffer_data(const pat_buffer* buffer) { return buffer ? buffer->buffer.data() : nullptr; }
size_t pat_buffer_size(const pat_buffer* buffer) { return buffer ? buffer->buffer.size() : 0; }
int pat_buffer_is_zero_copy(const pat_buffer* buffer) { return buffer && buffer->buffer.zero_copy() ? 1 : 0; }
uint64_t pat_buffer_handle(const pat_buffer* buffer) { return buffer ? buffer->buffer.handle() : 0; }
uint32_t pat_buffer_references(const pat_buffer* buffer) { return buffer ? buffer->buffer.references() : 0; }

pat_channel* pat_channel_open(const char* name, unsigned roles, const pat_channel_options* options) {
  if (name == nullptr || roles == 0 || roles > PAT_CHANNEL_BOTH) {
    invalid("pat_channel_open", "a name and roles (PAT_CHANNEL_SEND, _RECEIVE or _BOTH) are needed");
    return nullptr;
  }
  pat::ChannelOptions limits;
  if (options != nullptr) limits = {options->capacity, options->max_bytes, options->max_buffers};
  return guarded_new<pat_channel>(
      "pat_channel_open", [&] { return pat::Channel::open(name, static_cast<pat::Role>(roles), limits); });
}

void pat_channel_release(pat_channel* channel) {
  // Detaching takes arena locks; it cannot fail in a way C could act on.
  guarded("pat_channel_release", [&] {
    delete channel;
    return int{PAT_OK};
  });
}

int pat_channel_close(pat_channel* channel) {
  if (channel == nullptr) return invalid("pat_channel_close", "NULL channel");
  return guarded("pat_channel_close", [&] {
    channel->channel.close();
    return int{PAT_OK};
  });
}

int pat_channel_send(pat_channel* channel, const void* bytes, size_t size, pat_buffer* const* buffers, size_t count,
                     int64_t timeout_ns) {
  if (channel == nullptr || (bytes == nullptr && size != 0) || (buffers == nullptr && count != 0)) {
    return invalid("pat_channel_send", "NULL channel, bytes or buffers");
  }
  return guarded("pat_channel_send", [&] {
    const auto* first = static_cast<const std::byte*>(bytes);
    pat::Message message;
    message.bytes.assign(first, first + size);
    message.buffers.reserve(count);
    for (size_t i = 0; i < count; ++i) {
      if (buffers[i] == nullptr) return invalid("pat_channel_send", "a NULL buffer");
      message.buffers.push_back(buffers[i]->buffer);
    }
    if (!channel->channel.send(message, timeout_of(timeout_ns), pat::Wait::ReturnOnSignal)) {
      return fail("pat_channel_send", pat::Errc::Timeout, "channel '" + channel->channel.name() + "' stayed full");
    }
    return int{PAT_OK};
  });
}

int pat_channel_receive(pat_channel* channel, pat_message** message, int64_t timeout_ns) {
  if (channel == nullptr || message == nullptr) return invalid("pat_channel_receive", "NULL channel or message");
  *message = nullptr;
  return guarded("pat_channel_receive", [&] {
    auto received = channel->channel.receive(timeout_of(timeout_ns), pat::Wait::ReturnOnSignal);
    if (!received) {
      return fail("pat_channel_receive", pat::Errc::Timeout, "nothing arrived on channel '" + channel->channel.name() + "'");
    }
    *message = new pat_message{std::move(*received)};
    return int{PAT_OK};
  });
}

long pat_channel_queued(const pat_channel* channel) {
  if (channel == nullptr) return invalid("pat_channel_queued", "NULL channel");
  long queued = 0;
  int status = guarded("pat_channel_queued", [&] {
    queued = static_cast<long>(channel->channel.queued());
    return int{PAT_OK};
  });
  return status == PAT_OK ? queued : status;
}

const void* pat_message_bytes(const pat_message* message, size_t* size) {
  if (size) *size = message ? message->message.bytes.size() : 0;
  return message ? message->message.bytes.data() : nullptr;
}

size_t pat_message_buffer_count(const pat_message* message) { return message ? message->message.buffers.size() : 0; }

pat_buffer* pat_message_buffer(const pat_message* message, size_t index) {
  if (message == nullptr || index >= message->message.buffers.size()) {
    invalid("pat_message_buffer", "no such buffer in the message");
    return nullptr;
  }
  return guarded_new<pat_buffer>("pat_message_buffer", [&] { return message->message.buffers[index]; });
}

pid_t pat_message_sender(const pat_message* message) { return message ? message->message.sender : 0; }

void pat_message_free(pat_message* message) { delete message; }

int pat_members(pat_member_info** members, size_t* count) {
  if (members == nullptr || count == nullptr) return invalid("pat_members", "NULL output");
  *members = nullptr;
  *count = 0;
  return guarded("pat_members", [&] {
    auto found = pat::members();
    auto* list = new pat_member_info[found.size()]();
    for (size_t i = 0; i < found.size(); ++i) {
      list[i].pid = found[i].pid;
      list[i].argc = static_cast<int>(found[i].argv.size());
      list[i].argv_truncated = found[i].argv_truncated ? 1 : 0;
      list[i].argv = new const char*[found[i].argv.size() + 1];
      for (size_t j = 0; j < found[i].argv.size(); ++j) list[i].argv[j] = ::strdup(found[i].argv[j].c_str());
      list[i].argv[found[i].argv.size()] = nullptr;
    }
    *members = list;
    *count = found.size();
    return int{PAT_OK};
  });
}

void pat_members_free(pat_member_info* members, size_t count) {
  if (members == nullptr) return;
  for (size_t i = 0; i < count; ++i) {
    for (int j = 0; j < members[i].argc; ++j) std::free(const_cast<char*>(members[i].argv[j]));
    delete[] members[i].argv;
  }
  delete[] members;
}

}  // extern "C"
