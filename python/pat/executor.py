"""pat.Executor: a concurrent.futures.Executor whose workers are members of
a pat group, behaving as ProcessPoolExecutor does.

What it shares with ProcessPoolExecutor (CPython 3.11), on purpose, so that
a program moves between the two unchanged (tests/python_pat/
cpython_conformance.py runs CPython's own test_concurrent_futures on it):

- workers start as work arrives: a task submitted while no worker is idle
  starts one, up to max_workers;
- a task given to a worker is RUNNING and no longer cancellable; pending
  ones are (shutdown(cancel_futures=True) cancels them). Here each worker
  holds at most one task, so up to max_workers tasks run at once;
- a worker that ends unexpectedly breaks the executor: its task fails with
  pat.WorkerDied, every other one with BrokenProcessPool, the other workers
  are terminated, and submit() raises BrokenProcessPool from then on. So do
  an initializer that raises, a task the worker cannot unpickle and a result
  the caller cannot unpickle;
- a call that cannot be pickled fails its future (with the traceback as
  __cause__) and the executor carries on; so does a result or exception the
  worker cannot pickle (that error becomes the task's exception);
- max_tasks_per_child replaces a worker after that many tasks;
- exceptions carry the worker's traceback as __cause__, a
  concurrent.futures.process._RemoteTraceback;
- at interpreter exit, running executors finish their work (pat._exit).

Where the workers run and how data moves depend on the caller (pat._pool
declares the interface):

- the caller is a member of a group (started with ``patctl run``): workers
  join that group, and tasks, results and their buffers travel through group
  channels by reference (:mod:`pat._member_pool`);
- it is not: the executor starts its workers in a new ephemeral group of its
  own and talks to each over a socket; buffers are copied once, by the
  caller, with process_vm_readv/writev (:mod:`pat._process_pool`).

The executor's state changes under one lock, from three kinds of threads:
callers of submit/shutdown, and the pool's threads reporting answers and
ends of workers. Futures are completed outside the lock, since their
callbacks may call back into the executor.
"""

import collections
import functools
import itertools
import os
import threading
import time
import weakref
from concurrent import futures

from . import _exit, _protocol
from ._executor_errors import BrokenProcessPool, RemoteTraceback, WorkerDied

BROKEN = "A child process terminated abruptly, the process pool is not usable anymore"


# concurrent.futures' states of a future that is done (Future.done()).
_SETTLED = frozenset({futures._base.CANCELLED, futures._base.CANCELLED_AND_NOTIFIED, futures._base.FINISHED})


class _Future(futures.Future):
    """A Future whose result() and exception(), when it is not done yet,
    let the pool deliver results in the waiting thread itself (see
    MemberPool.wait_until): one thread switch less per task. Everything else,
    wait() and as_completed() included, is concurrent.futures.Future's."""

    def __init__(self, wait_until):
        """``wait_until``: a weakref.WeakMethod of the pool's wait_until,
        made once per pool (a WeakMethod per future cost more than the
        Future itself). Weak: a future kept after its executor is gone must
        not keep the pool (and its ended threads) alive."""
        super().__init__()
        self._wait_until = wait_until

    def result(self, timeout=None):
        return super().result(self._help(timeout))

    def exception(self, timeout=None):
        return super().exception(self._help(timeout))

    def _help(self, timeout):
        """Waits through the pool; the time left of ``timeout``."""
        wait_until = self._wait_until()
        if wait_until is None or self._settled():
            return timeout
        if timeout is None:
            wait_until(self._settled, None)
            return None
        start = time.monotonic()
        wait_until(self._settled, timeout)
        del wait_until
        return max(0.0, timeout - (time.monotonic() - start))

    def _settled(self):
        """done() without its lock (it is asked several times per message
        the waiting thread handles): reading one attribute is atomic, and a
        stale answer only means one more look. result() then asks the
        Future itself, under its lock."""
        return self._state in _SETTLED


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
    for it in ``link`` and ``member``."""

    __slots__ = ("number", "pid", "alive", "task", "tasks_given", "retiring", "failure", "link", "member")

    def __init__(self, number):
        self.number = number
        self.pid = None
        self.alive = True
        self.task = None
        self.tasks_given = 0
        self.retiring = False  # told to end (max_tasks_per_child, shutdown): its end is expected
        self.failure = None    # why it is about to end (its initializer's traceback)
        self.link = None
        self.member = None

    def __repr__(self):
        return f"<pat.Executor worker {self.number} pid={self.pid}>"


class Executor(futures.Executor):
    """A ``concurrent.futures.Executor`` running calls in up to
    ``max_workers`` worker members of a pat group (default: the CPUs this
    process may use), a drop-in for ProcessPoolExecutor.

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

    ``initializer(*initargs)`` runs in each worker when it starts; initargs
    may hold multiprocessing objects (a Queue for a QueueHandler, Locks,
    Events, Values), as ProcessPoolExecutor's may. ``mp_context`` is
    accepted for compatibility: pat's workers always start as fresh
    interpreters, as with 'spawn', whatever it says (docs/python.md).
    ``max_tasks_per_child``: a worker ends after that many tasks and a new
    one takes its place.
    """

    def __init__(self, max_workers=None, mp_context=None, initializer=None, initargs=(), *,
                 max_tasks_per_child=None):
        if max_workers is None:
            max_workers = len(os.sched_getaffinity(0)) or 1
        elif max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if mp_context is None:
            import multiprocessing
            # What pat's workers are, whatever is asked: fresh interpreters.
            mp_context = multiprocessing.get_context("spawn")
        if max_tasks_per_child is not None:
            if not isinstance(max_tasks_per_child, int):
                raise TypeError("max_tasks_per_child must be an integer")
            if max_tasks_per_child <= 0:
                raise ValueError("max_tasks_per_child must be >= 1")
            if mp_context.get_start_method(allow_none=False) == "fork":
                # pat never forks, but a program that works here must work
                # with ProcessPoolExecutor too, which refuses this.
                raise ValueError("max_tasks_per_child is incompatible with the 'fork' multiprocessing start "
                                 "method; supply a different mp_context.")
        self._max_workers = max_workers
        self._mp_context = mp_context
        self._initializer = initializer
        self._initargs = tuple(initargs)
        self._max_tasks_per_child = max_tasks_per_child
        self._lock = threading.Lock()
        self._pending = collections.deque()   # _Task not yet given to a worker
        self._running = {}                    # task id -> _Task given to a worker
        self._free = []                       # live Workers without a task, most recently freed last
        self._workers = {}                    # number -> live Worker
        self._task_ids = itertools.count(1)
        self._worker_numbers = itertools.count(0)
        self._shutdown = False
        self._stopping = False
        self._broken = None                   # why, once broken (ProcessPoolExecutor's _broken)
        self._pool = None
        self._pool_wait_until = None          # weakref.WeakMethod of the pool's wait_until, for _Future
        self._preparation_data = None
        self._stopped = threading.Event()
        # Set before the first submit by pat.joblib and pat.dask: variables
        # every worker gets on top of the caller's environment (thread pool
        # sizes, PYTHONHASHSEED), as loky and Dask give their processes.
        self._worker_environment = {}

    # --- the public interface ----------------------------------------------

    def submit(self, fn, /, *args, **kwargs):
        """Schedules ``fn(*args, **kwargs)``; a Future. Raises RuntimeError
        after shutdown, BrokenProcessPool once broken."""
        with self._lock:
            if self._broken:
                raise BrokenProcessPool(self._broken)
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if _exit.interpreter_exiting():
                raise RuntimeError("cannot schedule new futures after interpreter shutdown")
            if self._pool is None:
                self._pool = _new_pool(self)
                self._pool_wait_until = weakref.WeakMethod(self._pool.wait_until)
                _exit.executor_started(self)
            future = _Future(self._pool_wait_until)
            self._pending.append(_Task(next(self._task_ids), future, fn, args, kwargs))
            # As ProcessPoolExecutor: a new worker unless one is idle.
            worker = self._new_worker() if not self._free and len(self._workers) < self._max_workers else None
        if worker is not None:
            self._start_worker(worker)
        self._dispatch()
        return future

    def map(self, fn, *iterables, timeout=None, chunksize=1):
        """Like the built-in map(fn, *iterables), its calls run in the
        workers; results come back in order. ``chunksize`` calls travel to a
        worker together (fewer round trips for many small calls); ``timeout``
        (seconds, from this call) bounds the wait for each result
        (TimeoutError). A result is not kept once it has been yielded."""
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
        that happens in the background (and at the latest at interpreter
        exit)."""
        with self._lock:
            self._shutdown = True
            cancelled = list(self._pending) if cancel_futures else []
            if cancel_futures:
                self._pending.clear()
        for task in cancelled:
            task.future.cancel()
            task.future.set_running_or_notify_cancel()
        self._stop_if_drained()
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
        if self._pool is not None:
            self._pool.join()

    def _wait_for_any(self, waited):
        """Returns once one of the futures ``waited`` (this executor's) is
        done: concurrent.futures.wait(FIRST_COMPLETED), but for a member
        caller the results are received in this thread (as result() does),
        saving the switch to pat's reader thread (pat.dask's loop)."""
        pool = self._pool
        if pool is not None and not any(future.done() for future in waited):
            pool.wait_until(lambda: any(future.done() for future in waited), None)
        del pool
        futures.wait(waited, return_when=futures.FIRST_COMPLETED)

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

    # --- called by the pool (pat._pool) ----------------------------------------

    def _init_body(self, shared_address_space):
        """INIT's body for one worker: the caller's multiprocessing
        preparation data, and (initializer, initargs) pickled as for a child
        being spawned, separately: the worker can unpickle them only once it
        has the caller's sys.path and main module. Pickled anew for every
        worker: a file descriptor in initargs (a multiprocessing.Queue's
        pipe) travels through multiprocessing's resource sharer, which hands
        each out once."""
        if self._preparation_data is None:
            import multiprocessing.spawn
            data = multiprocessing.spawn.get_preparation_data("pat.Executor worker")
            # An AuthenticationString refuses pickling outside multiprocessing's
            # own spawning; the worker's prepare() turns bytes back into one.
            data["authkey"] = bytes(data["authkey"])
            self._preparation_data = data
        from ._initargs import pickle_as_spawning
        return self._preparation_data, pickle_as_spawning((self._initializer, self._initargs), shared_address_space)

    def _task_done(self, task_id, kind, load):
        """A RESULT or ERROR for ``task_id``; ``load()`` unpickles its body."""
        with self._lock:
            task = self._running.pop(task_id, None)
            if task is None:
                return  # failed already, by _break
            self._free_worker(task.worker)
        self._dispatch()
        try:
            body = load()
        except BaseException as failure:  # noqa: B902 - as ProcessPoolExecutor: the pool breaks
            self._break(BROKEN, _traceback_text(failure), extra=[task])
            return
        if kind == _protocol.RESULT:
            _set_result(task.future, body)
        else:
            _set_exception(task.future, _remote_exception(*body))
        del body
        self._stop_if_drained()

    def _task_unreadable(self, task_id, traceback_text):
        """The worker could not unpickle task ``task_id`` and ends."""
        self._break(BROKEN, traceback_text)

    def _initializer_failed(self, worker, traceback_text):
        """The worker's initializer raised; the worker ends. The executor
        breaks when it has ended, as ProcessPoolExecutor's does: what the
        initializer queued on its way (a log record in a
        multiprocessing.Queue) is flushed by then."""
        worker.failure = traceback_text

    def _worker_lost(self, worker, exit_code=None, signal=None):
        """``worker`` ended. Expected when it was retired and held no task;
        otherwise the executor breaks, as ProcessPoolExecutor does."""
        with self._lock:
            if not worker.alive:
                return
            worker.alive = False
            self._workers.pop(worker.number, None)
            if worker in self._free:
                self._free.remove(worker)
            task = worker.task
            if task is not None:
                self._running.pop(task.id, None)
            expected = task is None and (worker.retiring or self._stopping or self._broken)
            replace = expected and self._pending and len(self._workers) < self._max_workers and not self._broken
            replacement = self._new_worker() if replace else None
        if worker.failure is not None:
            self._break("the initializer of a pat.Executor worker failed; the pool is not usable anymore",
                        worker.failure, extra=[task] if task is not None else [])
        elif expected:
            if replacement is not None:  # it retired with work waiting
                try:
                    self._start_worker(replacement)
                except BrokenProcessPool:
                    pass  # the executor is broken now: its futures say why
                self._dispatch()
        else:
            how = _how_it_ended(exit_code, signal)
            died = None
            if task is not None:
                died = WorkerDied(f"pat.Executor worker {worker.pid} {how} while running this task; "
                                  "the pool is not usable anymore", worker.pid, exit_code, signal)
            self._break(BROKEN, f"pat.Executor worker {worker.pid} {how}\n", culprit=(task, died),
                        extra=[task] if task is not None else [])
        self._pool.worker_gone(worker)
        self._stop_if_drained()

    def _finish_at_exit(self):
        """pat._exit: the interpreter exits; finish what was submitted."""
        self.shutdown(wait=False)
        self._stopped.wait()
        self._pool.join()

    # --- internals -----------------------------------------------------------

    def _free_worker(self, worker):
        """``worker`` has no task now (under the lock). After
        max_tasks_per_child tasks it is retired instead."""
        worker.task = None
        if not worker.alive or worker.retiring:
            return
        self._free.append(worker)

    def _new_worker(self):
        """A Worker counted among the live ones, free (under the lock)."""
        worker = Worker(next(self._worker_numbers))
        self._workers[worker.number] = worker
        self._free.append(worker)
        return worker

    def _start_worker(self, worker):
        """Starts ``worker``; if that fails, the executor breaks (the failure
        is raised to the caller of submit too, as ProcessPoolExecutor's
        spawning errors are)."""
        try:
            started = self._pool.start_worker(worker)
        except BaseException as error:
            with self._lock:
                self._forget_worker(worker)
            self._break(f"pat.Executor cannot start a worker: {error}")
            raise BrokenProcessPool(f"pat.Executor cannot start a worker: {error}") from error
        if not started:  # the pool is stopping
            with self._lock:
                self._forget_worker(worker)

    def _forget_worker(self, worker):
        worker.alive = False
        self._workers.pop(worker.number, None)
        if worker in self._free:
            self._free.remove(worker)

    def _dispatch(self):
        """Gives pending tasks to free workers, one each. A task that fails
        to go (it cannot be pickled) or was cancelled leaves the executor
        with less to do: after a shutdown, maybe nothing."""
        try:
            # Unlocked looks first, as in _stop_if_drained: whoever adds a
            # task or frees a worker calls this after, and looks again.
            while self._pending and self._free and self._dispatch_one():
                pass
        finally:
            self._stop_if_drained()

    def _dispatch_one(self):
        """Gives one pending task to a free worker; False when there is none
        to give or nobody to give it to."""
        while True:
            with self._lock:
                if not self._free or not self._pending or self._broken:
                    return False
                task = self._pending.popleft()
                if not task.future.set_running_or_notify_cancel():
                    continue  # cancelled while it waited
                # The most recently freed worker: it may still be polling its
                # channel (pat._worker), so no wake-up is needed.
                worker = self._free.pop()
                worker.task = task
                worker.tasks_given += 1
                task.worker = worker
                self._running[task.id] = task
                retire = self._max_tasks_per_child is not None and worker.tasks_given >= self._max_tasks_per_child
                if retire:
                    worker.retiring = True
            try:
                self._pool.send_task(worker, task)
            except BaseException as error:  # noqa: B902 - the call cannot be pickled, whatever __reduce__ raised
                with self._lock:
                    self._running.pop(task.id, None)
                    worker.tasks_given -= 1
                    worker.retiring = False
                    self._free_worker(worker)
                error.__cause__ = RemoteTraceback(f'\n"""\n{_traceback_text(error)}"""')
                _set_exception(task.future, error)
                continue
            # The call travels with the task; the executor needs it no more.
            task.fn = task.args = task.kwargs = None
            if retire:
                self._pool.retire(worker)  # it ends after this task
            return True

    def _break(self, why, cause_text=None, culprit=(None, None), extra=()):
        """Every task not finished fails with BrokenProcessPool (the
        culprit's with its own error); no new ones are accepted; the other
        workers are terminated, as ProcessPoolExecutor's are."""
        with self._lock:
            if self._broken:
                return
            self._broken = why
            tasks = list(self._pending) + list(self._running.values()) + list(extra)
            self._pending.clear()
            self._running.clear()
            workers = list(self._workers.values())
            for worker in workers:
                worker.task = None
            self._free.clear()
        broken = BrokenProcessPool("A process in the process pool was terminated abruptly while the future was "
                                   "running or pending.")
        if cause_text:
            broken.__cause__ = RemoteTraceback(f"\n'''\n{cause_text}'''")
        culprit_task, culprit_error = culprit
        for task in tasks:
            _set_exception(task.future, culprit_error if task is culprit_task and culprit_error else broken)
        for worker in workers:
            if worker.member is not None:
                self._pool.terminate(worker)
        self._stop_if_drained(force=True)

    def _stop_if_drained(self, force=False):
        """Once shut down with nothing left to run (or when ``force``d),
        stops the pool; its on_stopped ends shutdown(wait=True)."""
        if not (self._shutdown or force):
            # Nothing to do, and read without the lock: this runs several
            # times per task. _shutdown only ever becomes True, and
            # shutdown() calls this itself after setting it.
            return
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
                for worker in self._workers.values():
                    worker.retiring = True
        for task in cancelled:
            task.future.set_running_or_notify_cancel()  # tells wait() and as_completed()
        if drained or force:
            self._pool.stop(on_stopped=self._pool_stopped)

    def _pool_stopped(self):
        _exit.executor_stopped(self)
        self._stopped.set()


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
        pass  # done already, or cancelled


def _traceback_text(error):
    import traceback
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))


def _remote_exception(exception, traceback_text):
    """The exception a worker raised, with its traceback as ``__cause__``,
    as ProcessPoolExecutor does."""
    if exception is None:
        exception = RuntimeError("a pat.Executor task raised an exception that could not be sent back; "
                                 "its traceback is below")
    exception.__cause__ = RemoteTraceback(f'\n"""\n{traceback_text}"""')
    return exception


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
    """Flattens the per-chunk result lists, keeping nothing once yielded (as
    ProcessPoolExecutor's _chain_from_iterable_of_lists); closing it (or an
    error) cancels the chunks still pending, as Executor.map's own generator
    does."""
    try:
        for results in chunk_results:
            results.reverse()
            while results:
                yield results.pop()
    finally:
        chunk_results.close()
