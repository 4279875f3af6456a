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

Raised by :class:`pat.Executor` (defined in pat._executor_errors, loaded
when first named: they need concurrent.futures.process, which a worker or a
plain channel user should not pay for at start):

- :class:`WorkerDied`: the worker running a task ended (killed, crashed,
  exited) before it answered. A ``concurrent.futures.process.
  BrokenProcessPool``: as with ProcessPoolExecutor, the executor is broken
  from then on.
- :class:`RemoteTraceback`: ``concurrent.futures.process._RemoteTraceback``
  itself, attached as ``__cause__`` of an exception re-raised from a
  worker; its ``tb`` is the worker's traceback.
"""

from _pat import (ArenaDamaged, ChannelClosed, Error, InvalidArgument, LimitReached, NotInGroup, OutOfMemory,
                  PeerDied, TooLarge)

__all__ = ["Error", "NotInGroup", "ChannelClosed", "PeerDied", "TooLarge", "OutOfMemory", "LimitReached",
           "ArenaDamaged", "InvalidArgument", "WorkerDied", "RemoteTraceback", "BrokenExecutor",
           "BrokenProcessPool"]

_EXECUTOR_ERRORS = ("WorkerDied", "RemoteTraceback", "BrokenExecutor", "BrokenProcessPool")


def __getattr__(name):
    if name in _EXECUTOR_ERRORS:
        from . import _executor_errors
        return getattr(_executor_errors, name)
    raise AttributeError(f"module 'pat.errors' has no attribute {name!r}")
