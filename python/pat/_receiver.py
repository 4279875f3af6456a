"""SharedReceiver: one channel's messages handled by whichever thread needs
them, one thread at a time (a leader/follower scheme).

Exactly one thread at a time holds the receiving role: it takes messages off
the channel and handles each before taking the next, so messages are
handled in the order they were queued (pat.Executor relies on it: a
worker's RESULT must be handled before its WORKER_GONE).

Usually the role belongs to a background reader thread. But a thread that
waits for something the channel will bring (future.result()) takes the role
itself and receives until its condition holds: a small task's result then
reaches the waiting thread directly, instead of through the reader and a
thread switch, which costs tens of microseconds on a virtual machine — most
of a small task's round trip.

- If the reader is blocked in receive when a waiter comes, the waiter queues
  YIELD on the channel; the reader handles it by letting go.
- When the last waiter leaves, the reader takes the role back only after
  READER_GRACE, so a loop of submit().result() keeps it in the loop's
  thread, and without waking the reader every time.
- While a thread waits, the reader sleeps. If waiters have come and gone
  within the last READER_BUSY_WINDOW (a loop of submit().result()), it
  sleeps READER_GRACE at a time and nobody wakes it: the last waiter
  leaving would otherwise wake it on every round trip, only for it to
  find the next waiter already inside (measured: 2.8 wake-ups of the
  reader and 3.6 context switches of the caller per round trip, most of a
  small task's time on a loaded machine). Otherwise it sleeps without a
  timeout and the last waiter to leave wakes it: a caller waiting a
  second for a result does not wake the reader every READER_GRACE (on a
  machine whose CPUs all run workers, each of those wake-ups preempted
  one).
- STOP on the channel ends the reader.
"""

import threading
import time

from . import _dataplane, _protocol
from .errors import ChannelClosed

READER_GRACE = 0.002
# Waiters that left within this long count as a busy loop (see above).
READER_BUSY_WINDOW = 0.01
# A thread waiting for the role re-checks this often even without a wake-up.
WAIT_SLICE = 0.05


class SharedReceiver:
    """Handles ``channel``'s messages with ``handle(message)`` (an
    IncomingMessage), in the reader thread or in threads inside
    :meth:`wait_for`. ``spin``: seconds a receive polls before sleeping."""

    def __init__(self, channel, limits, handle, name, spin=0.0, on_stopped=None, thread_setup=None):
        self._channel = channel
        self._limits = limits
        self._handle = handle
        self._spin = spin
        self._on_stopped = on_stopped
        self._thread_setup = thread_setup
        self._role = threading.RLock()  # reentrant: a handler may call wait_for (a future's callback)
        self._state = threading.Lock()
        self._reader_may_run = threading.Condition(self._state)
        self._role_changed = threading.Condition(self._state)
        self._waiters = 0        # threads inside wait_for
        self._blocked = 0        # of those, waiting on _role_changed
        self._last_wait = 0.0    # when the last waiter left
        self._reader_receiving = False
        self._reader_parked = False  # the reader sleeps until the last waiter leaves (it is not timed)
        self._yield_queued = False
        self._done = False
        self._handling = threading.local()  # .depth: handlers running in this thread
        self._reader = threading.Thread(target=self._read, name=name, daemon=True)
        self._reader.start()

    def wait_for(self, done, timeout=None):
        """Receives and handles messages in this thread until ``done()`` is
        true, ``timeout`` seconds pass, or the receiver stops."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._state:
            self._waiters += 1
        try:
            while not done():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return
                if self._role.acquire(blocking=False):
                    try:
                        self._receive_until(done, deadline)
                    finally:
                        self._release_role()
                    return
                with self._state:
                    ask_reader = self._reader_receiving and not self._yield_queued
                    if ask_reader:
                        self._yield_queued = True
                if ask_reader:
                    _dataplane.send(self._channel, self._limits, None, kind=_protocol.YIELD)
                with self._state:
                    if done() or self._done or not self._role_held_elsewhere():
                        continue
                    self._blocked += 1
                    self._role_changed.wait(WAIT_SLICE if remaining is None else min(remaining, WAIT_SLICE))
                    self._blocked -= 1
                if self._done:
                    return
        finally:
            with self._state:
                self._waiters -= 1
                self._last_wait = time.monotonic()
                if self._waiters == 0 and self._reader_parked:
                    self._reader_may_run.notify()

    def join(self):
        """Waits for the reader thread to end (after STOP), unless this is
        it."""
        reader = self._reader
        if reader is not None and threading.current_thread() is not reader:
            reader.join()
            # Nothing keeps the ended thread object: an executor's cycles
            # wait for the garbage collector, its ended threads need not.
            self._reader = None

    def handling_in_current_thread(self):
        """Whether this thread is inside ``handle`` (a future's callback,
        say): it must not wait for messages only it can receive."""
        return getattr(self._handling, "depth", 0) > 0

    def _role_held_elsewhere(self):
        if self._role.acquire(blocking=False):
            self._role.release()
            return False
        return True

    def _release_role(self):
        self._role.release()
        with self._state:
            if self._blocked:
                self._role_changed.notify_all()

    def _receive_until(self, done, deadline):
        while not done() and not self._done:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return
            try:
                message = _dataplane.receive(self._channel, remaining, spin=self._spin)
            except ChannelClosed:
                with self._state:
                    self._done = True
                    self._reader_may_run.notify()
                return
            if message is not None:
                self._dispatch(message)

    def _dispatch(self, message):
        """One message, with the role held."""
        kind = message.kind
        if kind == _protocol.YIELD:
            with self._state:
                self._yield_queued = False
            return
        if kind == _protocol.STOP:
            with self._state:
                self._done = True
                self._role_changed.notify_all()
                self._reader_may_run.notify()
            return
        self._handling.depth = getattr(self._handling, "depth", 0) + 1
        try:
            self._handle(message)
        finally:
            self._handling.depth -= 1
            with self._state:
                if self._blocked:
                    self._role_changed.notify_all()

    def _read(self):
        if self._thread_setup:
            self._thread_setup()
        while self._take_role_for_reader():
            try:
                try:
                    message = _dataplane.receive(self._channel)
                except ChannelClosed:
                    message = None
                with self._state:
                    self._reader_receiving = False
                    if message is None:
                        self._done = True
                if message is not None:
                    self._dispatch(message)
                del message
            finally:
                self._release_role()
        if self._on_stopped:
            self._on_stopped()

    def _take_role_for_reader(self):
        """Waits until no thread waits and READER_GRACE has passed, then takes
        the role; False once stopped."""
        with self._state:
            while not self._done:
                if self._waiters:
                    if time.monotonic() - self._last_wait < READER_BUSY_WINDOW:
                        # A busy loop of waiters: look again after the grace, unasked.
                        self._reader_may_run.wait(READER_GRACE)
                        continue
                    # Woken by the last waiter to leave (wait_for), or by STOP.
                    self._reader_parked = True
                    self._reader_may_run.wait()
                    self._reader_parked = False
                    continue
                idle_for = time.monotonic() - self._last_wait
                if idle_for >= READER_GRACE:
                    if self._role.acquire(blocking=False):
                        self._reader_receiving = True
                        return True
                    idle_for = 0.0  # a waiter is just leaving: look again shortly
                # Timed: waiters that come and go within the grace wake nobody.
                self._reader_may_run.wait(READER_GRACE - idle_for)
            return False
