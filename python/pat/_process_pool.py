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

One manager thread polls every worker's socket and pidfd. When a pidfd
fires, what the worker sent before it ended is read first, then the
executor learns of its death.
"""

import os
import selectors
import socket
import struct
import threading
import traceback

import _pat

from . import _patd, _protocol, _stream
from ._member_pool import _block_terminal_signals


class _Link:
    """The pool's side of one worker."""

    __slots__ = ("socket", "send_lock", "reader", "pidfd", "sources", "end_of_file")

    def __init__(self, sock):
        self.socket = sock
        self.send_lock = threading.Lock()
        self.reader = _stream.FrameReader()
        self.pidfd = None
        self.sources = {}  # task id -> the task's remote buffers, until GO
        self.end_of_file = False

    def send(self, data):
        with self.send_lock:
            self.socket.sendall(data)


class ProcessPool:
    def __init__(self, executor):
        self._executor = executor
        self._program = _patd.pat_python()
        self._patd = _patd.Connection()
        self._group = None
        self._preparation = executor._preparation()
        self._lock = threading.Lock()
        self._workers = {}
        self._stopping = False
        self._finished = False
        self._on_stopped = None
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._selector.register(self._wake_read, selectors.EVENT_READ, ("wake", None))
        self._thread = threading.Thread(target=self._run, name="pat.Executor manager", daemon=True)
        self._thread.start()

    @property
    def group(self):
        """The executor's own group (None before the first worker starts)."""
        return self._group

    # --- called by the executor ---------------------------------------------

    def start_worker(self, worker):
        """Starts ``worker``; False (and nothing started) once the pool is
        stopping: a replacement decided just before a shutdown must not
        outlive it."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        link = _Link(ours)
        worker.link = link
        init, _ = _stream.encode_object(_protocol.INIT, 0, self._preparation)
        link.send(init)  # waits in the socket for the worker
        with self._lock:
            if self._stopping:
                ours.close()
                theirs.close()
                return False
            # Registered before it runs: stop() ends its connection even if it
            # comes while the worker starts.
            self._workers[worker.number] = worker
        argv = [self._program, "-m", "pat._worker", "stream", str(worker.number)]
        stdio, opened = _patd.member_stdio(stdin=theirs.fileno())
        try:
            worker.pid = self._run_member(argv, stdio)
        except BaseException:
            with self._lock:
                self._workers.pop(worker.number, None)
                finish = self._stopping and not self._workers
            ours.close()
            if finish:
                self._finish()
            raise
        finally:
            theirs.close()
            for fd in opened:
                os.close(fd)
        try:
            link.pidfd = os.pidfd_open(worker.pid)
        except ProcessLookupError:
            link.pidfd = None  # ended already: its socket's end of file tells
        with self._lock:
            self._selector.register(ours, selectors.EVENT_READ, ("socket", worker))
            if link.pidfd is not None:
                self._selector.register(link.pidfd, selectors.EVENT_READ, ("pidfd", worker))
            os.write(self._wake_write, b"w")
        return True

    def _run_member(self, argv, stdio):
        environment = dict(os.environ)
        cwd = os.getcwd()
        if self._group is not None:
            try:
                pid, _ = self._patd.run_detached(self._program, argv, environment, cwd, stdio, group=self._group)
                return pid
            except _patd.PatdError as error:
                if error.name != "io.pat.GroupNotFound":
                    raise
                # Every worker ended and the ephemeral group with them.
        pid, self._group = self._patd.run_detached(self._program, argv, environment, cwd, stdio, new_group=True)
        return pid

    def send_task(self, worker, task):
        data, sources = _stream.encode_object(_protocol.TASK, task.id, task.call())
        if sources:
            worker.link.sources[task.id] = sources
        try:
            worker.link.send(data)
        except OSError:
            # The worker is gone: its pidfd tells the manager thread, and this
            # task, which is the worker's now, fails with WorkerDied then.
            pass

    def worker_gone(self, worker):
        link = worker.link
        with self._lock:
            self._workers.pop(worker.number, None)
            self._forget(link.socket)
            if link.pidfd is not None:
                self._forget(link.pidfd)
            finish = self._stopping and not self._workers
        link.socket.close()
        if link.pidfd is not None:
            os.close(link.pidfd)
            link.pidfd = None
        if finish:
            self._finish()

    def _forget(self, fileobj):
        try:
            self._selector.unregister(fileobj)
        except (KeyError, ValueError):
            pass  # never registered, or already forgotten

    def stop(self, on_stopped):
        """Ends every worker's connection (they exit when idle), then
        destroys the group; then calls on_stopped()."""
        with self._lock:
            self._stopping = True
            self._on_stopped = on_stopped
            workers = list(self._workers.values())
        for worker in workers:
            try:
                worker.link.socket.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # closed: it failed to start, or is gone
        if not workers:
            self._finish()

    def in_event_thread(self):
        """Whether this is the manager thread (running a future's callback):
        it cannot wait for the pool to stop."""
        return threading.current_thread() is self._thread

    # --- the manager thread --------------------------------------------------

    def _finish(self):
        with self._lock:
            if self._finished:
                return
            self._finished = True
            os.write(self._wake_write, b"s")

    def _run(self):
        _block_terminal_signals()
        while True:
            with self._lock:
                if self._finished:
                    break
            for key, _ in self._selector.select():
                what, worker = key.data
                try:
                    if what == "wake":
                        try:
                            os.read(self._wake_read, 4096)
                        except BlockingIOError:
                            pass
                    elif what == "socket":
                        self._read(worker)
                    else:  # the pidfd: the worker ended
                        with self._lock:
                            self._forget(key.fd)
                        self._read(worker)  # its last words first
                        self._lost(worker)
                except Exception:  # a bug here must not stop every other worker's results
                    traceback.print_exc()
        self._close()

    def _close(self):
        if self._group is not None:
            try:
                self._patd.destroy_group(self._group, force=True, grace_ms=1000)
            except (_patd.PatdError, OSError):
                pass  # gone already: it was ephemeral
        self._patd.close()
        self._selector.close()
        os.close(self._wake_read)
        os.close(self._wake_write)
        if self._on_stopped:
            self._on_stopped()

    def _read(self, worker):
        link = worker.link
        reached_end = False
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
                link.end_of_file = reached_end = True
                with self._lock:
                    self._forget(link.socket)
                break
            link.reader.feed(data)
        for kind, tag, body in link.reader.frames():
            self._handle(worker, kind, tag, body)
        if reached_end and link.pidfd is None:
            # Gone before its pidfd could be opened: nothing else will tell.
            # (Otherwise the pidfd says when the worker has ended.)
            self._lost(worker)

    def _lost(self, worker):
        exit_code, signal = (None, None)
        if self._group is not None:
            exit_code, signal = _patd.exit_status(self._patd, self._group, worker.pid)
        self._executor._worker_lost(worker, exit_code, signal)

    def _handle(self, worker, kind, tag, body):
        executor = self._executor
        if kind in (_protocol.RESULT, _protocol.ERROR):
            executor._task_done(tag, kind, self._fetch_result(worker, tag, body))
        elif kind == _protocol.ALLOC:
            self._fill_arguments(worker, tag, body)
        elif kind == _protocol.READY:
            executor._worker_ready(worker)
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
