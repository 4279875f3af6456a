"""What pat.Executor asks of the place its workers run, declared once.

Two pools implement it: :class:`pat._member_pool.MemberPool` (the caller is
a member: workers join its group, data by reference) and
:class:`pat._process_pool.ProcessPool` (it is not: workers in an ephemeral
group of their own, data copied once). The executor (pat.executor) decides
what runs where and when; a pool only carries it out:

- ``start_worker(worker)`` queues INIT for the worker, starts it as a member
  (a streaming io.pat.Member.Run, pat._patd.RunningMember) and watches it
  until it ends; False once the pool is stopping.
- ``send_task(worker, task)`` queues a task behind whatever the worker
  holds; it may raise (the call cannot be pickled): nothing was sent then.
- ``retire(worker)`` closes the worker's task stream: it ends after the
  tasks already queued.
- ``terminate(worker)`` sends it SIGTERM now (through patd's
  io.pat.Member.Signal: no pid can be mistaken for another).
- ``stop(on_stopped)`` retires every worker; once all are gone the pool
  ends its threads and calls ``on_stopped()``.
- ``wait_until(done, timeout)`` lets future.result() (and pat.dask) wait
  until ``done()`` the pool's way;
  ``in_event_thread()`` says whether this thread reports the pool's events
  (it runs futures' callbacks, and must not wait for the pool).

And reports, in order, per worker: its answers (executor._task_done,
_initializer_failed, _task_unreadable), then its end (executor._worker_lost)
— after everything it sent before it ended.
"""

import abc
import os
import selectors
import threading
import traceback

from . import _patd


class WorkerPool(abc.ABC):
    """The bookkeeping every pool shares: which workers are alive, stopping,
    finishing once the last one is gone."""

    def __init__(self, executor):
        self._executor = executor
        self._program = _patd.pat_python()
        self._control = _patd.Connection()  # signals, and the process pool's group
        self._lock = threading.Lock()
        self._workers = {}  # number -> executor.Worker, from start_worker until worker_gone
        self._stopping = False
        self._finished = False
        self._on_stopped = None
        self._exits = ExitWatcher(self._report_exit)

    # --- called by the executor ---------------------------------------------

    def start_worker(self, worker):
        """Starts ``worker``; False (and nothing started) once the pool is
        stopping: a worker decided just before a shutdown must not outlive
        it."""
        self._prepare_link(worker)
        with self._lock:
            if self._stopping:
                self._drop_link(worker)
                return False
            # Registered before it runs: stop() retires it even if it comes
            # while the worker starts.
            self._workers[worker.number] = worker
        try:
            worker.member = self._launch(worker)
        except BaseException:
            with self._lock:
                self._workers.pop(worker.number, None)
                finish = self._stopping and not self._workers
            self._drop_link(worker)
            if finish:
                self._finish()
            raise
        worker.pid = worker.member.pid
        self._exits.watch(worker)
        return True

    @abc.abstractmethod
    def send_task(self, worker, task):
        """Queues ``task`` for ``worker``."""

    @abc.abstractmethod
    def retire(self, worker):
        """No more tasks for ``worker``: it ends after those queued."""

    def terminate(self, worker):
        try:
            self._control.signal_member(worker.member.group, worker.pid, 15)  # SIGTERM
        except (_patd.PatdError, OSError):
            pass  # ended already

    def stop(self, on_stopped):
        """Retires every worker; when all are gone, ends the pool's threads
        and calls on_stopped()."""
        with self._lock:
            self._stopping = True
            self._on_stopped = on_stopped
            workers = list(self._workers.values())
        for worker in workers:
            self.retire(worker)
        if not workers:
            self._finish()

    def worker_gone(self, worker):
        """The executor has dealt with ``worker``'s end."""
        self._drop_link(worker)
        worker.member.close()
        with self._lock:
            self._workers.pop(worker.number, None)
            finish = self._stopping and not self._workers
        if finish:
            self._finish()

    def wait_until(self, done, timeout):
        """Waits until ``done()`` or ``timeout`` the pool's way, as far as
        it has one (here: returns at once; the caller then waits the plain
        way)."""

    @abc.abstractmethod
    def in_event_thread(self):
        """Whether this thread reports the pool's events."""

    @abc.abstractmethod
    def join(self):
        """Waits for the pool's threads to end, after on_stopped()."""

    # --- for the pools ---------------------------------------------------------

    @abc.abstractmethod
    def _prepare_link(self, worker):
        """Sets ``worker.link`` up and queues INIT on it."""

    @abc.abstractmethod
    def _drop_link(self, worker):
        """Releases ``worker.link`` (it never ran, or is gone)."""

    @abc.abstractmethod
    def _launch(self, worker):
        """Starts the worker's member: a pat._patd.RunningMember."""

    @abc.abstractmethod
    def _report_exit(self, worker, status):
        """ExitWatcher thread: ``worker`` ended with ``status`` ((exit_code,
        signal)); report it after anything it sent before."""

    def _finish(self):
        """Once, when stopping and no worker is left: ends the pool's
        threads, which call _stopped()."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
        self._exits.stop()
        self._end_threads()

    @abc.abstractmethod
    def _end_threads(self):
        """Asks the pool's threads to end, after the messages they hold."""

    def _stopped(self):
        """The last thing the pool does."""
        self._control.close()
        if self._on_stopped:
            self._on_stopped()

    def _worker_context(self):
        """The environment, working directory and program of every worker:
        the caller's, with the executor's _worker_environment on top."""
        return self._program, {**os.environ, **self._executor._worker_environment}, os.getcwd()


class ExitWatcher:
    """A thread learning when workers end: each worker's streaming Run
    connection becomes readable when it has ended, with its status
    (pat._patd.RunningMember). Calls on_exit(worker, (exit_code, signal))
    once per worker, in this thread.

    If patd goes away while a worker runs (a restart: the worker ignores
    the SIGHUP that comes with it), the stream ends without a status; the
    worker is then watched through its pidfd (pidfd_open(2): readable when
    the process ends, child or not), and its status is unknown."""

    def __init__(self, on_exit):
        self._on_exit = on_exit
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._selector.register(self._wake_read, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._stopped = False
        self.thread = threading.Thread(target=self._run, name="pat.Executor exits", daemon=True)
        self.thread.start()

    def watch(self, worker):
        with self._lock:
            if not self._stopped:
                self._selector.register(worker.member, selectors.EVENT_READ, ("stream", worker))
                os.write(self._wake_write, b"w")

    def join(self):
        thread = self.thread
        if thread is not None and threading.current_thread() is not thread:
            thread.join()
            self.thread = None  # as SharedReceiver.join

    def stop(self):
        with self._lock:
            if not self._stopped:
                self._stopped = True
                os.write(self._wake_write, b"s")

    def _run(self):
        block_terminal_signals()
        while True:
            events = self._selector.select()
            with self._lock:
                stopped = self._stopped
            ended = []
            for key, _ in events:
                if key.data is None:
                    try:
                        os.read(self._wake_read, 4096)
                    except BlockingIOError:
                        pass
                    continue
                how, worker = key.data
                self._selector.unregister(key.fileobj)
                if how == "pidfd":
                    os.close(key.fd)
                    ended.append((worker, (None, None)))
                    continue
                status = worker.member.ended()
                if status is not None:
                    ended.append((worker, status))
                    continue
                try:  # patd went away; the worker may still run
                    pidfd = os.pidfd_open(worker.pid)
                except ProcessLookupError:
                    ended.append((worker, (None, None)))
                    continue
                self._selector.register(pidfd, selectors.EVENT_READ, ("pidfd", worker))
            if stopped:
                break
            for worker, status in ended:
                try:
                    self._on_exit(worker, status)
                except Exception:  # a bug here must not stop the watching of the others
                    traceback.print_exc()
        for key in list(self._selector.get_map().values()):
            if key.data is not None and key.data[0] == "pidfd":
                os.close(key.fd)
        self._selector.close()
        os.close(self._wake_read)
        os.close(self._wake_write)


def block_terminal_signals():
    """pat's threads block SIGINT and SIGTERM so that the kernel delivers
    them to the main thread, whose blocking pat calls they interrupt
    (Ctrl-C ends a pat.Channel.recv() there)."""
    import signal
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
