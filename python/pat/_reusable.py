"""One pat.Executor kept between the calls of a library that fans out work
(pat.joblib, pat.dask), as loky keeps its reusable executor: starting a
worker is a new interpreter, too slow to pay on every joblib.Parallel or
dask.compute call.

The executor is replaced when a call asks for another number of workers or
another worker environment, and when it broke (a worker died). It is shut
down like any other executor at interpreter exit (pat._exit).
"""

import threading


class ReusableExecutor:
    """Hands out one shared pat.Executor per (max_workers, environment)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._executor = None
        self._key = None

    def get(self, max_workers, environment=None):
        """A running pat.Executor with ``max_workers`` workers whose
        environment has ``environment`` (a dict) on top of the caller's."""
        from .executor import Executor
        key = (max_workers, tuple(sorted((environment or {}).items())))
        with self._lock:
            executor = self._executor
            if executor is not None and self._key == key and usable(executor):
                return executor
            self._executor = Executor(max_workers)
            self._executor._worker_environment = dict(environment or {})
            self._key = key
            new = self._executor
        if executor is not None:
            executor.shutdown(wait=False)  # its workers end after what they run
        return new

    def current(self):
        """The executor handed out last (None before the first)."""
        with self._lock:
            return self._executor


def usable(executor):
    """Whether ``executor`` still accepts tasks."""
    return not executor._broken and not executor._shutdown
