"""pat.Executor's exceptions, those of ProcessPoolExecutor where they are
the same thing, so that ``except BrokenProcessPool`` and a check of a
cause's type work unchanged on a program moved to pat (pat.errors names
them)."""

from concurrent.futures import BrokenExecutor
from concurrent.futures.process import BrokenProcessPool, _RemoteTraceback

from _pat import Error

# The very class ProcessPoolExecutor attaches as __cause__ ("tb": the text).
RemoteTraceback = _RemoteTraceback


class WorkerDied(Error, BrokenProcessPool):
    """A pat.Executor worker ended while it held this task; the executor is
    broken from then on (every other task fails with BrokenProcessPool), as
    ProcessPoolExecutor is when one of its processes dies.

    Attributes: ``pid``; ``exit_code`` or ``signal`` as the group's host
    reported how it ended (None when unknown)."""

    def __init__(self, message, pid=None, exit_code=None, signal=None):
        super().__init__(message)
        self.pid = pid
        self.exit_code = exit_code
        self.signal = signal

    def __reduce__(self):
        return (type(self), (str(self), self.pid, self.exit_code, self.signal))


WorkerDied.__module__ = "pat"

__all__ = ["WorkerDied", "RemoteTraceback", "BrokenExecutor", "BrokenProcessPool"]
