"""pat.Executor: a concurrent.futures.Executor whose workers are members of
a pat group.

The executor keeps its tasks itself and hands one to a worker only when that
worker is idle, as ProcessPoolExecutor keeps all but a few in its own queue:
a future stays cancellable until a worker takes it, a worker that dies takes
down only the task it was running, and the executor knows which one that
was. A replacement worker is started in its place.

Where the workers run and how data moves depend on the caller:

- The caller is a member of a group (started with ``patctl run``): workers
  join that group, and tasks, results and their buffers travel through group
  channels by reference (:mod:`pat._member_pool`).
- It is not: the executor starts its workers in a new ephemeral group of its
  own and talks to each over a socket; buffers are copied once, by the
  caller, with process_vm_readv/writev (:mod:`pat._process_pool`).

The executor's state changes under one lock, from three kinds of threads:
callers of submit/shutdown, and the pool's own threads reporting results,
workers that became ready, and workers that died. Futures are completed
outside the lock, since their callbacks may call back into the executor.
"""

import atexit
import collections
import functools
import itertools
import os
import threading
import time
import weakref
from concurrent import futures

from . import _protocol
from .errors import BrokenExecutor, RemoteTraceback, WorkerDied

# A worker that ends before it is ready this many times in a row means the
# workers cannot start at all (a broken environment, an import error):
# rather than restart them forever, the executor breaks.
MAX_FAILED_STARTS = 3


class _Future(futures.Future):
    """A Future whose result() and exception(), when it is not done yet,
    let the pool deliver results in the waiting thread itself (see
    MemberPool.wait_for): one thread switch less per task. Everything else,
    wait() and as_completed() included, is concurrent.futures.Future's."""

    def __init__(self, wait_for=None):
        super().__init__()
        self._wait_for = wait_for

    def result(self, timeout=None):
        return super().result(self._help(timeout))

    def exception(self, timeout=None):
        return super().exception(self._help(timeout))

    def _help(self, timeout):
        """Waits through the pool; the time left of ``timeout``."""
        if self._wait_for is None or self.done():
            return timeout
        start = time.monotonic()
        self._wait_for(self, timeout)
        return None if timeout is None else max(0.0, timeout - (time.monotonic() - start))


class _Task:
    __slots__ = ("id", "future", "fn", "args", "kwargs", "worker")

    def __init__(self, task_id, future, fn, args, kwargs):
        self.id = task_id
        self.future = future
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.worker = None

    def call(self):
        """What the worker unpickles and runs: (fn, args, kwargs)."""
        return self.fn, self.args, self.kwargs


class Worker:
    """What the executor knows of one worker; the pool keeps its own state
    for it in ``link``."""

    __slots__ = ("number", "pid", "ready", "alive", "task", "link")

    def __init__(self, number):
        self.number = number
        self.pid = None
        self.ready = False
        self.alive = True
        self.task = None
        self.link = None

    def __repr__(self):
        return f"<pat.Executor worker {self.number} pid={self.pid}>"


_live_executors = weakref.WeakSet()


def _shut_down_at_exit():
    # Like ProcessPoolExecutor: running and queued work finishes first.
    for executor in list(_live_executors):
        executor.shutdown(wait=True)


atexit.register(_shut_down_at_exit)


class Executor(futures.Executor):
    """A ``concurrent.futures.Executor`` running calls in ``max_workers``
    worker members of a pat group (default: the CPUs this process may use).

    Use it as ProcessPoolExecutor: ``submit``, ``map`` (with ``chunksize``
    and ``timeout``), ``shutdown(wait, cancel_futures)``, as a context
    manager; its futures work with ``concurrent.futures.wait`` and
    ``as_completed``. Functions and arguments must be picklable; functions
    defined in the main script must be under an ``if __name__ ==
    "__main__":`` guard, exactly as with the spawn start method (the
    workers import the main script as ``__mp_main__``).

    Arguments and results are pickled with protocol 5. Their large buffers
    (numpy arrays, memoryviews, large bytes and bytearrays) travel by
    reference when the caller is a member, and arrive as views of the
    sender's memory: a 256 MiB array returned by a worker is not copied.
    Outside a group, the executor makes an ephemeral group for its workers
    and copies each buffer once. docs/python.md has the rules.

    An exception raised by a call is re-raised by ``future.result()`` with
    the worker's traceback attached as ``__cause__`` (a RemoteTraceback). A
    worker that dies (killed, crashed, exited) fails the future it was
    running with pat.WorkerDied naming its pid and how it ended; the
    executor starts a replacement and carries on.

    ``initializer(*initargs)`` runs in each worker when it starts; if it
    raises, the executor is broken (BrokenExecutor), as ProcessPoolExecutor
    is.
    """

    def __init__(self, max_workers=None, *, initializer=None, initargs=()):
        if max_workers is None:
            max_workers = len(os.sched_getaffinity(0)) or 1
        if max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        self._max_workers = max_workers
        self._initializer = initializer
        self._initargs = tuple(initargs)
        self._lock = threading.Lock()
        self._pending = collections.deque()   # _Task not yet given to a worker
        self._running = {}                    # task id -> _Task given to a worker
        self._idle = collections.deque()      # ready Workers without a task
        self._workers = {}                    # number -> live Worker
        self._task_ids = itertools.count(1)
        self._worker_numbers = itertools.count(0)
        self._failed_starts = 0
        self._shutdown = False
        self._stopping = False
        self._broken = None                   # why, once broken
        self._pool = None
        self._stopped = threading.Event()
        _live_executors.add(self)

    # --- the public interface ----------------------------------------------

    def submit(self, fn, /, *args, **kwargs):
        """Schedules ``fn(*args, **kwargs)``; a Future. Raises RuntimeError
        after shutdown, BrokenExecutor once broken."""
        with self._lock:
            if self._broken:
                raise BrokenExecutor(self._broken)
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            start = self._pool is None
            if start:
                self._pool = _new_pool(self)
            future = _Future(getattr(self._pool, "wait_for", None))
            self._pending.append(_Task(next(self._task_ids), future, fn, args, kwargs))
        if start:
            self._start_workers()
        self._dispatch()
        return future

    def map(self, fn, *iterables, timeout=None, chunksize=1):
        """Like the built-in map(fn, *iterables), its calls run in the
        workers; results come back in order. ``chunksize`` calls travel to a
        worker together (fewer round trips for many small calls); ``timeout``
        (seconds, from this call) bounds the wait for each result
        (TimeoutError)."""
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        chunks = super().map(functools.partial(_protocol.run_chunk, fn), _chunks(iterables, chunksize),
                             timeout=timeout)
        return _chained(chunks)

    def shutdown(self, wait=True, *, cancel_futures=False):
        """No new tasks are accepted. With ``cancel_futures``, tasks no
        worker has taken yet are cancelled. With ``wait``, returns once the
        remaining tasks have finished and the workers have exited (and, for
        a caller outside any group, the executor's group is gone); without,
        that happens in the background."""
        with self._lock:
            self._shutdown = True
            cancelled = list(self._pending) if cancel_futures else []
            if cancel_futures:
                self._pending.clear()
        for task in cancelled:
            task.future.cancel()
        self._stop_if_drained()
        _live_executors.discard(self)
        if not wait:
            return
        if self._pool is not None and self._pool.in_event_thread():
            # A done-callback run by the thread that must bring the workers'
            # last messages cannot wait for them: it would wait for itself.
            # ProcessPoolExecutor raises here too (its manager thread cannot
            # join itself); the shutdown goes on in the background.
            raise RuntimeError("shutdown(wait=True) was called from a pat.Executor callback, in the thread that "
                               "handles the workers' messages: it cannot wait there; the executor shuts down "
                               "in the background")
        self._stopped.wait()

    @property
    def max_workers(self):
        return self._max_workers

    def worker_pids(self):
        """The pids of the workers alive now."""
        with self._lock:
            return [worker.pid for worker in self._workers.values() if worker.pid]

    def __repr__(self):
        kind = type(self._pool).__name__ if self._pool else "not started"
        return f"<pat.Executor max_workers={self._max_workers} {kind}>"

    # --- called by the pool (pat._member_pool, pat._process_pool) ---------

    def _preparation(self):
        """INIT's body: the caller's multiprocessing preparation data and the
        initializer, pickled separately: it can only be unpickled once the
        worker has the caller's sys.path and main module."""
        import multiprocessing.spawn
        import pickle
        data = multiprocessing.spawn.get_preparation_data("pat.Executor worker")
        # An AuthenticationString refuses pickling outside multiprocessing's
        # own spawning; the worker's prepare() turns bytes back into one.
        data["authkey"] = bytes(data["authkey"])
        return data, pickle.dumps((self._initializer, self._initargs), protocol=5)

    def _worker_ready(self, worker):
        with self._lock:
            if not worker.alive:
                return
            worker.ready = True
            self._failed_starts = 0
            self._idle.append(worker)
        self._dispatch()

    def _task_done(self, task_id, kind, load):
        """A RESULT or ERROR for ``task_id``; ``load()`` unpickles its body."""
        with self._lock:
            task = self._running.pop(task_id, None)
            if task is None:
                return
            worker = task.worker
            worker.task = None
            if worker.alive:
                self._idle.append(worker)
        self._dispatch()
        try:
            body = load()
        except BaseException as failure:  # noqa: B902 - becomes the future's outcome
            _set_exception(task.future, _undecodable(failure))
        else:
            if kind == _protocol.RESULT:
                _set_result(task.future, body)
            else:
                _set_exception(task.future, _remote_exception(*body))
        self._stop_if_drained()

    def _worker_lost(self, worker, exit_code=None, signal=None):
        """``worker`` ended; its task fails with WorkerDied and, unless the
        executor is done, a replacement starts."""
        with self._lock:
            if not worker.alive:
                return
            worker.alive = False
            self._workers.pop(worker.number, None)
            if worker in self._idle:
                self._idle.remove(worker)
            task = worker.task
            if task is not None:
                self._running.pop(task.id, None)
            if not worker.ready:
                self._failed_starts += 1
            failing_to_start = self._failed_starts >= MAX_FAILED_STARTS
            replace = not self._stopping and not self._broken and not failing_to_start
        how = _how_it_ended(exit_code, signal)
        if task is not None:
            _set_exception(task.future, WorkerDied(
                f"pat.Executor worker {worker.pid} {how} while running this task"
                + ("; a replacement was started" if replace else ""),
                worker.pid, exit_code, signal))
        if failing_to_start and not self._stopping:
            self._break(f"{MAX_FAILED_STARTS} pat.Executor workers in a row ended before they were ready "
                        f"(the last, pid {worker.pid}, {how}); see their stderr")
        elif replace:
            self._start_worker()
        self._stop_if_drained()
        self._pool.worker_gone(worker)

    def _initializer_failed(self, worker, traceback_text):
        self._break("the initializer of a pat.Executor worker failed:\n" + traceback_text)

    # --- internals -----------------------------------------------------------

    def _start_workers(self):
        try:
            for _ in range(self._max_workers):
                self._start_worker(raise_errors=True)
        except BaseException as error:
            self._break(f"pat.Executor cannot start its workers: {error}")
            raise BrokenExecutor(f"pat.Executor cannot start its workers: {error}") from error

    def _start_worker(self, raise_errors=False):
        with self._lock:
            worker = Worker(next(self._worker_numbers))
            self._workers[worker.number] = worker
        try:
            started = self._pool.start_worker(worker)
        except BaseException as error:
            with self._lock:
                worker.alive = False
                self._workers.pop(worker.number, None)
            if raise_errors:
                raise
            self._break(f"pat.Executor cannot start a replacement worker: {error}")
            return
        if not started:  # the pool is stopping
            with self._lock:
                worker.alive = False
                self._workers.pop(worker.number, None)

    def _dispatch(self):
        """Gives pending tasks to idle workers, one each. A task that fails
        to go (it cannot be pickled) or was cancelled leaves the executor
        with less to do: after a shutdown, maybe nothing."""
        try:
            while self._dispatch_one():
                pass
        finally:
            self._stop_if_drained()

    def _dispatch_one(self):
        """Gives one pending task to an idle worker; False when there is
        none to give or nobody to give it to."""
        while True:
            with self._lock:
                if not self._idle or not self._pending or self._broken:
                    return False
                task = self._pending.popleft()
                if not task.future.set_running_or_notify_cancel():
                    continue  # cancelled while it waited
                # The most recently idle worker: it may still be polling its
                # channel (pat._worker), so no wake-up is needed.
                worker = self._idle.pop()
                worker.task = task
                task.worker = worker
                self._running[task.id] = task
            try:
                self._pool.send_task(worker, task)
            except BaseException as error:  # noqa: B902 - e.g. the call cannot be pickled
                with self._lock:
                    self._running.pop(task.id, None)
                    worker.task = None
                    if worker.alive:
                        self._idle.append(worker)
                _set_exception(task.future, error)
            else:
                # The call travels with the task; the executor needs it no more.
                task.fn = task.args = task.kwargs = None
            return True

    def _break(self, why):
        """Every task not finished fails; no new ones are accepted."""
        with self._lock:
            if self._broken:
                return
            self._broken = why
            waiting = list(self._pending)
            running = list(self._running.values())
            self._pending.clear()
            self._running.clear()
            for worker in self._workers.values():
                worker.task = None
        for task in waiting:
            if task.future.set_running_or_notify_cancel():
                _set_exception(task.future, BrokenExecutor(why))
        for task in running:
            _set_exception(task.future, BrokenExecutor(why))
        self._stop_if_drained(force=True)

    def _stop_if_drained(self, force=False):
        """Once shut down with nothing left to run (or when ``force``d),
        stops the pool; its on_stopped ends shutdown(wait=True)."""
        with self._lock:
            if self._stopping or self._pool is None:
                if self._pool is None and (self._shutdown or force):
                    self._stopped.set()
                return
            cancelled = []
            if self._shutdown and not force:
                # Tasks cancelled while they waited count as done: no worker
                # will ever take them to notice.
                cancelled = [task for task in self._pending if task.future.cancelled()]
                for task in cancelled:
                    self._pending.remove(task)
            drained = self._shutdown and not self._pending and not self._running
            if drained or force:
                self._stopping = True
        for task in cancelled:
            task.future.set_running_or_notify_cancel()  # tells wait() and as_completed()
        if drained or force:
            self._pool.stop(on_stopped=self._stopped.set)


def _new_pool(executor):
    import _pat
    if _pat.in_group():
        from ._member_pool import MemberPool
        return MemberPool(executor)
    from ._process_pool import ProcessPool
    return ProcessPool(executor)


def _set_result(future, value):
    try:
        future.set_result(value)
    except futures.InvalidStateError:
        pass  # already failed by _break


def _set_exception(future, exception):
    try:
        future.set_exception(exception)
    except futures.InvalidStateError:
        pass


def _remote_exception(exception, traceback_text):
    """The exception a worker raised, with its traceback as ``__cause__``,
    as ProcessPoolExecutor does."""
    if exception is None:
        exception = RuntimeError("a pat.Executor task raised an exception that could not be sent back; "
                                 "its traceback is below")
    exception.__cause__ = RemoteTraceback(f'\n"""\n{traceback_text}"""')
    return exception


def _undecodable(failure):
    error = RuntimeError(f"the answer of a pat.Executor worker could not be unpickled here: {failure!r}")
    error.__cause__ = failure
    return error


def _how_it_ended(exit_code, signal):
    if signal is not None:
        import signal as signals
        try:
            name = signals.Signals(signal).name
        except ValueError:
            name = f"signal {signal}"
        return f"was killed by signal {signal} ({name})"
    if exit_code is not None:
        return f"exited with code {exit_code}"
    return "ended"


def _chunks(iterables, chunksize):
    iterator = zip(*iterables)
    while True:
        chunk = tuple(itertools.islice(iterator, chunksize))
        if not chunk:
            return
        yield chunk


def _chained(chunk_results):
    """Flattens the per-chunk result lists; closing it (or an error) cancels
    the chunks still pending, as Executor.map's own generator does."""
    try:
        for results in chunk_results:
            yield from results
    finally:
        chunk_results.close()
