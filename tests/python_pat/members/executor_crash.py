"""Member: workers that die (SIGKILL, a segfault, os._exit) fail the future
they held with pat.WorkerDied naming the pid and how; the executor starts a
replacement and keeps working. Prints "ok"."""
import ctypes
import os
import signal

import pat


def kill_myself():
    os.kill(os.getpid(), signal.SIGKILL)


def segfault():
    ctypes.string_at(0)


def exit_now(code):
    os._exit(code)


def failing_initializer():
    raise RuntimeError("no environment for this worker")


def whoami():
    return os.getpid()


def square(x):
    return x * x


def expect_death(executor, fn, *args):
    before = set(executor.worker_pids())
    future = executor.submit(fn, *args)
    try:
        future.result(timeout=60)
    except pat.WorkerDied as error:
        assert error.pid in before, (error.pid, before)
        assert str(error.pid) in str(error), str(error)
        return error
    raise AssertionError(f"{fn.__name__}: no WorkerDied")


def main():
    with pat.Executor(max_workers=2) as executor:
        assert executor.submit(square, 2).result(timeout=60) == 4
        killed = expect_death(executor, kill_myself)
        assert killed.signal == signal.SIGKILL, (killed.signal, killed.exit_code, str(killed))
        assert "SIGKILL" in str(killed), str(killed)
        assert isinstance(killed, pat.Error) and isinstance(killed, pat.errors.BrokenExecutor)
        crashed = expect_death(executor, segfault)
        assert crashed.signal == signal.SIGSEGV, (crashed.signal, str(crashed))
        exited = expect_death(executor, exit_now, 3)
        assert exited.exit_code == 3, (exited.exit_code, str(exited))
        # The executor carries on, with replacements.
        assert list(executor.map(square, range(40), chunksize=4)) == [x * x for x in range(40)]
        pids = {executor.submit(whoami).result(timeout=60) for _ in range(20)}
        assert killed.pid not in pids and crashed.pid not in pids and exited.pid not in pids
        assert len(executor.worker_pids()) == 2, executor.worker_pids()
        print(f"died: {killed} | {crashed} | {exited}")
    # An initializer that raises breaks the executor, as in ProcessPoolExecutor.
    broken = pat.Executor(max_workers=1, initializer=failing_initializer)
    future = broken.submit(square, 1)
    try:
        future.result(timeout=60)
        raise AssertionError("no BrokenExecutor")
    except pat.errors.BrokenExecutor as error:
        assert "no environment for this worker" in str(error), str(error)
    try:
        broken.submit(square, 2)
        raise AssertionError("submit to a broken executor")
    except pat.errors.BrokenExecutor:
        pass
    broken.shutdown()
    print("ok")


if __name__ == "__main__":
    main()
