"""pat.Channel, pat.buffer and the group's identity: the data plane of a pat
group for Python members (docs/python.md)."""

import collections
import os

import _pat

from . import _dataplane
from .errors import ChannelClosed

Member = collections.namedtuple("Member", ["pid", "argv"])
Member.__doc__ = "A member of the group: its pid and its argv (the first 1.5 KiB of it)."
Member.__module__ = "pat"

Buffer = _pat.Buffer


def in_group():
    """True when this process is a member of a pat group (started with
    ``patctl run``), i.e. when channels and group buffers work here."""
    return _pat.in_group()


def group():
    """The name of this process's group; raises pat.NotInGroup outside one."""
    return _pat.group_name()


def members():
    """The group's members running now, as :class:`Member` tuples, in no
    particular order. Raises pat.NotInGroup outside a group."""
    return [Member(pid, list(argv)) for pid, argv, _truncated in _pat.members()]


def buffer(nbytes, zero=True):
    """A new writable buffer of ``nbytes`` in the group's shared memory.

    It is at the same address in every member and usable as
    ``memoryview(b)`` or ``numpy.frombuffer(b, dtype)``. Sending an object
    that views it (through a pat.Channel or as a pat.Executor argument or
    result) sends a reference, never a copy. The memory is freed when the
    last holder in the group drops it; this process holds it while the
    Buffer or any view of it is alive. ``zero=False`` skips zero-filling."""
    return _dataplane.new_buffer(int(nbytes), zero)


def buffer_of(obj):
    """The pat.Buffer holding ``obj``'s bytes (any contiguous buffer: a numpy
    array, a memoryview...), or None when they are not in a group buffer this
    process holds: how to tell a zero-copy view of shared memory (a result
    of pat.Executor, a message from a pat.Channel) from a private copy.
    ``buffer_of(x).zero_copy`` says whether those bytes are a member's own
    pages rather than the group's arena."""
    address, nbytes = _pat.address_of(obj)
    found = _dataplane.registry.find(address, nbytes)
    return found[0] if found else None


class Channel:
    """A named channel of the group, carrying Python objects.

    ``Channel(name)`` attaches this member to the channel ``name``, creating
    it if needed with ``capacity`` (messages queued before ``send`` blocks),
    ``max_bytes`` (inline bytes per message) and ``max_buffers`` (buffers per
    message); later openers get the channel as it was created. ``role`` is
    'both' (default), 'send' or 'receive': a member that only sends should say
    so, so that receivers get PeerDied when every sender died.

    Any number of members may send and receive (multi-producer,
    multi-consumer); each message is received once. Objects are pickled with
    protocol 5; their large buffers travel by reference and arrive as views
    of shared memory (see docs/python.md for what is shared and what is
    copied, and for lifetimes).

    Example::

        jobs = pat.Channel("jobs")
        jobs.send({"frame": numpy.zeros((1080, 1920, 3), numpy.uint8)})
        # in another member
        frame = pat.Channel("jobs").recv()["frame"]   # a view, no copy
    """

    def __init__(self, name, role="both", *, capacity=64, max_bytes=4096, max_buffers=16):
        self._native = _pat.Channel(name, role, capacity, max_bytes, max_buffers)
        self._limits = self._native.limits
        self.name = name
        self.role = role

    def send(self, obj, timeout=None):
        """Pickles ``obj`` and queues it. Blocks while the channel is full;
        raises TimeoutError after ``timeout`` seconds, ChannelClosed if the
        channel is closed, PeerDied if it is full and every receiver died.

        Zero-copy buffers of this member stay valid for receivers after this
        member changes them: mutation after send is visible to them."""
        if not _dataplane.send(self._native, self._limits, obj, timeout):
            raise TimeoutError(f"channel '{self.name}' stayed full for {timeout} s")

    def recv(self, timeout=None):
        """The next object. Blocks until one arrives; raises TimeoutError
        after ``timeout`` seconds, ChannelClosed once the channel is closed
        and drained, PeerDied when it is empty and every sender died without
        closing it. Ctrl-C interrupts the wait (KeyboardInterrupt)."""
        return self.recv_message(timeout).load()

    def recv_message(self, timeout=None):
        """Like :meth:`recv`, but returns the message before unpickling it:
        ``.load()`` gives the object, ``.sender`` the sending member's pid."""
        _dataplane.exports.prune()
        message = _dataplane.receive(self._native, timeout)
        if message is None:
            raise TimeoutError(f"nothing arrived on channel '{self.name}' within {timeout} s")
        return message

    def send_raw(self, data, buffers=(), timeout=None):
        """Sends a raw message, as C and C++ members exchange them: ``data``
        (bytes, up to max_bytes) and a list of pat.Buffer references."""
        if not self._native.send(data, list(buffers), timeout):
            raise TimeoutError(f"channel '{self.name}' stayed full for {timeout} s")

    def recv_raw(self, timeout=None):
        """A raw message: ``(data, [pat.Buffer], sender_pid)``."""
        received = self._native.receive(timeout)
        if received is None:
            raise TimeoutError(f"nothing arrived on channel '{self.name}' within {timeout} s")
        for buffer in received[1]:
            _dataplane.registry.add(buffer)
        return received

    def close(self):
        """Closes the channel for every member: senders get ChannelClosed at
        once, receivers after the messages already queued."""
        self._native.close()

    def detach(self):
        """Detaches this member from the channel (also done when the Channel
        object is garbage collected). The channel lives on while any member
        has it open or messages are queued."""
        self._native.detach()

    @property
    def queued(self):
        """Messages waiting now."""
        return self._native.queued

    @property
    def closed(self):
        return self._native.closed

    @property
    def limits(self):
        """{'capacity', 'max_bytes', 'max_buffers'}, as the channel was created."""
        return dict(self._limits)

    def __iter__(self):
        """Receives until the channel is closed and drained."""
        while True:
            try:
                yield self.recv()
            except ChannelClosed:
                return

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.detach()

    def __repr__(self):
        state = "detached" if not self._native.attached else f"{self._native.queued} queued"
        return f"<pat.Channel {self.name!r} role={self.role} {state} pid={os.getpid()}>"

