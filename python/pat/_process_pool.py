"""pat.Executor's workers when the caller is not a member of any group.

The caller has no group of its own, so the workers get one: the first
worker is started with ``new_group`` (an ephemeral group, which patd removes
when its last member ends — so a caller killed with SIGKILL leaves nothing
behind once its workers notice and exit), the others join it by name, and
shutdown (or interpreter exit) destroys it. If the group ended meanwhile
(every worker died at once), the next worker starts a new one.

Caller and workers are separate address spaces here: each worker's stdin is
one end of a socketpair, which carries the small messages (pat._stream:
pickle streams with buffer descriptors, and in-band data). Out-of-band
buffers are copied exactly once, by the caller, with process_vm_readv
(results: from the worker's memory into fresh memory of the caller's) and
process_vm_writev (arguments: into memory the worker allocated and
announced with ALLOC). Until the copy is done the sender keeps the source
alive: the caller until it has answered ALLOC with GO, the worker until
RELEASE.

One manager thread polls every worker's socket. A worker's end, learnt by
the ExitWatcher (pat._pool) from its Run stream, is posted to the manager
thread, which first reads whatever the worker sent before it ended.
"""

import collections
import os
import selectors
import socket
import struct
import threading
import traceback

import _pat

from . import _patd, _protocol, _stream
from ._pool import WorkerPool, block_terminal_signals


# What Member.Run says of an ephemeral group whose last member has ended.
ENDED_GROUP_ERRORS = ("io.pat.GroupNotFound", "io.pat.GroupBusy", "io.pat.GroupUnavailable")


class _Link:
    """The pool's side of one worker."""

    __slots__ = ("socket", "theirs", "send_lock", "reader", "sources", "end_of_file")

    def __init__(self):
        self.socket, self.theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.send_lock = threading.Lock()
        self.reader = _stream.FrameReader()
        self.sources = {}  # task id -> the task's remote buffers, until GO
        self.end_of_file = False

    def send(self, data):
        with self.send_lock:
            self.socket.sendall(data)


class ProcessPool(WorkerPool):
    def __init__(self, executor):
        super().__init__(executor)
        self._group = None
        self._group_lock = threading.Lock()  # one worker at a time may create the group
        self._ended = collections.deque()     # (worker, status) posted by the ExitWatcher
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._selector.register(self._wake_read, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._run, name="pat.Executor manager", daemon=True)
        self._thread.start()

    @property
    def group(self):
        """The executor's own group (None before the first worker starts)."""
        return self._group

    # --- WorkerPool ----------------------------------------------------------

    def _prepare_link(self, worker):
        worker.link = _Link()
        # Another address space: initargs must be reachable from there (see
        # executor._init_body).
        init, _ = _stream.encode_object(_protocol.INIT, 0, self._executor._init_body(shared_address_space=False))
        worker.link.send(init)  # waits in the socket for the worker

    def _drop_link(self, worker):
        link = worker.link
        with self._lock:
            self._forget(link.socket)
        link.socket.close()
        link.theirs.close()

    def _launch(self, worker):
        link = worker.link
        program, environment, cwd = self._worker_context()
        argv = [program, "-m", "pat._worker", "stream", str(worker.number)]
        stdio, opened = _patd.member_stdio(stdin=link.theirs.fileno())
        try:
            member = self._run_member(program, argv, environment, cwd, stdio)
        finally:
            link.theirs.close()
            for fd in opened:
                os.close(fd)
        with self._lock:
            self._selector.register(link.socket, selectors.EVENT_READ, worker)
            os.write(self._wake_write, b"w")
        return member

    def _run_member(self, program, argv, environment, cwd, stdio):
        with self._group_lock:
            if self._group is not None:
                try:
                    return _patd.RunningMember(program, argv, environment, cwd, stdio, group=self._group)
                except _patd.PatdError as error:
                    if error.name not in ENDED_GROUP_ERRORS:
                        raise
                    # Every worker ended and the ephemeral group with them
                    # (or it is ending: its host exits once it is idle).
            member = _patd.RunningMember(program, argv, environment, cwd, stdio, new_group=True)
            self._group = member.group
            return member

    def send_task(self, worker, task):
        data, sources = _stream.encode_object(_protocol.TASK, task.id, task.call())
        if sources:
            worker.link.sources[task.id] = sources
        try:
            worker.link.send(data)
        except OSError:
            # The worker is gone: its Run stream tells, and this task, which
            # is the worker's now, fails then.
            pass

    def retire(self, worker):
        try:
            worker.link.socket.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # closed: it is gone

    def in_event_thread(self):
        return threading.current_thread() is self._thread

    def join(self):
        thread = self._thread
        if thread is not None and threading.current_thread() is not thread:
            thread.join()
            self._thread = None  # as SharedReceiver.join
        self._exits.join()

    def _report_exit(self, worker, status):
        with self._lock:
            self._ended.append((worker, status))
            os.write(self._wake_write, b"e")

    def _end_threads(self):
        os.write(self._wake_write, b"s")

    # --- the manager thread --------------------------------------------------

    def _forget(self, fileobj):
        try:
            self._selector.unregister(fileobj)
        except (KeyError, ValueError):
            pass  # never registered, or already forgotten

    def _run(self):
        block_terminal_signals()
        while True:
            for key, _ in self._selector.select():
                try:
                    if key.data is None:
                        try:
                            os.read(self._wake_read, 4096)
                        except BlockingIOError:
                            pass
                    else:
                        self._read(key.data)
                except Exception:  # a bug here must not stop every other worker's results
                    traceback.print_exc()
            with self._lock:
                ended, self._ended = list(self._ended), collections.deque()
            for worker, status in ended:
                try:
                    self._read(worker)  # its last words first
                    self._executor._worker_lost(worker, *status)
                except Exception:
                    traceback.print_exc()
            with self._lock:
                if self._finished and not self._ended:
                    break
        self._close()

    def _close(self):
        if self._group is not None:
            try:
                self._control.destroy_group(self._group, force=True, grace_ms=1000)
            except (_patd.PatdError, OSError):
                pass  # gone already: it was ephemeral
        self._selector.close()
        os.close(self._wake_read)
        os.close(self._wake_write)
        self._stopped()

    def _read(self, worker):
        link = worker.link
        while not link.end_of_file:
            try:
                # Non-blocking reads on a blocking socket: sends (from any
                # thread) may wait for room, reads here must not wait.
                data = link.socket.recv(1 << 20, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                data = b""
            if not data:
                link.end_of_file = True
                with self._lock:
                    self._forget(link.socket)
                break
            link.reader.feed(data)
        for kind, tag, body in link.reader.frames():
            self._handle(worker, kind, tag, body)

    def _handle(self, worker, kind, tag, body):
        executor = self._executor
        if kind in (_protocol.RESULT, _protocol.ERROR):
            executor._task_done(tag, kind, self._fetch_result(worker, tag, body))
        elif kind == _protocol.ALLOC:
            self._fill_arguments(worker, tag, body)
        elif kind == _protocol.UNREADABLE:
            executor._task_unreadable(tag, _stream.Body(body).load())
        elif kind == _protocol.INIT_FAILED:
            executor._initializer_failed(worker, _stream.Body(body).load())

    def _fill_arguments(self, worker, tag, body):
        """ALLOC: the worker has memory ready for the task's large buffers;
        copy them there (the one copy), then GO."""
        link = worker.link
        sources = link.sources.pop(tag, [])
        addresses = struct.unpack(f"<{len(body) // 8}Q", body)
        if len(addresses) != len(sources):
            raise RuntimeError(f"worker {worker.pid} announced {len(addresses)} buffers for task {tag}, "
                               f"which has {len(sources)}")
        for address, source in zip(addresses, sources):
            _pat.write_remote(worker.pid, address, source)
        link.send(_stream.frame(_protocol.GO, tag))

    def _fetch_result(self, worker, tag, body):
        """RESULT or ERROR: copies the result's large buffers out of the
        worker (the one copy), lets the worker drop them, and returns the
        function that unpickles the result."""
        worker.link.sources.pop(tag, None)
        received = _stream.Body(body)
        try:
            for index, address, length in received.remote:
                view = _stream.fresh_memory(length)
                _pat.read_remote(worker.pid, address, view)
                received.fill(index, view)
        except OSError as error:
            failure = error

            def load():
                raise RuntimeError(f"cannot copy the result out of pat.Executor worker {worker.pid}: {failure}")
            return load
        finally:
            if received.remote:
                try:
                    worker.link.send(_stream.frame(_protocol.RELEASE, tag))
                except OSError:
                    pass  # it is gone
        return received.load
