"""Every way a pat.Executor task can fail, before, during and after it
reaches a worker, ends its future as ProcessPoolExecutor's would end, and
leaving ``with pat.Executor(...)`` returns. Runs as a member and outside any group (pat_package_test.py
ExecutorFailures runs it both ways).

Each case is bounded: faulthandler dumps every thread's stack and ends this
process with exit code 1 if a case overruns CASE_SECONDS, so a regression
fails with the place it hangs instead of hanging the test run. Prints one
line per case, then "ok".

    executor_failures.py [CASE ...]     (default: every case)
"""
import faulthandler
import os
import pickle
import signal
import sys
import threading
import time
from concurrent import futures
from concurrent.futures.process import BrokenProcessPool, _RemoteTraceback

import pat

CASE_SECONDS = 60
RESULT_SECONDS = 30


# --- objects that fail on the way ----------------------------------------

class RaiseAtPickle:
    """Pickling it raises ``error``."""

    def __init__(self, error):
        self.error = error

    def __reduce__(self):
        raise self.error


def _raise(error):
    raise error


class RaiseAtUnpickle:
    """Pickles fine; unpickling it raises ``error``."""

    def __init__(self, error):
        self.error = error

    def __reduce__(self):
        return _raise, (self.error,)


def _kill_myself(*_):
    os.kill(os.getpid(), signal.SIGKILL)


class CrashAtUnpickle:
    """Unpickling it kills the process that unpickles it."""

    def __reduce__(self):
        return _kill_myself, ()


class UnpicklableError(Exception):
    """An exception that cannot be pickled: it holds a lock."""

    def __init__(self):
        super().__init__("holds a lock")
        self.lock = threading.Lock()


# --- what the tasks do -----------------------------------------------------

def identity(value):
    return value


def square(x):
    return x * x


def return_pickle_failure(error):
    return RaiseAtPickle(error)


def return_unpickle_failure(error):
    return RaiseAtUnpickle(error)


def return_lambda():
    return lambda: None


def return_unpicklable_pickle_failure():
    return RaiseAtPickle(UnpicklableError())


def raise_it(error):
    raise error


def raise_unpicklable():
    raise UnpicklableError()


def exit_with(code):
    sys.exit(code)


def pid():
    return os.getpid()


def nap(seconds):
    time.sleep(seconds)
    return seconds


def failing_initializer():
    raise ValueError("initializer failed on purpose")


# --- checks ----------------------------------------------------------------

def failure_of(future):
    """The exception ``future`` ended with (it must end, and not well)."""
    try:
        result = future.result(timeout=RESULT_SECONDS)
    except futures.TimeoutError:
        raise AssertionError(f"{future!r} did not end within {RESULT_SECONDS} s") from None
    except BaseException as error:  # noqa: B902 - SystemExit and KeyboardInterrupt are outcomes here
        assert future.exception(timeout=0) is error
        return error
    raise AssertionError(f"{future!r} succeeded with {result!r}")


def expect(future, *types):
    error = failure_of(future)
    assert isinstance(error, types), f"expected {types}, got {error!r}"
    return error


def expect_broken(executor, future):
    """``future`` failed with BrokenProcessPool and the executor refuses
    new work, as a ProcessPoolExecutor whose worker died."""
    error = expect(future, BrokenProcessPool)
    try:
        executor.submit(square, 1)
    except BrokenProcessPool:
        return error
    raise AssertionError("a broken executor accepted a task")


def expect_pickling_error(future, *types):
    """Failed in the caller, before reaching a worker: the error carries
    its traceback as __cause__, as ProcessPoolExecutor's does."""
    error = expect(future, *types)
    assert type(error.__cause__) is _RemoteTraceback, repr(error.__cause__)
    return error


PICKLING_ERRORS = (pickle.PicklingError, AttributeError, TypeError)


# --- the cases ---------------------------------------------------------------
# Each makes its own executor and leaves its with-block: returning at all is
# half of what each case checks.

def lambda_before_workers_are_ready():
    # The example: nothing is ready when the task is submitted.
    with pat.Executor(1) as executor:
        future = executor.submit(lambda: 1)
    expect_pickling_error(future, *PICKLING_ERRORS)


def lambda_after_workers_are_ready():
    with pat.Executor(1) as executor:
        assert executor.submit(square, 3).result(timeout=RESULT_SECONDS) == 9
        future = executor.submit(lambda: 1)
        expect(future, *PICKLING_ERRORS)
        assert executor.submit(square, 4).result(timeout=RESULT_SECONDS) == 16


def unpicklable_argument():
    with pat.Executor(2) as executor:
        bad = executor.submit(identity, threading.Lock())
        good = executor.submit(square, 5)
    expect(bad, TypeError)
    assert good.result(timeout=0) == 25


def many_unpicklable_tasks_queued_before_ready():
    with pat.Executor(1) as executor:
        bad = [executor.submit(identity, threading.Lock()) for _ in range(20)]
        good = executor.submit(square, 6)
        more_bad = executor.submit(lambda: 2)
    for future in bad:
        expect(future, TypeError)
    expect(more_bad, *PICKLING_ERRORS)
    assert good.result(timeout=0) == 36


def pickling_raises_system_exit():
    with pat.Executor(1) as executor:
        future = executor.submit(identity, RaiseAtPickle(SystemExit(7)))
    assert expect(future, SystemExit).code == 7


def pickling_raises_keyboard_interrupt():
    with pat.Executor(1) as executor:
        assert executor.submit(square, 2).result(timeout=RESULT_SECONDS) == 4  # dispatched in this thread
        future = executor.submit(identity, RaiseAtPickle(KeyboardInterrupt()))
        expect(future, KeyboardInterrupt)


def unpickling_fails_in_the_worker():
    with pat.Executor(1) as executor:
        future = executor.submit(identity, RaiseAtUnpickle(pickle.UnpicklingError("at task unpickle")))
        error = expect_broken(executor, future)
        assert "at task unpickle" in str(error.__cause__), str(error.__cause__)


def unpickling_exits_in_the_worker():
    with pat.Executor(1) as executor:
        expect_broken(executor, executor.submit(identity, RaiseAtUnpickle(SystemExit(3))))


def unpickling_kills_the_worker():
    with pat.Executor(1) as executor:
        error = expect_broken(executor, executor.submit(identity, CrashAtUnpickle()))
        assert isinstance(error, pat.WorkerDied) and error.signal == signal.SIGKILL, repr(error)


def task_raises():
    with pat.Executor(1) as executor:
        error = expect(executor.submit(raise_it, ValueError("from the task")), ValueError)
        assert "from the task" in str(error.__cause__)


def task_exits():
    with pat.Executor(1) as executor:
        assert expect(executor.submit(exit_with, 3), SystemExit).code == 3
        expect(executor.submit(raise_it, KeyboardInterrupt()), KeyboardInterrupt)
        assert executor.submit(square, 8).result(timeout=RESULT_SECONDS) == 64  # the same worker carries on


def worker_killed_mid_task():
    with pat.Executor(1) as executor:
        error = expect_broken(executor, executor.submit(_kill_myself))
        assert isinstance(error, pat.WorkerDied) and error.signal == signal.SIGKILL, repr(error)


def worker_killed_with_others_running():
    # Every task still running or waiting fails too; the others' workers
    # are terminated, not waited for.
    with pat.Executor(2) as executor:
        sleeper = executor.submit(nap, 60)
        while not sleeper.running():
            time.sleep(0.01)
        started = time.monotonic()
        killed = executor.submit(_kill_myself)
        waiting = [executor.submit(nap, 60) for _ in range(3)]
        expect_broken(executor, killed)
        for future in [sleeper, *waiting]:
            expect(future, BrokenProcessPool)
    assert time.monotonic() - started < 30, "the sleeping worker was waited for"


def worker_killed_while_idle():
    with pat.Executor(1) as executor:
        worker = executor.submit(pid).result(timeout=RESULT_SECONDS)
        os.kill(worker, signal.SIGKILL)
        deadline = time.monotonic() + RESULT_SECONDS
        while not executor._broken and time.monotonic() < deadline:
            time.sleep(0.01)
        assert executor._broken, "a worker died and the executor did not break"


def result_does_not_pickle():
    with pat.Executor(1) as executor:
        expect(executor.submit(return_lambda), *PICKLING_ERRORS)
        expect(executor.submit(return_pickle_failure, pickle.PicklingError("at result pickle")),
               pickle.PicklingError)


def result_pickling_raises_system_exit():
    with pat.Executor(1) as executor:
        assert expect(executor.submit(return_pickle_failure, SystemExit(5)), SystemExit).code == 5
        expect(executor.submit(return_pickle_failure, KeyboardInterrupt()), KeyboardInterrupt)
        assert executor.submit(square, 9).result(timeout=RESULT_SECONDS) == 81  # the worker survived


def exception_does_not_pickle():
    with pat.Executor(1) as executor:
        # As ProcessPoolExecutor: the pickling error is the task's exception.
        error = expect(executor.submit(raise_unpicklable), TypeError)
        assert "lock" in str(error), repr(error)


def pickling_error_does_not_pickle_either():
    # Pickling the result raises an exception that itself cannot be pickled:
    # the traceback still comes back.
    with pat.Executor(1) as executor:
        error = expect(executor.submit(return_unpicklable_pickle_failure), RuntimeError)
        assert "UnpicklableError" in str(error.__cause__), repr(error.__cause__)
        assert executor.submit(square, 10).result(timeout=RESULT_SECONDS) == 100


def result_does_not_unpickle_here():
    with pat.Executor(1) as executor:
        error = expect_broken(executor, executor.submit(return_unpickle_failure,
                                                       pickle.UnpicklingError("at result unpickle")))
        assert "at result unpickle" in str(error.__cause__), str(error.__cause__)
    with pat.Executor(1) as executor:
        expect_broken(executor, executor.submit(return_unpickle_failure, SystemExit(4)))


def submit_after_shutdown():
    with pat.Executor(1) as executor:
        executor.submit(square, 1).result(timeout=RESULT_SECONDS)
    for call in (lambda: executor.submit(square, 2), lambda: executor.map(square, [1])):
        try:
            call()
            raise AssertionError("a task was accepted after shutdown")
        except RuntimeError:
            pass
    never_used = pat.Executor(1)
    never_used.shutdown()
    try:
        never_used.submit(square, 2)
        raise AssertionError("a task was accepted after shutdown")
    except RuntimeError:
        pass


def shutdown_from_a_callback():
    seen = []

    def shut_down_waiting(future):
        try:
            executor.shutdown(wait=True)
            seen.append("returned")
        except RuntimeError as error:
            seen.append(error)

    with pat.Executor(1) as executor:
        future = executor.submit(square, 12)
        future.add_done_callback(shut_down_waiting)
        assert future.result(timeout=RESULT_SECONDS) == 144
    assert len(seen) == 1, seen
    try:
        executor.submit(square, 1)
        raise AssertionError("the callback's shutdown did not take")
    except RuntimeError:
        pass

    # Without waiting, from a callback of a failed task.
    with pat.Executor(1) as executor:
        future = executor.submit(raise_it, ValueError("x"))
        future.add_done_callback(lambda _: executor.shutdown(wait=False))
        expect(future, ValueError)


def cancelled_before_workers_are_ready():
    with pat.Executor(1) as executor:
        future = executor.submit(square, 2)
        cancelled = future.cancel()
    assert future.cancelled() == cancelled


def shutdown_without_waiting_leaves_failures_to_come():
    executor = pat.Executor(1)
    bad = executor.submit(identity, threading.Lock())
    good = executor.submit(square, 13)
    executor.shutdown(wait=False)
    expect(bad, TypeError)
    assert good.result(timeout=RESULT_SECONDS) == 169
    executor.shutdown(wait=True)


def cancel_futures_with_failures_pending():
    with pat.Executor(1) as executor:
        running = executor.submit(nap, 0.5)
        queued = [executor.submit(identity, threading.Lock()) for _ in range(5)]
        executor.shutdown(wait=True, cancel_futures=True)
    assert running.done()
    for future in queued:
        assert future.done()


def map_with_an_unpicklable_function():
    with pat.Executor(2) as executor:
        results = executor.map(lambda x: x, range(5))
        try:
            list(results)
            raise AssertionError("map of a lambda succeeded")
        except PICKLING_ERRORS:
            pass


def failing_initializer_then_leave():
    with pat.Executor(1, initializer=failing_initializer) as executor:
        future = executor.submit(square, 2)
        error = expect_broken(executor, future)
        assert "initializer failed on purpose" in str(error.__cause__), str(error.__cause__)


def unpicklable_initializer():
    with pat.Executor(1, initializer=lambda: None) as executor:
        try:
            future = executor.submit(square, 2)
        except (futures.BrokenExecutor, *PICKLING_ERRORS):
            return
        failure_of(future)


CASES = [
    lambda_before_workers_are_ready, lambda_after_workers_are_ready, unpicklable_argument,
    many_unpicklable_tasks_queued_before_ready, pickling_raises_system_exit, pickling_raises_keyboard_interrupt,
    unpickling_fails_in_the_worker, unpickling_exits_in_the_worker, unpickling_kills_the_worker, task_raises,
    task_exits, worker_killed_mid_task, worker_killed_with_others_running, worker_killed_while_idle, result_does_not_pickle,
    result_pickling_raises_system_exit, exception_does_not_pickle, pickling_error_does_not_pickle_either,
    result_does_not_unpickle_here, submit_after_shutdown, shutdown_from_a_callback, cancelled_before_workers_are_ready,
    shutdown_without_waiting_leaves_failures_to_come, cancel_futures_with_failures_pending,
    map_with_an_unpicklable_function, failing_initializer_then_leave, unpicklable_initializer,
]


def main(names):
    by_name = {case.__name__: case for case in CASES}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise SystemExit(f"unknown cases: {unknown}")
    chosen = [by_name[name] for name in names] if names else CASES
    for case in chosen:
        faulthandler.dump_traceback_later(CASE_SECONDS, exit=True)
        started = time.monotonic()
        case()
        faulthandler.cancel_dump_traceback_later()
        print(f"{case.__name__}: {time.monotonic() - started:.2f} s", flush=True)
    print("ok")


if __name__ == "__main__":
    main(sys.argv[1:])
