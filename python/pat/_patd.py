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

    def call(self, method, parameters, fds=(), more=False):
        """The reply's parameters; raises PatdError for an error reply. With
        ``more``, the first reply of a stream: read the others with
        :meth:`next_reply`."""
        call = {"method": method, "parameters": parameters}
        if more:
            call["more"] = True
        message = json.dumps(call).encode() + b"\0"
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
            return _parameters(self._read_frame())

    def next_reply(self):
        """The next reply of a stream started with ``call(..., more=True)``;
        raises PatdError for an error reply, ConnectionError if patd went
        away first."""
        with self._lock:
            return _parameters(self._read_frame())

    def fileno(self):
        return self._socket.fileno()

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

    def run(self, program, argv, env, cwd, stdio, group=None, new_group=False):
        """io.pat.Member.Run, streaming: starts ``program`` as a member of
        ``group`` (or of a new ephemeral group) and returns (pid, group); the
        stream's last reply, read with :meth:`next_reply`, says how the
        member ended. This connection is the member's from now on."""
        parameters = {"program": program, "argv": list(argv), "env": [f"{k}={v}" for k, v in env.items()],
                      "cwd": cwd}
        if new_group:
            parameters["new_group"] = True
        else:
            parameters["group"] = group
        reply = self.call("io.pat.Member.Run", parameters, fds=stdio, more=True)
        return reply["pid"], reply["group"]

    def attach(self, pids, group=None):
        """io.pat.Group.Attach: moves the running processes ``pids`` into
        ``group``, or into a new ephemeral group when ``group`` is None;
        returns the reply (group, attached, env)."""
        parameters = {"pids": list(pids)}
        if group is None:
            parameters["new_group"] = True
        else:
            parameters["name"] = group
        return self.call("io.pat.Group.Attach", parameters)

    def show_group(self, name):
        return self.call("io.pat.Group.Show", {"name": name})["group"]

    def destroy_group(self, name, force=True, grace_ms=1000):
        self.call("io.pat.Group.Destroy", {"name": name, "force": force, "grace_ms": grace_ms})

    def signal_member(self, group, pid, signal):
        self.call("io.pat.Member.Signal", {"group": group, "pid": pid, "signal": signal})


def _parameters(reply):
    if "error" in reply:
        raise PatdError(reply["error"], reply.get("parameters", {}))
    return reply.get("parameters", {})


class RunningMember:
    """A member started with a streaming io.pat.Member.Run, watched until it
    ends: its connection becomes readable when the member has ended (the
    host replies once it has reaped it), and :meth:`ended` reads how.

    Why the Run stream rather than a pidfd plus io.pat.Group.Show: the
    exit status comes on the call that started the member, after its host
    has reaped it, so there is nothing to poll and no window in which the
    member is gone but its status unknown. The member gets SIGHUP if this
    connection closes (patd's rule for foreground members, README); pat's
    workers ignore SIGHUP, so a patd restart leaves them running: the stream
    then ends without a status and :meth:`ended` says so (None), and the
    watcher falls back to the member's pidfd (see pat._pool.ExitWatcher)."""

    def __init__(self, program, argv, env, cwd, stdio, group=None, new_group=False):
        self._connection = Connection()
        try:
            self.pid, self.group = self._connection.run(program, argv, env, cwd, stdio, group=group,
                                                        new_group=new_group)
        except BaseException:
            self._connection.close()
            raise

    def fileno(self):
        return self._connection.fileno()

    def ended(self):
        """(exit_code, signal), each None when unknown, once the connection
        is readable; None if patd went away before the member ended."""
        try:
            reply = self._connection.next_reply()
        except (ConnectionError, OSError, ValueError):
            return None
        except PatdError:
            return None, None  # the host was lost while the member ran
        return reply.get("exit_code"), reply.get("signal")

    def close(self):
        self._connection.close()


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
