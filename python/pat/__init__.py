"""pat: the Python side of pat ("processes as threads").

Python programs running as members of a pat group (``patctl run --group G
pat-python script.py``) share one address space with the other members.
This package turns that into data passed by reference:

- :func:`buffer`: a writable buffer in the group's shared memory, usable as
  a memoryview or with ``numpy.frombuffer``, reference-counted across the
  group and outliving the member that made it;
- :class:`Channel`: a named multi-producer, multi-consumer channel carrying
  Python objects (pickle protocol 5), whose large buffers travel as
  references and arrive as zero-copy views;
- :class:`Executor`: a ``concurrent.futures.Executor`` whose workers are
  other members of the caller's group (started through patd), passing
  arguments and results the same way. From a process that is not a member,
  it makes a group of its own and copies each buffer once;
- :func:`join`: moves the running interpreter into a group (its own
  ``$PAT_GROUP``, a named one or a new one), after which it shares memory
  with the group's members like one started there;
- :func:`group`, :func:`members`, :func:`in_group`; :func:`buffer_of` tells
  whether an object's bytes are a view of a group buffer;
- for the libraries that fan out work: joblib's "pat" backend
  (``joblib.parallel_backend("pat")``, registered by ``import pat``, see
  :mod:`pat.joblib`) and a Dask scheduler (``dask.compute(...,
  scheduler="pat")``, registered the same way, or ``pat.dask.get``,
  :mod:`pat.dask`).

docs/python.md has examples, the zero-copy rules and the limits. The
package is found by ``pat-python`` in ``<prefix>/lib/pat/python`` without
any environment variable.
"""

from ._after_import import when_imported as _when_imported
from .channel import Buffer, Channel, Member, buffer, buffer_of, group, in_group, members
from .errors import (ArenaDamaged, ChannelClosed, Error, InvalidArgument, LimitReached, NotInGroup, OutOfMemory,
                     PeerDied, TooLarge)

__version__ = "0.1.0"

__all__ = [
    "Executor", "join", "JoinRefused", "Channel", "Buffer", "Member", "buffer", "buffer_of", "group", "members", "in_group",
    "Error", "NotInGroup", "ChannelClosed", "PeerDied", "TooLarge", "OutOfMemory", "LimitReached",
    "ArenaDamaged", "InvalidArgument", "WorkerDied", "RemoteTraceback",
]


def _registration(submodule):
    """What registers pat with a library once it is imported: calls
    pat.<submodule>.register()."""
    def register(_library):
        import importlib
        importlib.import_module(f"{__name__}.{submodule}").register()
    return register


# joblib.parallel_backend("pat") and Dask's scheduler="pat" work after
# `import pat`, without pat importing joblib or Dask (pat._after_import).
_when_imported("joblib", _registration("joblib"))
_when_imported("dask", _registration("dask"))


def __getattr__(name):
    # Executor pulls in concurrent.futures, threading, socket and json, and
    # its exceptions concurrent.futures.process: only when asked for, so that
    # a worker or a plain channel user starts fast.
    if name == "Executor":
        from .executor import Executor
        return Executor
    if name in ("join", "JoinRefused"):  # pulls in the patd client (socket, json)
        from . import _join
        return getattr(_join, name)
    if name in ("WorkerDied", "RemoteTraceback"):
        from . import _executor_errors
        return getattr(_executor_errors, name)
    if name in ("dask", "joblib"):  # pat.dask.get without `import pat.dask`
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'pat' has no attribute {name!r}")
