"""A small client of patd's control protocol (README "The control
protocol"), enough for pat.Executor to start and watch its workers.

Each message is one JSON object followed by a NUL byte, over a Unix stream
socket; file descriptors (a member's stdin, stdout and stderr) travel beside
a call with SCM_RIGHTS. Errors come back as ``{"error": name, "parameters":
{..., "message": text}}`` and are raised as :class:`PatdError`.

The socket is $PATD_SOCKET, else /run/patd/patd.sock; patctl sets
PATD_SOCKET in the members it starts.
"""

import json
import os
import socket
import threading

DEFAULT_SOCKET = "/run/patd/patd.sock"
# patd caps a message at 1 MiB (README).
MAX_MESSAGE = 1 << 20


class PatdError(Exception):
    """patd refused a call: ``name`` is the error's name (e.g.
    'io.pat.GroupNotFound'), ``parameters`` its parameters."""

    def __init__(self, name, parameters):
        self.name = name
        self.parameters = parameters
        message = parameters.get("message", "") if isinstance(parameters, dict) else ""
        super().__init__(f"{message} ({name})" if message else name)


def socket_path():
    return os.environ.get("PATD_SOCKET") or DEFAULT_SOCKET


class Connection:
    """One connection to patd. Calls are serialized: patd answers them in
    order, and a lock keeps two threads' replies apart."""

    def __init__(self, path=None):
        self.path = path or socket_path()
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            self._socket.connect(self.path)
        except OSError as error:
            self._socket.close()
            raise ConnectionError(f"cannot reach patd at {self.path}: {error.strerror} "
                                  "(is patd running? PATD_SOCKET names its socket)") from None
        self._received = bytearray()
        self._lock = threading.Lock()

    def call(self, method, parameters, fds=()):
        """The reply's parameters; raises PatdError for an error reply."""
        message = json.dumps({"method": method, "parameters": parameters}).encode() + b"\0"
        if len(message) > MAX_MESSAGE:
            raise ValueError(f"{method}: the call is {len(message)} bytes, patd takes at most {MAX_MESSAGE}")
        with self._lock:
            if fds:
                # The fds go with the first bytes; patd attaches them to the
                # frame they arrive with (daemon/rpc/framed_socket.cc).
                sent = socket.send_fds(self._socket, [message], list(fds))
                self._socket.sendall(message[sent:])
            else:
                self._socket.sendall(message)
            reply = self._read_frame()
        if "error" in reply:
            raise PatdError(reply["error"], reply.get("parameters", {}))
        return reply.get("parameters", {})

    def _read_frame(self):
        while True:
            end = self._received.find(b"\0")
            if end >= 0:
                frame = bytes(self._received[:end])
                del self._received[:end + 1]
                return json.loads(frame)
            chunk = self._socket.recv(65536)
            if not chunk:
                raise ConnectionError(f"patd at {self.path} closed the connection")
            self._received += chunk

    def close(self):
        self._socket.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # --- the calls pat.Executor makes ------------------------------------

    def run_detached(self, program, argv, env, cwd, stdio, group=None, new_group=False):
        """io.pat.Member.Run with detach: starts ``program`` as a member of
        ``group`` (or of a new ephemeral group, removed when its last member
        ends) with ``stdio`` = (stdin, stdout, stderr) fds. (pid, group)."""
        parameters = {"program": program, "argv": list(argv), "env": [f"{k}={v}" for k, v in env.items()],
                      "cwd": cwd, "detach": True}
        if new_group:
            parameters["new_group"] = True
        else:
            parameters["group"] = group
        reply = self.call("io.pat.Member.Run", parameters, fds=stdio)
        return reply["pid"], reply["group"]

    def show_group(self, name):
        return self.call("io.pat.Group.Show", {"name": name})["group"]

    def destroy_group(self, name, force=True, grace_ms=1000):
        self.call("io.pat.Group.Destroy", {"name": name, "force": force, "grace_ms": grace_ms})

    def signal_member(self, group, pid, signal):
        self.call("io.pat.Member.Signal", {"group": group, "pid": pid, "signal": signal})


def exit_status(connection, group, pid, wait_seconds=1.0):
    """(exit_code, signal) of member ``pid`` from ``group``'s recent_exits,
    each None when unknown. A member's pidfd reports its end before its host
    has reaped it and recorded how it ended, so this asks again for up to
    ``wait_seconds``."""
    import time
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            shown = connection.show_group(group)
        except (PatdError, OSError):
            return None, None  # the group is gone (an ephemeral one ends with its last member)
        for entry in shown.get("recent_exits", []):
            if entry.get("pid") == pid:
                return entry.get("exit_code"), entry.get("signal")
        if time.monotonic() >= deadline:
            return None, None
        time.sleep(0.02)


def pat_python():
    """The pat-python of this pat installation: <prefix>/bin/pat-python,
    <prefix> being four levels above this package (lib/pat/python/pat)."""
    import pathlib
    import sys
    candidate = pathlib.Path(__file__).resolve().parents[4] / "bin" / "pat-python"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    if os.path.basename(sys.executable).startswith("pat-python"):
        return sys.executable
    raise FileNotFoundError(f"pat-python is not at {candidate}, where this pat package expects it")


def member_stdio(stdin=None):
    """(fds, to_close): the (stdin, stdout, stderr) of a worker member —
    ``stdin`` or /dev/null, and this process's own stdout and stderr (or
    /dev/null where those are closed) — and the fds opened here, for the
    caller to close once the Run call has passed them."""
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    fds = [null if stdin is None else stdin]
    for fd in (1, 2):
        try:
            os.fstat(fd)
            fds.append(fd)
        except OSError:
            fds.append(null)
    return fds, [null]
