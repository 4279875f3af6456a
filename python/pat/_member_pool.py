"""pat.Executor's workers when the caller is a member of a group: more
members of the same group, talking through the group's channels, so that
buffers travel by reference (pat._dataplane).

Channels, named after the caller's pid and the executor's serial number:

- ``<prefix>.results``: every worker sends (READY, RESULT, ERROR, ...); the
  caller receives, in one thread at a time: a reader thread, or a thread
  waiting in future.result() (pat._receiver). The caller also attaches as
  a sender, for two reasons: it never sees PeerDied there (a worker's death
  is learnt from its pidfd, and until its replacement attaches there may be
  no worker at all), and it can queue messages to itself behind the
  workers': see WORKER_GONE below.
- ``<prefix>.w<N>``: worker N's own tasks, the caller sending. A worker
  holds one task at a time, so the executor always knows which future a
  dead worker takes down. When the caller dies, the worker's receive raises
  PeerDied and it exits; on shutdown the caller closes it.

A worker's death is seen by a watcher thread polling the workers' pidfds
(they are the host's children, not ours, so no waitpid). It does not act on
it directly: a worker may have queued its result just before it died, so
the watcher queues WORKER_GONE on the results channel, behind anything the
worker sent, and the reader handles both in order.
"""

import itertools
import os
import selectors
import threading
import traceback

import _pat

from . import _dataplane, _patd, _protocol
from ._receiver import SharedReceiver

RESULTS_CAPACITY = 256
TASKS_CAPACITY = 4          # INIT, one TASK at a time, headroom
MAX_INLINE_BYTES = 16384    # small calls and results fit inline
MAX_BUFFERS = 64

# Polling the results channel this long before sleeping catches a small
# task's answer without a futex wake-up (see _pat.Channel.receive).
RESULT_SPIN_SECONDS = 500e-6

_serials = itertools.count(1)


class _Link:
    """The pool's side of one worker: its task channel."""

    __slots__ = ("tasks", "limits")


class MemberPool:
    def __init__(self, executor):
        self._executor = executor
        self._group = _pat.group_name()
        self._program = _patd.pat_python()
        self._patd = _patd.Connection()
        self._prefix = f"pat.executor.{os.getpid()}.{next(_serials)}"
        self._results = _pat.Channel(self._prefix + ".results", "both", RESULTS_CAPACITY, MAX_INLINE_BYTES,
                                     MAX_BUFFERS)
        self._results_limits = self._results.limits
        self._preparation = executor._preparation()
        self._lock = threading.Lock()
        self._workers = {}  # number -> executor.Worker, until the executor is told it is gone
        self._stopping = False
        self._finished = False
        self._on_stopped = None
        self._watcher = _DeathWatcher(self._report_death)
        self._receiver = SharedReceiver(self._results, self._results_limits, self._handle, "pat.Executor results",
                                        spin=RESULT_SPIN_SECONDS, on_stopped=self._reader_stopped,
                                        thread_setup=_block_terminal_signals)

    # --- called by the executor ---------------------------------------------

    def start_worker(self, worker):
        """Starts ``worker``; False (and nothing started) once the pool is
        stopping: a replacement decided just before a shutdown must not
        outlive it."""
        tasks_name = f"{self._prefix}.w{worker.number}"
        link = _Link()
        link.tasks = _pat.Channel(tasks_name, "send", TASKS_CAPACITY, MAX_INLINE_BYTES, MAX_BUFFERS)
        link.limits = link.tasks.limits
        worker.link = link
        with self._lock:
            if self._stopping:
                link.tasks.detach()
                return False
            # Registered before it runs: stop() closes its channel even if it
            # comes while the worker starts.
            self._workers[worker.number] = worker
        try:
            # Queued before the worker exists: its first receive finds it.
            _dataplane.send(link.tasks, link.limits, self._preparation, kind=_protocol.INIT)
            argv = [self._program, "-m", "pat._worker", "channels", self._prefix + ".results", tasks_name,
                    str(worker.number)]
            stdio, opened = _patd.member_stdio()
            try:
                worker.pid, _ = self._patd.run_detached(self._program, argv, dict(os.environ), os.getcwd(), stdio,
                                                        group=self._group)
            finally:
                for fd in opened:
                    os.close(fd)
        except BaseException:
            with self._lock:
                self._workers.pop(worker.number, None)
                finish = self._stopping and not self._workers
            link.tasks.detach()
            if finish:
                self._finish()
            raise
        self._watcher.watch(worker)
        return True

    def send_task(self, worker, task):
        link = worker.link
        _dataplane.send(link.tasks, link.limits, task.call(), kind=_protocol.TASK, tag=task.id)

    def worker_gone(self, worker):
        """The executor has dealt with ``worker``'s end."""
        worker.link.tasks.detach()
        with self._lock:
            self._workers.pop(worker.number, None)
            finish = self._stopping and not self._workers
        if finish:
            self._finish()

    def stop(self, on_stopped):
        """Closes every worker's task channel (they exit once idle) and, when
        all are gone, the rest; then calls on_stopped()."""
        with self._lock:
            self._stopping = True
            self._on_stopped = on_stopped
            workers = list(self._workers.values())
        for worker in workers:
            try:
                worker.link.tasks.close()
            except _pat.Error:
                pass
        if not workers:
            self._finish()

    # --- threads -------------------------------------------------------------

    def _finish(self):
        with self._lock:
            if self._finished:
                return
            self._finished = True
        self._watcher.stop()
        # The reader ends when it reaches this, after everything queued.
        _dataplane.send(self._results, self._results_limits, None, kind=_protocol.STOP)

    def _report_death(self, worker):
        """Watcher thread: queues WORKER_GONE behind the worker's last words."""
        status = _patd.exit_status(self._patd, self._group, worker.pid)
        _dataplane.send(self._results, self._results_limits, status, kind=_protocol.WORKER_GONE,
                        tag=worker.number)

    def wait_for(self, future, timeout):
        """future.result()'s wait: results are received and handled in the
        waiting thread itself (pat._receiver)."""
        self._receiver.wait_for(future.done, timeout)

    def in_event_thread(self):
        """Whether this thread is handling the pool's messages (running a
        future's callback): it cannot wait for the pool to stop."""
        return self._receiver.handling_in_current_thread()

    def _handle(self, message):
        """One message off the results channel (the receiver role is held)."""
        executor = self._executor
        kind = message.kind
        try:
            if kind in (_protocol.RESULT, _protocol.ERROR):
                executor._task_done(message.tag, kind, message.load)
                _dataplane.exports.prune()
                return
            with self._lock:
                worker = self._workers.get(message.tag)
            if worker is None:
                return
            if kind == _protocol.READY:
                executor._worker_ready(worker)
            elif kind == _protocol.WORKER_GONE:
                executor._worker_lost(worker, *message.load())
            elif kind == _protocol.INIT_FAILED:
                executor._initializer_failed(worker, message.load())
        except Exception:  # a bug here must not silence every later result
            traceback.print_exc()

    def _reader_stopped(self):
        self._results.detach()
        self._patd.close()
        if self._on_stopped:
            self._on_stopped()


class _DeathWatcher:
    """A thread waiting on the workers' pidfds (pidfd_open(2): a pidfd
    becomes readable when its process ends, child or not); calls
    on_death(worker) once per worker, in this thread."""

    def __init__(self, on_death):
        self._on_death = on_death
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._selector.register(self._wake_read, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._stopped = False
        self._gone_before_watched = []
        self._thread = threading.Thread(target=self._run, name="pat.Executor worker watcher", daemon=True)
        self._thread.start()

    def watch(self, worker):
        try:
            pidfd = os.pidfd_open(worker.pid)
        except ProcessLookupError:
            # Gone already (and reaped by its host): report it from the thread.
            pidfd = None
        with self._lock:
            if self._stopped:
                if pidfd is not None:
                    os.close(pidfd)
                return
            if pidfd is None:
                self._gone_before_watched.append(worker)
            else:
                self._selector.register(pidfd, selectors.EVENT_READ, worker)
            os.write(self._wake_write, b"w")

    def stop(self):
        with self._lock:
            if not self._stopped:
                self._stopped = True
                os.write(self._wake_write, b"s")

    def _run(self):
        _block_terminal_signals()
        while True:
            events = self._selector.select()
            with self._lock:
                stopped = self._stopped
                dead, self._gone_before_watched = self._gone_before_watched, []
            for key, _ in events:
                if key.data is None:
                    try:
                        os.read(self._wake_read, 4096)
                    except BlockingIOError:
                        pass
                    continue
                self._selector.unregister(key.fd)
                os.close(key.fd)
                dead.append(key.data)
            if stopped:
                break
            for worker in dead:
                try:
                    self._on_death(worker)
                except Exception:
                    traceback.print_exc()
        for key in list(self._selector.get_map().values()):
            if key.data is not None:
                os.close(key.fd)
        self._selector.close()
        os.close(self._wake_read)
        os.close(self._wake_write)


def _block_terminal_signals():
    """pat's threads block SIGINT and SIGTERM so that the kernel delivers
    them to the main thread, whose blocking pat calls they interrupt
    (Ctrl-C ends a pat.Channel.recv() there)."""
    import signal
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
