"""Pickled objects over a group's channels, their buffers by reference.

Used by ``pat.Channel`` and by ``pat.Executor`` when its caller is a member.
One message carries:

- inline (the channel's ``max_bytes``): a fixed header, one ``(offset,
  length)`` range and one kind byte per out-of-band buffer, then the pickle
  stream — or, when the stream does not fit, nothing more: the stream then
  travels in an arena buffer of its own, the message's first buffer;
- buffers: one group buffer per out-of-band buffer (several ranges may name
  the same buffer).

Lifetimes, in the sending member:

- An out-of-band buffer that already lies inside a group buffer this member
  holds (one it allocated with ``pat.buffer``, received, or shared before)
  is sent as that buffer: no copy, no new pin.
- Otherwise ``pat.Buffer.share`` makes one: without a copy when the bytes
  are at least 64 KiB of this member's own mapped memory (numpy's large
  arrays are), else a copy in the arena.
- A buffer shared without a copy is this member's memory, so the object
  owning it must stay alive, unchanged in size, while any other holder has
  the buffer: the :class:`ExportTable` keeps ``(buffer, object)`` until the
  buffer's group-wide ``references()`` is back to 1 (this member alone). It
  is pruned on every send, and, in pat's own loops, while idle. At
  interpreter exit whatever is still held elsewhere is deliberately leaked:
  its pages stay pinned for the holders (libpat unmaps them when the last
  holder drops them) instead of being freed and reused under them.
"""

import bisect
import collections
import struct
import threading
import weakref

import _pat

from . import _exit, _wire

# The inline header: format version, flags, buffer count, then two fields
# the user of the message defines (pat.Executor: message type and task id).
_HEADER = struct.Struct("<BBHIQ")
_RANGE = struct.Struct("<QQ")
_VERSION = 1
_FLAG_STREAM_IN_BUFFER = 1
# The stream names no persistent id (pat._wire.Pickled.plain): the receiver
# may use plain pickle.loads. A flag for "plain" rather than for "not plain",
# so that a message from a sender that does not set it is read the full way.
_FLAG_PLAIN_PICKLE = 2


class BufferRegistry:
    """The group buffers alive in this process, found by address, so that a
    view into one of them is sent as that buffer instead of shared again.
    Holds them weakly: an entry goes when its pat.Buffer object does."""

    def __init__(self):
        self._lock = threading.Lock()
        self._starts = []    # sorted start addresses
        self._entries = []   # (start, end, key, weakref to pat.Buffer), parallel to _starts
        self._largest = 0    # the longest buffer seen: bounds the backwards scan in find()

    def add(self, buffer):
        start = buffer.address
        end = start + buffer.size
        key = id(buffer)

        def forget(_reference, key=key, start=start):
            with self._lock:
                i = bisect.bisect_left(self._starts, start)
                while i < len(self._starts) and self._starts[i] == start:
                    if self._entries[i][2] == key:
                        del self._starts[i], self._entries[i]
                        return
                    i += 1

        with self._lock:
            i = bisect.bisect_right(self._starts, start)
            self._starts.insert(i, start)
            self._entries.insert(i, (start, end, key, weakref.ref(buffer, forget)))
            self._largest = max(self._largest, buffer.size)

    def find(self, address, nbytes):
        """(buffer, offset) of a live buffer containing [address, address +
        nbytes), or None."""
        with self._lock:
            i = bisect.bisect_right(self._starts, address)
            while i > 0:
                i -= 1
                start, end, _, reference = self._entries[i]
                if address - start > self._largest:
                    break
                if address + nbytes <= end:
                    buffer = reference()
                    if buffer is not None:
                        return buffer, address - start
        return None


class ExportTable:
    """Objects whose own pages other members are reading: each is kept alive
    with its zero-copy buffer until nobody else holds the buffer."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries = []  # (pat.Buffer, source object)
        self._handles = collections.Counter()  # handle -> entries
        self._exiting = False

    def add(self, buffer, source):
        with self._lock:
            self._entries.append((buffer, source))
            self._handles[buffer.handle] += 1

    def made_here(self, buffer):
        """Whether ``buffer`` is one of this member's own zero-copy buffers
        still in the table."""
        return self._handles.get(buffer.handle, 0) > 0

    def __len__(self):
        return len(self._entries)

    def prune(self):
        """Drops every entry that no other holder needs any more."""
        if not self._entries:
            return
        with self._lock:
            if self._exiting:
                return
            kept = []
            for entry in self._entries:
                if entry[0].references() > 1:
                    kept.append(entry)
                else:
                    handle = entry[0].handle
                    self._handles[handle] -= 1
                    if self._handles[handle] <= 0:
                        del self._handles[handle]
            self._entries = kept

    def leak_at_exit(self):
        """At interpreter exit: entries still held elsewhere must never be
        freed (the allocator would reuse pages others are reading), so they
        are leaked on purpose; the rest go now."""
        self.prune()
        with self._lock:
            self._exiting = True
            _leaked.extend(self._entries)
            self._entries = []


# Never cleared: at exit, objects referenced from here are never deallocated
# (CPython does not free what is still referenced when it finalizes).
_leaked = []

registry = BufferRegistry()
exports = ExportTable()
_exit.leak_at_exit(exports)  # the order of exit work: pat._exit


def new_buffer(size, zero=True):
    """A new arena buffer, registered."""
    buffer = _pat.Buffer.allocate(size, zero)
    registry.add(buffer)
    return buffer


def group_buffer_for(source):
    """(buffer, offset, length): a group buffer holding ``source``'s bytes,
    by reference whenever possible (see the module's docstring)."""
    address, nbytes = _pat.address_of(source)
    found = registry.find(address, nbytes)
    if found is not None:
        buffer, offset = found
        if exports.made_here(buffer):
            # Our own pages again: whatever kept them alive so far may be
            # dropped by a concurrent prune, so `source`, which owns (a view
            # of) the same memory, keeps them alive from now on.
            exports.add(buffer, source)
        return buffer, offset, nbytes
    buffer = _pat.Buffer.share(source)
    registry.add(buffer)
    if buffer.zero_copy:
        exports.add(buffer, source)
    return buffer, 0, nbytes


class OutgoingMessage:
    """A pickled object as one channel message: ``data`` (inline bytes) and
    ``buffers`` (group buffers)."""

    __slots__ = ("data", "buffers")

    def __init__(self, obj, limits, kind=0, tag=0):
        pickled = _wire.dumps(obj)
        if not pickled.buffers and _HEADER.size + len(pickled.data) <= limits["max_bytes"]:
            # The usual small message (a task, a result): the header and the
            # stream, and nothing else to decide.
            flags = _FLAG_PLAIN_PICKLE if pickled.plain else 0
            self.data = _HEADER.pack(_VERSION, flags, 0, kind, tag) + pickled.data
            self.buffers = []
            return
        if len(pickled.buffers) > limits["max_buffers"] - 1:
            # More buffers than one message takes (one slot is kept for a
            # stream that does not fit inline): everything in band instead.
            pickled = _wire.dumps(obj, out_of_band=False)
        ranges = []
        buffers = []
        for source in pickled.buffers:
            buffer, offset, length = group_buffer_for(source)
            buffers.append(buffer)
            ranges.append(_RANGE.pack(offset, length))
        flags = _FLAG_PLAIN_PICKLE if pickled.plain else 0
        head = b"".join([_HEADER.pack(_VERSION, flags, len(pickled.buffers), kind, tag), *ranges, pickled.kinds])
        if len(head) + len(pickled.data) > limits["max_bytes"]:
            flags |= _FLAG_STREAM_IN_BUFFER
            stream = new_buffer(len(pickled.data), zero=False)
            memoryview(stream)[:] = pickled.data
            buffers.insert(0, stream)
            self.data = _HEADER.pack(_VERSION, flags, len(pickled.buffers), kind, tag) + head[_HEADER.size:]
        else:
            self.data = head + pickled.data
        self.buffers = buffers


class IncomingMessage:
    """A received message: ``kind`` and ``tag`` as sent, ``sender`` (pid);
    ``load()`` unpickles the object, on views of the received buffers."""

    __slots__ = ("kind", "tag", "sender", "_stream", "_kinds", "_views", "_plain")

    def __init__(self, data, buffers, sender):
        version, flags, count, self.kind, self.tag = _HEADER.unpack_from(data)
        if version != _VERSION:
            raise ValueError(f"a pat message of format {version}, not {_VERSION}: another pat version sent it")
        self._plain = bool(flags & _FLAG_PLAIN_PICKLE)
        self.sender = sender
        if not buffers:  # the usual small message: everything inline
            self._kinds = b""
            self._views = []
            self._stream = memoryview(data)[_HEADER.size:]
            return
        for buffer in buffers:
            registry.add(buffer)
        position = _HEADER.size
        views = []
        first = 1 if flags & _FLAG_STREAM_IN_BUFFER else 0
        for i in range(count):
            offset, length = _RANGE.unpack_from(data, position)
            position += _RANGE.size
            views.append(memoryview(buffers[first + i])[offset:offset + length])
        self._kinds = data[position:position + count]
        position += count
        self._stream = memoryview(buffers[0]) if first else memoryview(data)[position:]
        self._views = views

    def load(self):
        return _wire.loads(self._stream, self._kinds, self._views, self._plain)


def send(channel, limits, obj, timeout=None, kind=0, tag=0):
    """Pickles ``obj`` and queues it on ``channel`` (a _pat.Channel whose
    ``limits`` are given); False if ``timeout`` passed with the channel full."""
    message = OutgoingMessage(obj, limits, kind, tag)
    sent = channel.send(message.data, message.buffers, timeout)
    # After the send, not before: freeing a large export (munmap, unpin)
    # takes a while, and the message should not wait for it.
    exports.prune()
    return sent


def receive(channel, timeout=None, spin=0.0):
    """The next message on ``channel`` as an :class:`IncomingMessage`, or
    None if ``timeout`` passed first. ``spin``: seconds to poll before the
    wait may sleep (see _pat.Channel.receive)."""
    received = channel.receive(timeout, spin)
    if received is None:
        return None
    return IncomingMessage(*received)
