"""Executor messages over a Unix stream socket, for a caller that is not a
member of its workers' group (:mod:`pat._process_pool`): caller and workers
are then separate address spaces.

A frame is ``<length, kind, tag>`` and a body. A body carrying an object is
its pickle stream (:mod:`pat._wire`) plus a descriptor per out-of-band
buffer: small buffers (under ``INLINE_MAX``) follow inline in the frame;
larger ones are described by ``(address, length)`` in the sender's memory and
never pass through the socket: the caller copies them once, with
process_vm_readv (results: from the worker into fresh memory of its own) or
process_vm_writev (arguments: into memory the worker allocated and announced
with an ALLOC message). The caller makes both copies because it is the side
that may always read and write the other: a root caller keeps capabilities
its workers (members without any) do not have, and ptrace(2)'s access check
refuses a less privileged process access to a more privileged one.
"""

import mmap
import pickle
import struct

import _pat

from . import _wire

FRAME = struct.Struct("<IBQ")          # body length, kind, tag
BODY_HEAD = struct.Struct("<II")       # pickle stream length, buffer count
DESCRIPTOR = struct.Struct("<BQQ")     # placement, length, address in the sender
INLINE = 0
REMOTE = 1
# Buffers below this travel inside the frame: two small socket copies cost
# less than a round trip and a process_vm_* call.
INLINE_MAX = 64 * 1024


def frame(kind, tag, body=b""):
    return FRAME.pack(len(body), kind, tag) + body


def encode_object(kind, tag, obj):
    """(frame bytes, sources): the frame carrying ``obj``, and the objects
    whose bytes the frame only describes. The sender keeps the sources alive
    and unchanged until the other side has copied them."""
    pickled = _wire.dumps(obj)
    descriptors = []
    inline = []
    sources = []
    for source in pickled.buffers:
        # raw(): a flat byte view of C- or Fortran-contiguous memory.
        view = source.raw() if isinstance(source, pickle.PickleBuffer) else memoryview(source).cast("B")
        if view.nbytes < INLINE_MAX:
            descriptors.append(DESCRIPTOR.pack(INLINE, view.nbytes, 0))
            inline.append(view)
        else:
            address, length = _pat.address_of(view)
            descriptors.append(DESCRIPTOR.pack(REMOTE, length, address))
            sources.append(view)
    body = b"".join([BODY_HEAD.pack(len(pickled.data), len(pickled.buffers)), pickled.kinds, *descriptors,
                     pickled.data, *inline])
    return frame(kind, tag, body), sources


class Body:
    """A received body carrying an object. ``remote`` lists ``(index,
    address, length)`` of the buffers still to be copied; ``fill(index,
    view)`` supplies each; ``load()`` unpickles."""

    def __init__(self, body):
        body = memoryview(body)
        stream_length, count = BODY_HEAD.unpack_from(body)
        position = BODY_HEAD.size
        self._kinds = bytes(body[position:position + count])
        position += count
        descriptors = [DESCRIPTOR.unpack_from(body, position + i * DESCRIPTOR.size) for i in range(count)]
        position += count * DESCRIPTOR.size
        self._stream = body[position:position + stream_length]
        position += stream_length
        self._views = [None] * count
        self.remote = []
        for index, (placement, length, address) in enumerate(descriptors):
            if placement == INLINE:
                # A copy: the frame's bytes are reused for the next frame.
                self._views[index] = memoryview(bytearray(body[position:position + length]))
                position += length
            else:
                self.remote.append((index, address, length))

    def fill(self, index, view):
        self._views[index] = view

    def load(self):
        return _wire.loads(self._stream, self._kinds, self._views)


def fresh_memory(length):
    """Private anonymous memory for one received buffer, untouched until the
    copy writes it (so no page is touched twice)."""
    return memoryview(mmap.mmap(-1, length, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS))


class FrameReader:
    """Splits what a socket delivers into frames: (kind, tag, body bytes)."""

    def __init__(self):
        self._pending = bytearray()

    def feed(self, data):
        self._pending += data

    def frames(self):
        while len(self._pending) >= FRAME.size:
            length, kind, tag = FRAME.unpack_from(self._pending)
            end = FRAME.size + length
            if len(self._pending) < end:
                return
            body = bytes(self._pending[FRAME.size:end])
            del self._pending[:end]
            yield kind, tag, body

    def read_frame(self, sock):
        """The next frame, blocking; None at end of file."""
        while True:
            for item in self.frames():
                return item
            chunk = sock.recv(1 << 20)
            if not chunk:
                return None
            self.feed(chunk)
