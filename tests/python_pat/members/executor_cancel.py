"""Member: cancellation of tasks no worker has taken, shutdown(wait=False)
finishing in the background, shutdown(cancel_futures=True). Prints "ok"."""
import os
import time

import pat


def hold(path, seconds):
    """Runs until `path` exists (or `seconds` pass)."""
    deadline = time.monotonic() + seconds
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)
    return os.path.exists(path)


def square(x):
    return x * x


def main(tmp):
    release = os.path.join(tmp, "release")
    executor = pat.Executor(max_workers=1)
    running = executor.submit(hold, release, 60)
    while not running.running():
        time.sleep(0.01)
    queued = [executor.submit(square, i) for i in range(10)]
    assert not running.cancel(), "a running task cannot be cancelled"
    assert all(f.cancel() for f in queued[:5])
    assert all(f.cancelled() for f in queued[:5])
    open(release, "w").close()
    assert running.result(timeout=60) is True
    assert [f.result(timeout=60) for f in queued[5:]] == [i * i for i in range(5, 10)]

    # shutdown(wait=False): returns at once, the work still finishes.
    os.unlink(release)
    running = executor.submit(hold, release, 60)
    later = [executor.submit(square, i) for i in range(3)]
    started = time.monotonic()
    executor.shutdown(wait=False)
    assert time.monotonic() - started < 1.0
    open(release, "w").close()
    assert running.result(timeout=60) and [f.result(timeout=60) for f in later] == [0, 1, 4]

    # shutdown(cancel_futures=True): what no worker took is cancelled.
    os.unlink(release)
    executor = pat.Executor(max_workers=1)
    running = executor.submit(hold, release, 2)
    while not running.running():
        time.sleep(0.01)
    queued = [executor.submit(square, i) for i in range(10)]
    executor.shutdown(wait=True, cancel_futures=True)
    assert running.done() and all(f.cancelled() for f in queued), [f._state for f in queued]
    print("ok")


if __name__ == "__main__":
    import sys
    main(sys.argv[1])
