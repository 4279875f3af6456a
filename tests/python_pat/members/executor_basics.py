"""Member: pat.Executor results, exceptions with the worker's traceback,
map with chunksize and timeout, wait/as_completed, callbacks, and buffers
by reference in both directions. Prints "ok" last; any failure raises."""
import concurrent.futures as cf
import os
import time

import numpy as np

import pat


def square(x):
    return x * x


def add(a, b=0):
    return a + b


def explode(message):
    raise KeyError(message)


def whoami():
    return os.getpid()


def make_array(nbytes, value):
    return np.full(nbytes // 8, value, dtype=np.float64)


def fill(array, value):
    array[:] = value  # in the caller's memory: the argument arrived as a view
    return float(array.sum())


def view_back(view):
    return view  # a received buffer sent back: the same memory again


def unpicklable_result():
    return lambda: None


SETTING = None


def remember(value):
    global SETTING
    SETTING = value


def setting():
    return SETTING


def slow(seconds):
    time.sleep(seconds)
    return seconds


def main():
    assert pat.in_group()
    with pat.Executor(max_workers=2) as executor:
        assert executor.submit(square, 12).result(timeout=60) == 144
        assert executor.submit(add, 1, b=2).result() == 3
        assert list(executor.map(square, range(50), chunksize=7)) == [x * x for x in range(50)]
        assert list(executor.map(add, range(5), range(5))) == [0, 2, 4, 6, 8]

        future = executor.submit(explode, "no such key")
        try:
            future.result()
            raise AssertionError("no exception")
        except KeyError as error:
            cause = error.__cause__
            assert isinstance(cause, pat.RemoteTraceback), type(cause)
            assert "in explode" in str(cause) and "raise KeyError(message)" in str(cause), str(cause)
        assert isinstance(future.exception(), KeyError)

        # A result that cannot be pickled becomes the task's exception.
        try:
            executor.submit(unpicklable_result).result()
            raise AssertionError("an unpicklable result was returned")
        except Exception as error:  # pickle's own error: AttributeError or PicklingError
            assert "pickle" in str(error).lower() or "pickle" in str(error.__cause__).lower(), repr(error)

        # map raises at the failing element; timeout raises TimeoutError
        try:
            list(executor.map(slow, [5.0], timeout=0.2))
            raise AssertionError("map timeout not raised")
        except cf.TimeoutError:
            pass

        futures = [executor.submit(square, i) for i in range(20)]
        done, not_done = cf.wait(futures, timeout=60)
        assert len(done) == 20 and not not_done
        assert sorted(f.result() for f in cf.as_completed([executor.submit(square, i) for i in range(10)])) == \
            [i * i for i in range(10)]
        called = []
        callback_future = executor.submit(square, 3)
        callback_future.add_done_callback(lambda f: called.append(f.result()))
        callback_future.result()
        for _ in range(100):
            if called:
                break
            time.sleep(0.01)
        assert called == [9], called

        pids = {executor.submit(whoami).result() for _ in range(20)}
        assert pids <= set(executor.worker_pids()) and os.getpid() not in pids, (pids, executor.worker_pids())
        members = {m.pid for m in pat.members()}
        assert set(executor.worker_pids()) <= members, (executor.worker_pids(), members)

        # A large result arrives as a view of the worker's own pages.
        result = executor.submit(make_array, 64 << 20, 2.5).result()
        owner = pat.buffer_of(result)
        assert isinstance(owner, pat.Buffer) and owner.zero_copy and owner.address == result.ctypes.data, owner
        assert not result.flags.owndata and result.flags.writeable
        assert result.shape == (8 << 20,) and float(result[::4096].sum()) == 2.5 * 2048

        # A large argument is the caller's memory: the worker's writes show here.
        mine = np.zeros(8 << 20)  # 64 MiB: its own mapping, shared without a copy
        assert executor.submit(fill, mine, 1.0).result() == float(8 << 20)
        assert mine[0] == 1.0 and mine[-1] == 1.0
        # ...and a view sent back is the same memory, not a copy.
        back = executor.submit(view_back, memoryview(mine)).result()
        assert isinstance(back, memoryview) and back.format == "d" and back.shape == mine.shape
        assert pat.buffer_of(back).address == mine.ctypes.data, (pat.buffer_of(back), hex(mine.ctypes.data))
        del back, result, owner
    try:
        executor.submit(square, 1)
        raise AssertionError("submit after shutdown")
    except RuntimeError:
        pass
    with pat.Executor(max_workers=2, initializer=remember, initargs=("set by the initializer",)) as executor:
        assert {executor.submit(setting).result(timeout=60) for _ in range(6)} == {"set by the initializer"}
    print("ok")


if __name__ == "__main__":
    main()
