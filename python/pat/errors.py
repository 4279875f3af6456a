"""pat's exceptions.

Raised by the data plane (libpat, through the ``_pat`` extension):

- :class:`Error`: base class of every pat error.
- :class:`NotInGroup`: this process is not a member of a pat group.
- :class:`ChannelClosed`: the channel was closed.
- :class:`PeerDied`: every member on the other side of a channel ended
  without closing it.
- :class:`TooLarge` (also a ValueError), :class:`OutOfMemory` (also a
  MemoryError), :class:`LimitReached`, :class:`ArenaDamaged`,
  :class:`InvalidArgument` (also a ValueError).

Timeouts raise the built-in ``TimeoutError``.

Raised by :class:`pat.Executor`:

- :class:`WorkerDied`: the worker running a task ended (killed, crashed,
  exited) before it answered. Also a ``concurrent.futures.BrokenExecutor``,
  as ProcessPoolExecutor's BrokenProcessPool is, but only the futures that
  worker held fail: the executor starts a replacement and carries on.
- :class:`RemoteTraceback`: attached as ``__cause__`` of an exception
  re-raised from a worker; its text is the worker's traceback.
"""

from concurrent.futures import BrokenExecutor

from _pat import (ArenaDamaged, ChannelClosed, Error, InvalidArgument, LimitReached, NotInGroup, OutOfMemory,
                  PeerDied, TooLarge)

__all__ = ["Error", "NotInGroup", "ChannelClosed", "PeerDied", "TooLarge", "OutOfMemory", "LimitReached",
           "ArenaDamaged", "InvalidArgument", "WorkerDied", "RemoteTraceback", "BrokenExecutor"]


class WorkerDied(Error, BrokenExecutor):
    """A pat.Executor worker ended while it held this task.

    Attributes: ``pid``; ``exit_code`` or ``signal`` when the group's host
    reported how it ended (None otherwise)."""

    def __init__(self, message, pid=None, exit_code=None, signal=None):
        super().__init__(message)
        self.pid = pid
        self.exit_code = exit_code
        self.signal = signal

    def __reduce__(self):
        return (type(self), (str(self), self.pid, self.exit_code, self.signal))


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker, as text; set as the
    ``__cause__`` of the re-raised exception, so both tracebacks print."""

    def __init__(self, text):
        super().__init__(text)
        self.text = text

    def __str__(self):
        return self.text


for _class in (WorkerDied, RemoteTraceback):
    _class.__module__ = "pat"
del _class
