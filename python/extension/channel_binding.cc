#include "python/extension/channel_binding.h"

#include "python/extension/contiguous_bytes.h"
#include "python/extension/without_gil.h"
#include "python/extension/interruptible_wait.h"

#include "libpat/src/polling_policy.h"
#include "pat/pat.hpp"

#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>

namespace py = pybind11;

namespace pat::python {

namespace {

pat::Role role_named(const std::string& role) {
  if (role == "send") return pat::Role::Send;
  if (role == "receive") return pat::Role::Receive;
  if (role == "both") return pat::Role::Both;
  throw py::value_error("role must be 'send', 'receive' or 'both', not '" + role + "'");
}

// The attachment is shared with every call in progress: detach() (or the
// Python object's end) only drops this object's share, so a thread blocked
// in receive() with the GIL released keeps the channel it is waiting on.
// Receives with the waiting done by polling, for up to `seconds`, before a
// wait that may sleep. libpat's receive spins 20 µs without holding the
// channel's lock before it sleeps on the futex; a caller that expects its
// answer later than that, but soon (a pat.Executor round trip), spins here
// for longer, because waking a sleeping thread costs tens to hundreds of
// microseconds on a virtual machine. Both polls happen only while the peer
// can run meanwhile (libpat/src/polling_policy.h: on a machine whose CPUs
// are all taken, polling makes a round trip several times slower). The
// polling is libpat's own, in slices of kSpinSlice: a loop on queued() would
// take the channel's lock so often that a sender could not get it.
constexpr std::chrono::microseconds kSpinSlice{20};

// A send with room in the channel, or a receive with a message queued, is
// done first with the GIL held (a zero timeout: libpat returns before any
// wait or spin), and the GIL is released only to wait. Releasing it for a
// call of a few microseconds invites any other thread that wants it to take
// it, and on a loaded machine getting it back took milliseconds: cProfile
// showed 2-3 ms per send in pat.dask's scheduler loop while pat's reader
// thread held it. libpat never needs the GIL, so holding it across its
// short channel lock cannot deadlock.
constexpr std::chrono::nanoseconds kNow{0};

std::optional<pat::Message> receive_spinning(pat::Channel& channel, std::chrono::nanoseconds spin) {
  auto until = std::chrono::steady_clock::now() + spin;
  for (;;) {
    auto left = until - std::chrono::steady_clock::now();
    if (left <= std::chrono::nanoseconds(0)) return std::nullopt;
    auto message = channel.receive(std::min<std::chrono::nanoseconds>(left, kSpinSlice), pat::Wait::ReturnOnSignal);
    if (message) return message;
  }
}

class ChannelAttachment {
 public:
  ChannelAttachment(const std::string& name, const std::string& role, std::uint32_t capacity,
                    std::uint32_t max_bytes, std::uint32_t max_buffers) {
    pat::ChannelOptions options{capacity, max_bytes, max_buffers};
    pat::Role parsed = role_named(role);
    channel_ = without_gil([&] { return std::make_shared<pat::Channel>(pat::Channel::open(name, parsed, options)); });
  }

  // Queues (data, buffers); False when `timeout` passed with the channel full.
  bool send(py::handle data, const std::vector<pat::Buffer>& buffers, TimeoutSeconds timeout) {
    auto channel = attached();
    pat::Message message;
    {
      ContiguousBytes bytes(data, ContiguousBytes::Access::ReadOnly);
      message.bytes.assign(bytes.data(), bytes.data() + bytes.size());
    }
    message.buffers = buffers;
    if (channel->send(message, kNow, pat::Wait::ReturnOnSignal)) return true;  // room: see kNow
    return wait_interruptibly(timeout, [&](auto time_left) {
      return channel->send(message, time_left, pat::Wait::ReturnOnSignal);
    });
  }

  // (bytes, [Buffer], sender pid), or None when `timeout` passed first.
  py::object receive(TimeoutSeconds timeout, double spin_seconds) {
    auto channel = attached();
    auto spin = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(
        std::clamp(spin_seconds, 0.0, 1.0)));
    auto message = channel->receive(kNow, pat::Wait::ReturnOnSignal);  // already queued: see kNow
    if (!message) message = wait_interruptibly(timeout, [&](std::optional<std::chrono::nanoseconds> time_left) {
      if (spin.count() > 0 && pat::dataplane::polling_pays()) {
        auto started = std::chrono::steady_clock::now();
        auto spun = receive_spinning(*channel, time_left ? std::min(spin, *time_left) : spin);
        spin = std::chrono::nanoseconds(0);  // once per call, not again after a signal
        if (spun) return spun;
        if (time_left) {
          auto spent = std::chrono::steady_clock::now() - started;
          time_left = std::max(std::chrono::nanoseconds(0), *time_left - spent);
        }
      }
      return channel->receive(time_left, pat::Wait::ReturnOnSignal);
    });
    if (!message) return py::none();
    py::bytes data(reinterpret_cast<const char*>(message->bytes.data()), message->bytes.size());
    py::list buffers;
    for (auto& buffer : message->buffers) buffers.append(py::cast(std::move(buffer)));
    return py::make_tuple(std::move(data), std::move(buffers), message->sender);
  }

  void close() { attached()->close(); }
  void detach() { channel_.reset(); }
  bool attached_now() const { return channel_ != nullptr; }
  std::string name() const { return attached()->name(); }
  std::size_t queued() const { return attached()->queued(); }
  bool closed() const { return attached()->closed(); }
  py::dict limits() const {
    auto options = attached()->limits();
    py::dict out;
    out["capacity"] = options.capacity;
    out["max_bytes"] = options.max_bytes;
    out["max_buffers"] = options.max_buffers;
    return out;
  }

 private:
  std::shared_ptr<pat::Channel> attached() const {
    if (!channel_) throw py::value_error("the channel was detached from this member");
    return channel_;
  }

  std::shared_ptr<pat::Channel> channel_;
};

}  // namespace

void define_channel(py::module_& module) {
  py::class_<ChannelAttachment>(module, "Channel", R"doc(
Low-level attachment to a named channel of the group: raw messages of a few
inline bytes plus pat.Buffer references. Use pat.Channel for Python objects.
)doc")
      .def(py::init<const std::string&, const std::string&, std::uint32_t, std::uint32_t, std::uint32_t>(),
           py::arg("name"), py::arg("role") = "both", py::arg("capacity") = 64, py::arg("max_bytes") = 4096,
           py::arg("max_buffers") = 16,
           "Attaches to channel `name` (made with these limits if it does not exist) as 'send', 'receive' or "
           "'both'.")
      .def("send", &ChannelAttachment::send, py::arg("data"), py::arg("buffers") = std::vector<pat::Buffer>{},
           py::arg("timeout") = py::none(),
           "Queues a message; blocks while the channel is full. False if `timeout` seconds passed first.")
      .def("receive", &ChannelAttachment::receive, py::arg("timeout") = py::none(), py::arg("spin") = 0.0,
           "The next message as (bytes, [Buffer], sender_pid), or None if `timeout` seconds passed first. "
           "With `spin` (seconds), polls that long before the wait may sleep.")
      .def("close", &ChannelAttachment::close, "Closes the channel for every member.")
      .def("detach", &ChannelAttachment::detach, "Detaches this member (calls in progress finish first).")
      .def_property_readonly("attached", &ChannelAttachment::attached_now)
      .def_property_readonly("name", &ChannelAttachment::name)
      .def_property_readonly("queued", &ChannelAttachment::queued, "Messages waiting now.")
      .def_property_readonly("closed", &ChannelAttachment::closed)
      .def_property_readonly("limits", &ChannelAttachment::limits,
                             "{'capacity', 'max_bytes', 'max_buffers'} as the channel was created.");
}

}  // namespace pat::python
