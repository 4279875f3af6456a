"""A pat.Executor worker, one member of the group started through patd.

    pat-python -m pat._worker channels RESULTS TASKS NUMBER
        The caller is a member of the same group: tasks arrive on the group
        channel TASKS (this worker's own), results go to RESULTS (shared by
        the executor's workers). Buffers travel by reference.
    pat-python -m pat._worker stream NUMBER
        The caller is not a member: fd 0 is a Unix socket to it
        (pat._stream); the caller copies buffers once with process_vm_*.

The first message is INIT: the caller's multiprocessing preparation data
(sys.path, working directory, its main module, which is imported as
``__mp_main__`` exactly as the spawn start method does, so functions defined
in a script's ``if __name__ == "__main__"``-guarded body are not re-run) and
the initializer. Then the worker runs tasks one at a time until its task
stream is closed (after the tasks queued before) or the caller goes away.
pat._protocol lists the messages.

A worker ends, as ProcessPoolExecutor's do, when its initializer raises
(logged on the ``concurrent.futures`` logger first, where a QueueHandler
passed in initargs finds it) and when a task cannot be unpickled: the
caller then breaks the executor. It ignores SIGHUP: patd sends it when the
connection that started the worker closes, which a patd restart does too;
the worker learns that its caller is gone from its task stream instead.
"""

import os
import pickle
import socket
import struct
import sys

from . import _protocol

# While a worker holds zero-copy results that the caller may still be
# reading, it wakes up this often to drop the ones the caller has let go.
IDLE_PRUNE_SECONDS = 0.5
# After each task a worker polls its channel this long before it may sleep:
# the next task of a busy caller usually comes sooner, and a sleeping
# worker costs tens of microseconds to wake (see _pat.Channel.receive).
NEXT_TASK_SPIN_SECONDS = 500e-6


def prepare(preparation, initializer_pickle):
    """Makes this interpreter look like the caller's (multiprocessing.spawn's
    own preparation), then runs the initializer. Its failure is logged as
    ProcessPoolExecutor's workers log it, then raised."""
    import multiprocessing.process
    import multiprocessing.spawn
    # Like a spawn child while it bootstraps: an Executor made at import time
    # of the main module (no __main__ guard) fails with multiprocessing's
    # explanation instead of starting workers recursively.
    current = multiprocessing.process.current_process()
    current._inheriting = True
    try:
        multiprocessing.spawn.prepare(preparation)
    finally:
        del current._inheriting
    try:
        initializer, initargs = pickle.loads(initializer_pickle)
        if initializer is not None:
            initializer(*initargs)
    except BaseException:  # noqa: B902 - logged, then reported by the caller of prepare
        import logging
        logging.getLogger("concurrent.futures").critical("Exception in initializer:", exc_info=True)
        raise


def _ignore_hang_up():
    import signal
    # A Python-level handler, not SIG_IGN: a handler is reset to the default
    # on exec, so programs a task starts get SIGHUP as usual.
    signal.signal(signal.SIGHUP, lambda signum, frame: None)


class ChannelWorker:
    """The worker of a member caller: everything through group channels."""

    def __init__(self, results_name, tasks_name, number):
        import _pat
        from . import _dataplane
        self._dataplane = _dataplane
        self.number = number
        # The caller opened both before starting us, with their limits.
        self.tasks = _pat.Channel(tasks_name, "receive")
        self.results = _pat.Channel(results_name, "send")
        self.limits = self.results.limits

    def send(self, kind, tag, body):
        _protocol.send_answer(self._send, kind, tag, body)

    def _send(self, kind, tag, body):
        self._dataplane.send(self.results, self.limits, body, kind=kind, tag=tag)

    def run(self):
        from .errors import ChannelClosed, PeerDied
        exports = self._dataplane.exports
        try:
            init = self._dataplane.receive(self.tasks)
            try:
                prepare(*init.load())
            except BaseException as exc:  # noqa: B902 - reported to the caller, then this worker ends
                self.send(_protocol.INIT_FAILED, self.number, _protocol.error_body(exc)[1])
                return 1
            del init
            while True:
                message = self._dataplane.receive(self.tasks, IDLE_PRUNE_SECONDS if len(exports) else None,
                                                  spin=NEXT_TASK_SPIN_SECONDS)
                if message is None:
                    exports.prune()
                    continue
                if message.kind != _protocol.TASK:
                    continue
                tag = message.tag
                try:
                    kind, body = _protocol.run_task(message.load)
                except _protocol.Unreadable as unreadable:
                    self.send(_protocol.UNREADABLE, tag, unreadable.args[0])
                    return 1
                # The arguments' buffers go before the result does, so the
                # caller finds their references dropped when it reads it.
                del message
                self.send(kind, tag, body)
                del body
        except (ChannelClosed, PeerDied):
            return 0  # shut down, or the caller is gone


class StreamWorker:
    """The worker of a caller outside the group: one socket, buffers copied
    once by the caller (pat._stream)."""

    def __init__(self, number):
        from . import _stream
        self._stream = _stream
        self.number = number
        # fd 0 is the socket: move it away so that a task reading stdin reads
        # /dev/null instead of the protocol.
        connection_fd = os.dup(0)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        self.socket = socket.socket(fileno=connection_fd)
        self.reader = _stream.FrameReader()
        self.held = {}  # task id -> sources of the result's buffers, until RELEASE

    def send_frame(self, data):
        self.socket.sendall(data)

    def send_object(self, kind, tag, body):
        _protocol.send_answer(self._send_object, kind, tag, body)

    def _send_object(self, kind, tag, body):
        data, sources = self._stream.encode_object(kind, tag, body)
        if sources:
            self.held[tag] = sources
        self.send_frame(data)

    def next_frame(self, wanted=None, tag=None):
        """The next frame (of kind ``wanted`` for ``tag``, if given), handling
        RELEASE frames on the way; None when the caller has gone."""
        while True:
            item = self.reader.read_frame(self.socket)
            if item is None:
                return None
            kind, frame_tag, body = item
            if kind == _protocol.RELEASE:
                self.held.pop(frame_tag, None)
                continue
            if wanted is None or (kind == wanted and frame_tag == tag):
                return item

    def receive_task_body(self, tag, payload):
        """The task's Body with every buffer in this worker's memory: large
        ones are announced (ALLOC) and written by the caller (GO)."""
        import _pat
        body = self._stream.Body(payload)
        if body.remote:
            addresses = []
            for index, _address, length in body.remote:
                view = self._stream.fresh_memory(length)
                body.fill(index, view)
                addresses.append(_pat.address_of(view)[0])
            self.send_frame(self._stream.frame(_protocol.ALLOC, tag, struct.pack(f"<{len(addresses)}Q", *addresses)))
            if self.next_frame(_protocol.GO, tag) is None:
                return None
        return body

    def run(self):
        try:
            return self._serve()
        except (BrokenPipeError, ConnectionResetError):
            return 0  # the caller closed the connection or died

    def _serve(self):
        init = self.next_frame()
        if init is None:
            return 0
        try:
            prepare(*self._stream.Body(init[2]).load())
        except BaseException as exc:  # noqa: B902 - reported to the caller, then this worker ends
            self.send_object(_protocol.INIT_FAILED, self.number, _protocol.error_body(exc)[1])
            return 1
        del init
        while True:
            item = self.next_frame()
            if item is None:
                return 0  # the caller closed the connection or died
            kind, tag, payload = item
            if kind != _protocol.TASK:
                continue
            body = self.receive_task_body(tag, payload)
            if body is None:
                return 0
            try:
                result_kind, result = _protocol.run_task(body.load)
            except _protocol.Unreadable as unreadable:
                self.send_object(_protocol.UNREADABLE, tag, unreadable.args[0])
                return 1
            del body, payload
            self.send_object(result_kind, tag, result)
            del result


def main(argv):
    mode = argv[0] if argv else ""
    if mode == "channels" and len(argv) == 4:
        worker = ChannelWorker(argv[1], argv[2], int(argv[3]))
    elif mode == "stream" and len(argv) == 2:
        worker = StreamWorker(int(argv[1]))
    else:
        sys.stderr.write(__doc__)
        return 2
    _ignore_hang_up()
    return worker.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
