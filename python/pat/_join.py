"""pat.join(): the calling interpreter moves into a group while it runs
(docs/attach.md "pat.join()").

The interpreter asks patd to attach its own PID (io.pat.Group.Attach) and
waits for the reply. The group's host seizes it meanwhile, this thread
included: the thread is stopped inside the recv() of that wait, and the
kernel restarts the recv() in the member, on the same open socket (fds move
with their open file descriptions, pidfd_getfd). patd replies only once the
host's attach has returned, that is after the switch, so the reply is read
by the member, and join() returns inside the group.
"""

import os
import signal

import _pat

from . import _patd
from .errors import Error


class JoinRefused(Error):
    """patd or the group's host refused pat.join(): ``name`` is patd's error
    name (io.pat.NotAttachable, io.pat.AddressConflict, io.pat.GroupNotFound,
    io.pat.PermissionDenied...), ``parameters`` its parameters (for
    NotAttachable, ``reason``: has_children, own_seccomp, ...;
    docs/attach.md "What cannot be attached"). The process runs on as before,
    outside any group."""

    def __init__(self, name, parameters):
        self.name = name
        self.parameters = parameters
        self.reason = parameters.get("reason") if isinstance(parameters, dict) else None
        message = parameters.get("message", "") if isinstance(parameters, dict) else ""
        super().__init__(f"pat.join: {message or name} ({name})")


def join(group=None):
    """Moves this running interpreter, all its threads, into a pat group and
    returns the group's name, once it runs inside it.

    The group is ``group`` if given, else the one named by ``$PAT_GROUP``,
    else a new group of the caller's, removed when its last member ends.
    Afterwards this process shares memory with the group's members:
    pat.Executor's workers are members of the same group and take its
    arrays by reference, and pat.Channel and pat.buffer work.

    What changes for the process: ``os.getpid()`` returns its PID as a
    member; its original PID stays with a stub that forwards signals and
    ends as the member ends, so its parent and shell see no difference
    (docs/attach.md). $PAT_GROUP and $PAT_ARENA are set in ``os.environ``,
    as for members started by ``patctl run``.

    Already a member of that group: returns its name. Raises
    :class:`JoinRefused` when the process cannot be attached (it has
    children, is traced, has seccomp filters of its own...: ``reason``) or
    the group cannot take it; the process then runs on as before.
    ``ConnectionError`` when patd cannot be reached.
    """
    if _pat.in_group():
        current = _pat.group_name()
        if group is None or group == current:
            return current
        raise Error(f"pat.join: this process is a member of group {current!r} already; "
                    f"a member cannot move to another group ({group!r})")
    wanted = group if group is not None else (os.environ.get("PAT_GROUP") or None)
    # Signals wait in this thread until the reply is read (they move with
    # the process, pending): a handler raising here (KeyboardInterrupt)
    # would abandon the request while the attach goes on, and the process
    # would end up in the group without knowing it.
    held = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        with _patd.Connection() as patd:
            reply = patd.attach([os.getpid()], group=wanted)
    except _patd.PatdError as error:
        raise JoinRefused(error.name, error.parameters) from None
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
    # Here the process is a member (os.getpid() is its new pid).
    for entry in reply.get("env", []):
        name, _, value = entry.partition("=")
        os.environ[name] = value
    # libpat looked once (in_group() above) and keeps that answer unless
    # told to look again. False here only when the group has no data plane
    # (its host could not map the arena); the process shares the group's
    # address space all the same.
    _pat.look_for_group()
    return reply["group"]
