"""pat.Executor's workers when the caller is a member of a group: more
members of the same group, talking through the group's channels, so that
buffers travel by reference (pat._dataplane).

Channels, named after the caller's pid and the executor's serial number:

- ``<prefix>.results``: every worker sends (RESULT, ERROR, ...); the caller
  receives, in one thread at a time: a reader thread, or a thread waiting in
  future.result() (pat._receiver). The caller also attaches as a sender, for
  two reasons: it never sees PeerDied there (a worker's end is learnt from
  its Run stream, and there may be no worker at all for a while), and it
  can queue messages to itself behind the workers': see WORKER_GONE below.
- ``<prefix>.w<N>``: worker N's own tasks, the caller sending. The executor
  gives a worker one task at a time, so it always knows which future a dead
  worker takes down. When the caller dies, the worker's receive raises
  PeerDied and it exits; retire() closes it (the worker ends once it has
  received what was queued).

A worker's end is learnt by the pool's ExitWatcher (pat._pool) from its Run
stream. It does not act on it directly: the worker's last messages may
still be in the results channel (the host reports an end only after
reaping, so they are all there by then). The watcher queues WORKER_GONE on
the results channel, behind them, and the receiving thread handles both in
order.
"""

import itertools
import os
import traceback

import _pat

from . import _dataplane, _patd, _protocol
from ._pool import WorkerPool, block_terminal_signals
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

    __slots__ = ("tasks", "limits", "name")


class MemberPool(WorkerPool):
    def __init__(self, executor):
        super().__init__(executor)
        self._group = _pat.group_name()
        self._prefix = f"pat.executor.{os.getpid()}.{next(_serials)}"
        self._results = _pat.Channel(self._prefix + ".results", "both", RESULTS_CAPACITY, MAX_INLINE_BYTES,
                                     MAX_BUFFERS)
        self._results_limits = self._results.limits
        self._receiver = SharedReceiver(self._results, self._results_limits, self._handle, "pat.Executor results",
                                        spin=RESULT_SPIN_SECONDS, on_stopped=self._reader_stopped,
                                        thread_setup=block_terminal_signals)

    # --- WorkerPool ----------------------------------------------------------

    def _prepare_link(self, worker):
        link = _Link()
        link.name = f"{self._prefix}.w{worker.number}"
        link.tasks = _pat.Channel(link.name, "send", TASKS_CAPACITY, MAX_INLINE_BYTES, MAX_BUFFERS)
        link.limits = link.tasks.limits
        worker.link = link
        # Queued before the worker exists: its first receive finds it. The
        # worker shares this address space, so initargs may hold anything a
        # spawned child could inherit (see executor._init_body).
        _dataplane.send(link.tasks, link.limits, self._executor._init_body(shared_address_space=True),
                        kind=_protocol.INIT)

    def _drop_link(self, worker):
        worker.link.tasks.detach()

    def _launch(self, worker):
        program, environment, cwd = self._worker_context()
        argv = [program, "-m", "pat._worker", "channels", self._prefix + ".results", worker.link.name,
                str(worker.number)]
        stdio, opened = _patd.member_stdio()
        try:
            return _patd.RunningMember(program, argv, environment, cwd, stdio, group=self._group)
        finally:
            for fd in opened:
                os.close(fd)

    def send_task(self, worker, task):
        link = worker.link
        _dataplane.send(link.tasks, link.limits, task.call(), kind=_protocol.TASK, tag=task.id)

    def retire(self, worker):
        try:
            worker.link.tasks.close()
        except _pat.Error:
            pass  # closed already

    def wait_until(self, done, timeout):
        """future.result()'s wait: results are received and handled in the
        waiting thread itself (pat._receiver)."""
        self._receiver.wait_for(done, timeout)

    def in_event_thread(self):
        return self._receiver.handling_in_current_thread()

    def join(self):
        self._receiver.join()
        self._exits.join()

    def _report_exit(self, worker, status):
        """Queues WORKER_GONE behind the worker's last words."""
        _dataplane.send(self._results, self._results_limits, status, kind=_protocol.WORKER_GONE,
                        tag=worker.number)

    def _end_threads(self):
        # The reader ends when it reaches this, after everything queued.
        _dataplane.send(self._results, self._results_limits, None, kind=_protocol.STOP)

    # --- the receiving thread ---------------------------------------------------

    def _handle(self, message):
        """One message off the results channel (the receiver role is held)."""
        executor = self._executor
        kind = message.kind
        try:
            if kind in (_protocol.RESULT, _protocol.ERROR):
                executor._task_done(message.tag, kind, message.load)
                _dataplane.exports.prune()
            elif kind == _protocol.UNREADABLE:
                executor._task_unreadable(message.tag, message.load())
            else:
                with self._lock:
                    worker = self._workers.get(message.tag)
                if worker is None:
                    return
                if kind == _protocol.WORKER_GONE:
                    executor._worker_lost(worker, *message.load())
                elif kind == _protocol.INIT_FAILED:
                    executor._initializer_failed(worker, message.load())
        except Exception:  # a bug here must not silence every later result
            traceback.print_exc()

    def _reader_stopped(self):
        self._results.detach()
        self._stopped()
