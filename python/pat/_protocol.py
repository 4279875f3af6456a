"""What a pat.Executor and its workers say to each other, whatever carries
it (group channels, :mod:`pat._member_pool`, or a socket,
:mod:`pat._process_pool`). Every message has a kind, a tag (a task id, or a
worker's number) and a pickled body.

Caller to worker:
  INIT     tag 0     body: (preparation data, pickled (initializer, initargs))
  TASK     task id   body: (fn, args, kwargs)
  GO       task id   (socket only) the task's buffers are in place
  RELEASE  task id   (socket only) the caller has copied the result's buffers
Worker to caller:
  INIT_FAILED  worker number  body: the initializer's traceback, as text;
                              the worker ends
  UNREADABLE   task id        body: why the task could not be unpickled, as
                              text; the worker ends (ProcessPoolExecutor's
                              worker dies there: the pool is broken)
  RESULT       task id        body: the return value
  ERROR        task id        body: (exception or None, traceback text)
  ALLOC        task id        (socket only) body: where the task's buffers go
Caller to itself (member pool: queued behind the worker's last messages):
  WORKER_GONE  worker number  body: (exit_code, signal), each None if unknown
  YIELD        0              the reader thread lets a waiting thread receive
  STOP         0              the reader thread ends
A worker ends when its task stream is closed (after the tasks queued
before), or when the caller is gone.
"""

import traceback

INIT = 1
TASK = 2
GO = 3
RELEASE = 4
INIT_FAILED = 11
RESULT = 12
ERROR = 13
ALLOC = 14
UNREADABLE = 15
WORKER_GONE = 20
STOP = 21
YIELD = 22

NAMES = {value: name for name, value in globals().items() if name.isupper() and isinstance(value, int)}


class Unreadable(Exception):
    """The task's body could not be unpickled here (text: the traceback)."""


def run_task(load):
    """Runs the task whose body ``load()`` unpickles; (RESULT, value) or
    (ERROR, (exception, traceback text)). Everything the call raises is its
    result, SystemExit and KeyboardInterrupt included, as in
    ProcessPoolExecutor. Raises Unreadable if ``load()`` fails."""
    try:
        fn, args, kwargs = load()
    except BaseException as exc:  # noqa: B902 - whatever unpickling raised, SystemExit too
        raise Unreadable(error_body(exc)[1]) from None
    try:
        return RESULT, fn(*args, **kwargs)
    except BaseException as exc:  # noqa: B902 - the task's outcome, whatever it is
        return ERROR, error_body(exc)
    finally:
        del fn, args, kwargs  # the arguments go now (their __del__ may matter to the caller)


def error_body(exc):
    """(exception, traceback text) with the traceback rendered now, in the
    worker; the exception object itself is dropped later if it cannot be
    pickled (see send_answer)."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    exc.__traceback__ = None  # frames hold the task's arguments: let them go
    return exc, text


def send_answer(send, kind, tag, body):
    """Sends a worker's answer with ``send(kind, tag, body)`` whatever its
    body holds. If pickling it raises (anything, SystemExit too), that error
    is the task's exception instead, as ProcessPoolExecutor's workers send
    back whatever pickling a result raised; if that error does not pickle
    either, its traceback alone (text always pickles). Only a failure of
    the transport itself (the caller is gone) leaves this function."""
    try:
        send(kind, tag, body)
        return
    except BaseException as failure:  # noqa: B902 - a __reduce__ may raise anything
        fallback = error_body(failure)
    del body
    try:
        send(ERROR, tag, fallback)
    except BaseException:  # noqa: B902 - the pickling error itself does not pickle
        send(ERROR, tag, (None, fallback[1]))


def run_chunk(fn, chunk):
    """One chunk of Executor.map: the results of fn(*args) for each args in
    ``chunk``, as ProcessPoolExecutor's _process_chunk."""
    return [fn(*args) for args in chunk]
