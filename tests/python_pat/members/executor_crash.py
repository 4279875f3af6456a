"""Member: a worker that dies (SIGKILL, a segfault, os._exit) fails the
future it held with pat.WorkerDied naming the pid and how, and breaks the
executor as a dead process breaks a ProcessPoolExecutor: every other task
fails with BrokenProcessPool and submit() raises it. Prints the errors, then
"ok"."""
import ctypes
import os
import signal
from concurrent.futures.process import BrokenProcessPool

import pat


def kill_myself():
    os.kill(os.getpid(), signal.SIGKILL)


def segfault():
    ctypes.string_at(0)


def exit_now(code):
    os._exit(code)


def failing_initializer():
    raise RuntimeError("no environment for this worker")


def square(x):
    return x * x


def expect_death(fn, *args):
    with pat.Executor(max_workers=2) as executor:
        assert executor.submit(square, 2).result(timeout=60) == 4
        future = executor.submit(fn, *args)
        try:
            future.result(timeout=60)
        except pat.WorkerDied as error:
            assert isinstance(error, BrokenProcessPool) and isinstance(error, pat.Error)
            assert str(error.pid) in str(error), str(error)
            died = error
        else:
            raise AssertionError(f"{fn.__name__}: no WorkerDied")
        try:
            executor.submit(square, 3)
            raise AssertionError("a broken executor accepted a task")
        except BrokenProcessPool:
            pass
    return died


def main():
    killed = expect_death(kill_myself)
    assert killed.signal == signal.SIGKILL, (killed.signal, killed.exit_code, str(killed))
    assert "SIGKILL" in str(killed), str(killed)
    crashed = expect_death(segfault)
    assert crashed.signal == signal.SIGSEGV, (crashed.signal, str(crashed))
    exited = expect_death(exit_now, 3)
    assert exited.exit_code == 3, (exited.exit_code, str(exited))
    print(f"died: {killed} | {crashed} | {exited}")
    # An initializer that raises breaks the executor, as in ProcessPoolExecutor.
    broken = pat.Executor(max_workers=1, initializer=failing_initializer)
    future = broken.submit(square, 1)
    try:
        future.result(timeout=60)
        raise AssertionError("no BrokenProcessPool")
    except BrokenProcessPool as error:
        assert "no environment for this worker" in str(error.__cause__), str(error.__cause__)
    try:
        broken.submit(square, 2)
        raise AssertionError("submit to a broken executor")
    except BrokenProcessPool:
        pass
    broken.shutdown()
    print("ok")


if __name__ == "__main__":
    main()
