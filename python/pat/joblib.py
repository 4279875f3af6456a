"""joblib's "pat" backend: ``joblib.Parallel`` (and so scikit-learn's
``n_jobs``) running on pat.Executor workers.

    import joblib, pat
    with joblib.parallel_backend("pat", n_jobs=2):
        results = joblib.Parallel()(joblib.delayed(f)(x) for x in data)

``import pat`` registers the backend with joblib: at once if joblib is
imported already, otherwise right after joblib's import (pat._after_import),
so pat never imports joblib itself. :func:`register` does it explicitly.

What it does, as joblib's loky backend does it:

- batches of calls (joblib's BatchedCalls, auto-batched) are pat.Executor
  tasks; numpy arguments and results travel with pickle protocol 5 out of
  band, by reference when the caller is a member of a group;
- functions plain pickle cannot send by reference (lambdas, closures,
  functions of ``__main__``) travel by value with cloudpickle
  (pat._by_value), their arrays still out of band;
- one executor is kept between Parallel calls (pat._reusable) and replaced
  when n_jobs changes or it broke; its workers get OMP_NUM_THREADS and the
  other thread-pool limits loky sets (cpu_count // n_jobs), so that n_jobs
  workers do not each start a full set of BLAS threads;
- ``n_jobs=1`` runs in the caller (joblib's sequential backend); negative
  n_jobs count from the CPU count (-1: all);
- an exception in a call cancels the batches not yet started; the running
  ones finish;
- ``require="sharedmem"`` (a call that must see the caller's Python
  objects) falls back to joblib's threads, as for loky: members share
  memory, not Python objects.
"""

import functools
import threading
import weakref

from ._by_value import ByValue, needs_value
from ._reusable import ReusableExecutor

NAME = "pat"

_executors = ReusableExecutor()


def register():
    """Registers the "pat" backend with joblib (``import pat`` already
    does, lazily); returns its name."""
    import joblib
    joblib.register_parallel_backend(NAME, _backend_class())
    return NAME


@functools.lru_cache(maxsize=None)
def _backend_class():
    """PatBackend, defined once joblib is there (its base classes are
    joblib's)."""
    from concurrent.futures import TimeoutError as FuturesTimeout
    from multiprocessing import TimeoutError as PoolTimeout

    from joblib._parallel_backends import (AutoBatchingMixin, FallbackToBackend, ParallelBackendBase,
                                           SafeFunction, SequentialBackend)
    from joblib.parallel import cpu_count

    class PatBackend(AutoBatchingMixin, ParallelBackendBase):
        """joblib's backend running batches on pat.Executor workers."""

        supports_timeout = True
        supports_inner_max_num_threads = True
        uses_threads = False
        supports_sharedmem = False

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._executor = None
            self._lock = threading.Lock()
            self._futures = weakref.WeakSet()  # this Parallel call's, for abort_everything
            self.parallel = None

        def effective_n_jobs(self, n_jobs):
            if n_jobs == 0:
                raise ValueError("n_jobs == 0 in Parallel has no meaning")
            if n_jobs is None:
                return 1
            if n_jobs < 0:
                return max(cpu_count() + 1 + n_jobs, 1)
            return n_jobs

        def configure(self, n_jobs=1, parallel=None, prefer=None, require=None, **backend_args):
            n_jobs = self.effective_n_jobs(n_jobs)
            if n_jobs == 1:
                raise FallbackToBackend(SequentialBackend(nesting_level=self.nesting_level))
            self._executor = _executors.get(n_jobs, self._prepare_worker_env(n_jobs=n_jobs))
            self.parallel = parallel
            return n_jobs

        def apply_async(self, func, callback=None):
            _send_functions_by_value(func)
            future = self._executor.submit(SafeFunction(func))
            future.get = functools.partial(_result, future)
            with self._lock:
                self._futures.add(future)
            if callback is not None:
                future.add_done_callback(callback)
            return future

        def abort_everything(self, ensure_ready=True):
            """A call raised: the batches no worker has started are
            cancelled (the executor stays, for the next Parallel call)."""
            with self._lock:
                futures = list(self._futures)
                self._futures = weakref.WeakSet()
            for future in futures:
                future.cancel()
            if ensure_ready and self.parallel is not None:
                self.configure(n_jobs=self.parallel.n_jobs, parallel=self.parallel)

        def terminate(self):
            # Keep the executor: the next Parallel call reuses its workers.
            with self._lock:
                self._futures = weakref.WeakSet()
            self.reset_batch_stats()

    def _result(future, timeout=None):
        """AsyncResult.get's behaviour, which joblib expects of a job."""
        try:
            return future.result(timeout=timeout)
        except FuturesTimeout as error:
            raise PoolTimeout from error

    return PatBackend


def _send_functions_by_value(batch):
    """Swaps the functions of a BatchedCalls that plain pickle cannot send
    for their cloudpickled copies."""
    items = getattr(batch, "items", None)
    if not items:
        return
    for i, (function, args, kwargs) in enumerate(items):
        if needs_value(function):
            items[i] = (_ByValueCall(function), args, kwargs)


class _ByValueCall:
    """A function sent by value; called in the worker as itself."""

    __slots__ = ("function",)

    def __init__(self, function):
        self.function = function

    def __call__(self, *args, **kwargs):
        return self.function(*args, **kwargs)

    def __reduce__(self):
        return _ByValueCall, (ByValue(self.function),)
